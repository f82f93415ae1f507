"""Group-disjoint, stratified, seeded train/dev/test assignment (see README.md in this folder).

Pure numpy/scipy on integer arrays, so it runs on a million items in well under a second and can be
tested without a database. Every function is deterministic for its inputs and seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

GROUPINGS = ("conversation+speaker", "conversation", "speaker", "none")
MISSING = -1

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A fixed 64-bit mixing function: the same id and seed always give the same pseudo-random key."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


def group_components(conversation: IntArray, speaker: IntArray, grouping: str,
                     same_text: IntArray | None = None) -> IntArray:
    """Group id per item such that no conversation and/or speaker spans two groups.

    ``conversation+speaker``: connected components of the bipartite graph whose edges are items joining their
    conversation and their speaker, so a speaker who appears in two conversations pulls both into one group.
    Items without a conversation (or speaker) only join through the other id, or stand alone. ``same_text``
    (a code per item, MISSING for none) joins items with the same text too, whatever the grouping, so one text
    never sits in two splits.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
    n = int(conversation.size)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    use_conversation = grouping in ("conversation+speaker", "conversation")
    use_speaker = grouping in ("conversation+speaker", "speaker")
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    offset = n
    text = same_text if same_text is not None else np.full(n, MISSING, dtype=np.int64)
    for ids, used in ((conversation, use_conversation), (speaker, use_speaker), (text, same_text is not None)):
        if not used:
            continue
        present = np.flatnonzero(ids != MISSING)
        _, dense = np.unique(ids[present], return_inverse=True)
        rows.append(present.astype(np.int64))
        cols.append(offset + dense.astype(np.int64))
        offset += int(dense.max()) + 1 if dense.size else 0
    if not rows:
        return np.arange(n, dtype=np.int64)
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    graph = coo_matrix((np.ones(row.size, dtype=np.int8), (row, col)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    # Renumber so that group ids follow the first item of each group (stable, independent of scipy's order).
    _, first_index, inverse = np.unique(labels[:n], return_index=True, return_inverse=True)
    order = np.argsort(first_index, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse].astype(np.int64)


def powerset_strata(label_sets: list[tuple[int, ...]], min_count: int) -> IntArray:
    """Stratum per item from a multi-label answer: its label combination, or, when that combination has fewer
    than ``min_count`` items, the rarest single label in it (an empty set stays its own stratum)."""
    combos: dict[tuple[int, ...], int] = {}
    codes = np.fromiter((combos.setdefault(s, len(combos)) for s in label_sets), dtype=np.int64, count=len(label_sets))
    if not combos:
        return codes
    combo_counts = np.bincount(codes, minlength=len(combos))
    label_counts: dict[int, int] = {}
    for combo, code in combos.items():
        for label in combo:
            label_counts[label] = label_counts.get(label, 0) + int(combo_counts[code])
    remap = np.arange(len(combos), dtype=np.int64)
    for combo, code in list(combos.items()):
        if combo_counts[code] >= min_count or len(combo) <= 1:
            continue
        rarest = min(combo, key=lambda label: (label_counts[label], label))
        remap[code] = combos.setdefault((rarest,), len(combos))
    return remap[codes]


def numeric_strata(values: npt.NDArray[np.float64], bins: int = 5) -> IntArray:
    """Quantile bins of a numeric answer (missing values form their own stratum)."""
    codes = np.full(values.size, bins, dtype=np.int64)
    present = ~np.isnan(values)
    if present.any():
        edges = np.unique(np.quantile(values[present], np.linspace(0, 1, bins + 1)[1:-1]))
        codes[present] = np.searchsorted(edges, values[present], side="right")
    return codes


@dataclass(frozen=True)
class SplitResult:
    split: IntArray  # per item: index into the split names, or MISSING when its group's split forbids its label
    group: IntArray  # per item: group id
    group_split: IntArray  # per group: index into the split names, or MISSING
    n_groups: int


def assign_splits(
    *,
    item_ids: IntArray,
    group: IntArray,
    stratum: IntArray,
    eligible: BoolArray,
    ratios: tuple[float, ...],
    seed: int,
) -> SplitResult:
    """Assign whole groups to splits so that each stratum is divided in the requested ratios.

    ``eligible[i, s]`` says whether item i has a label the provenance rule allows in split s. A group that is
    eligible for every split is allocated by the stratified cut; one eligible for only some splits is fixed to
    the largest of those, and counts towards that split's share of its stratum.
    """
    n = int(item_ids.size)
    n_splits = len(ratios)
    if n == 0:
        return SplitResult(np.zeros(0, dtype=np.int64), group, np.zeros(0, dtype=np.int64), 0)
    ratio = np.asarray(ratios, dtype=np.float64)
    ratio = ratio / ratio.sum()
    n_groups = int(group.max()) + 1

    # Per group: size, smallest item id (for a stable random key), eligibility, and its dominant stratum.
    size = np.bincount(group, minlength=n_groups).astype(np.int64)
    min_id = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(min_id, group, item_ids)
    group_eligible = np.zeros((n_groups, n_splits), dtype=bool)
    for s in range(n_splits):
        group_eligible[:, s] = np.bincount(group, weights=eligible[:, s], minlength=n_groups) > 0
    n_strata = int(stratum.max()) + 1
    pair = group * n_strata + stratum
    pairs, pair_counts = np.unique(pair, return_counts=True)
    pair_group, pair_stratum = pairs // n_strata, pairs % n_strata
    # Largest count first, ties to the smaller stratum code; the first row per group wins.
    order = np.lexsort((pair_stratum, -pair_counts, pair_group))
    first = np.ones(order.size, dtype=bool)
    first[1:] = pair_group[order][1:] != pair_group[order][:-1]
    dominant = np.empty(n_groups, dtype=np.int64)
    dominant[pair_group[order][first]] = pair_stratum[order][first]

    group_split = np.full(n_groups, MISSING, dtype=np.int64)
    free = group_eligible.all(axis=1)
    fixed = ~free & group_eligible.any(axis=1)
    if fixed.any():
        # The eligible split with the largest ratio (ties: the earlier split).
        weighted = np.where(group_eligible[fixed], ratio[None, :], -1.0)
        group_split[fixed] = np.argmax(weighted, axis=1)

    # Targets per stratum and split, minus what fixed groups already fill.
    stratum_total = np.bincount(dominant, weights=size, minlength=n_strata)
    target = stratum_total[:, None] * ratio[None, :]
    filled = np.zeros((n_strata, n_splits))
    if fixed.any():
        np.add.at(filled, (dominant[fixed], group_split[fixed]), size[fixed])
    need = np.clip(target - filled, 0.0, None)
    need_sum = need.sum(axis=1, keepdims=True)
    share = np.where(need_sum > 0, need / np.where(need_sum > 0, need_sum, 1.0), ratio[None, :])
    bounds = np.cumsum(share, axis=1)

    free_groups = np.flatnonzero(free)
    if free_groups.size:
        key = splitmix64(min_id[free_groups].astype(np.uint64) ^ splitmix64(np.full(1, seed, dtype=np.uint64)))
        strata_of = dominant[free_groups]
        order = np.lexsort((key, strata_of))
        ordered = free_groups[order]
        ordered_strata = strata_of[order]
        sizes = size[ordered].astype(np.float64)
        cumulative = np.cumsum(sizes)
        starts = np.flatnonzero(np.r_[True, ordered_strata[1:] != ordered_strata[:-1]])
        stratum_start = np.repeat(cumulative[starts] - sizes[starts], np.diff(np.r_[starts, ordered.size]))
        free_total = np.bincount(ordered_strata, weights=sizes, minlength=n_strata)
        midpoint = (cumulative - stratum_start - sizes / 2.0) / free_total[ordered_strata]
        # A seeded random start per stratum (systematic sampling): a stratum of a few large groups is not
        # always cut from train onwards, so small splits still get their share across strata.
        seed_key = splitmix64(np.full(1, seed, dtype=np.uint64) + np.uint64(1))
        offset = splitmix64(np.arange(n_strata, dtype=np.uint64) ^ seed_key) / np.float64(2.0**64)
        midpoint = np.mod(midpoint + offset[ordered_strata], 1.0)
        thresholds = bounds[ordered_strata][:, :-1]
        group_split[ordered] = (midpoint[:, None] >= thresholds).sum(axis=1)

    split = group_split[group]
    # Items whose own label the chosen split forbids are left out (counted in the data card).
    has_split = split != MISSING
    allowed = np.zeros(n, dtype=bool)
    allowed[has_split] = eligible[np.flatnonzero(has_split), split[has_split]]
    split = np.where(allowed, split, MISSING)
    return SplitResult(split=split, group=group, group_split=group_split, n_groups=n_groups)


def ratios_min_count(ratios: tuple[float, ...]) -> int:
    """Below this many items a label combination cannot be spread over every split in proportion."""
    positive = [r for r in ratios if r > 0]
    total = sum(ratios)
    return max(2, math.ceil(total / min(positive))) if positive else 2
