"""Literal, loop-by-loop implementations of the published definitions, used only to check the fast code."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence


def literal_alpha(
    units: dict[Hashable, list[object]],
    level: str = "nominal",
    distance: Callable[[object, object], float] | None = None,
) -> float:
    """Krippendorff (2011) step by step: coincidence matrix o_ck, marginals n_c, then 1 - (n-1) Σo·δ / Σn_c·n_k·δ."""
    coincidence: dict[tuple[object, object], float] = defaultdict(float)
    for values in units.values():
        m = len(values)
        if m < 2:
            continue
        for i in range(m):
            for j in range(m):
                if i != j:
                    coincidence[(values[i], values[j])] += 1.0 / (m - 1)
    marginal: dict[object, float] = defaultdict(float)
    for (c, _k), weight in coincidence.items():
        marginal[c] += weight
    n = sum(marginal.values())
    domain = sorted(marginal, key=lambda v: (str(type(v)), v)) if distance is None else list(marginal)

    def delta(c: object, k: object) -> float:
        if distance is not None:
            return distance(c, k)
        if level == "nominal":
            return 0.0 if c == k else 1.0
        if level == "interval":
            return (float(c) - float(k)) ** 2  # type: ignore[arg-type]
        if level == "ratio":
            total = float(c) + float(k)  # type: ignore[arg-type]
            return 0.0 if total == 0 else ((float(c) - float(k)) / total) ** 2  # type: ignore[arg-type]
        if level == "ordinal":
            low, high = sorted((domain.index(c), domain.index(k)))
            between = sum(marginal[domain[g]] for g in range(low, high + 1))
            return (between - (marginal[c] + marginal[k]) / 2.0) ** 2
        raise ValueError(level)

    observed = sum(weight * delta(c, k) for (c, k), weight in coincidence.items())
    expected = sum(marginal[c] * marginal[k] * delta(c, k) for c in domain for k in domain)
    if expected == 0:
        return math.nan
    return 1.0 - (n - 1.0) * observed / expected


def units_from_long(units: Sequence[Hashable], values: Sequence[object]) -> dict[Hashable, list[object]]:
    grouped: dict[Hashable, list[object]] = defaultdict(list)
    for unit, value in zip(units, values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        grouped[unit].append(value)
    return grouped
