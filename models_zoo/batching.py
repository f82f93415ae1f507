"""Batches built by length, so padding stays small and memory stays bounded."""

from __future__ import annotations

from collections.abc import Sequence


def length_sorted_batches(lengths: Sequence[int | float], *, max_batch_cost: float, max_batch_items: int = 64) -> list[list[int]]:
    """Group item indices into batches of similar length.

    A batch costs ``len(batch) * longest item`` (what padding makes the model process); no batch exceeds
    ``max_batch_cost`` or ``max_batch_items``, except that an item costing more than the budget on its
    own forms a batch by itself (the caller decides beforehand whether such an item is too long).
    """
    if max_batch_cost <= 0 or max_batch_items <= 0:
        raise ValueError("max_batch_cost and max_batch_items must be positive")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = max(lengths[index], lengths[current[-1]]) if current else lengths[index]
        if current and (len(current) + 1 > max_batch_items or (len(current) + 1) * longest > max_batch_cost):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
