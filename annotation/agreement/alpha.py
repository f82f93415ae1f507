"""Krippendorff's alpha (nominal, ordinal, interval, ratio or any distance matrix) and its bootstrap interval.

Definitions follow Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability":

    alpha = 1 - D_o / D_e = 1 - (n - 1) * sum_u d_u / sum_{c,k} n_c n_k delta(c, k)

where only *pairable* units (two or more values) count, ``n_c`` is how often value ``c`` occurs among the
pairable values, ``n = sum_c n_c`` and ``d_u = sum_{i != j in u} delta(v_i, v_j) / (m_u - 1)`` is unit u's
share of the coincidence-weighted disagreement. Nothing here loops over units in Python: per-unit sums are
``numpy.bincount`` calls over the encoded ratings.

The bootstrap resamples pairable units with replacement. Units with the same value counts (a *profile*)
contribute identically, so a resample is a multinomial draw of profile counts and its statistics are one
matrix product; the ordinal metric, whose distances depend on the marginal frequencies, is recomputed from
each resample's own marginals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import sparse

from annotation.agreement.ratings import AgreementInputError, FloatArray, IntArray, Ratings

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")

# Dense unit × value count matrices above this many cells are not built (memory), see _Pairable.counts.
_MAX_DENSE_CELLS = 40_000_000
# Value domains up to this size sum observed disagreement through the V × V coincidence matrix.
_SMALL_DOMAIN = 64
# Profiles × features cells from which ordinal coincidence features are kept sparse.
_DENSE_FEATURE_CELLS = 4_000_000
# Cells of a (resamples × profiles) count block held at once.
_BLOCK_CELLS = 4_000_000
# What one resample costs, in CPU nanoseconds on the development machine: a profile drawn by numpy's multinomial
# (a binomial each), by numpy's poisson, by inverting a Poisson table (a uniform and a binary search), and a unit
# drawn by index (random integer, lookup, bincount).
_NS_MULTINOMIAL = 70.0
_NS_POISSON = 45.0
_NS_TABLE = 20.0
_NS_DRAW = 12.0
# Profiles of fewer units than this get their Poisson draws from a table (see _resample_counts).
_TABLE_MAX_FREQ = 64
# Poissonised resamples aim this many standard deviations below U units (see _resample_counts): fewer units to add
# by index, against about 2 % of rows drawn again.
_SPARE_SD = 2.0


@dataclass(frozen=True)
class Metric:
    """A distance between values: a named level, or ``kind="matrix"`` with an explicit V × V matrix."""

    kind: Literal["nominal", "ordinal", "interval", "ratio", "matrix"]
    name: str
    numeric_values: FloatArray | None = None
    matrix: FloatArray | None = None


@dataclass(frozen=True)
class AlphaResult:
    """Alpha with what it was computed from and, when asked for, a bootstrap percentile interval."""

    alpha: float
    metric: str
    observed_disagreement: float
    expected_disagreement: float
    n_units: int
    n_pairable_units: int
    n_pairable_values: int
    interval: tuple[float, float] | None = None
    confidence_level: float | None = None
    n_resamples: int = 0
    n_undefined_resamples: int = 0
    standard_error: float | None = None
    seed: int | None = None
    resamples: FloatArray | None = field(default=None, repr=False, compare=False)

    @property
    def defined(self) -> bool:
        return bool(np.isfinite(self.alpha))

    def probability_below(self, alpha_min: float) -> float | None:
        """Share of bootstrap resamples with alpha under ``alpha_min`` (Krippendorff's q), if resampled."""
        if self.resamples is None:
            return None
        finite = self.resamples[np.isfinite(self.resamples)]
        return float(np.mean(finite < alpha_min)) if finite.size else None

    def as_dict(self) -> dict[str, object]:
        return {
            "alpha": None if not self.defined else self.alpha,
            "metric": self.metric,
            "observed_disagreement": self.observed_disagreement,
            "expected_disagreement": self.expected_disagreement,
            "n_units": self.n_units,
            "n_pairable_units": self.n_pairable_units,
            "n_pairable_values": self.n_pairable_values,
            "interval": list(self.interval) if self.interval else None,
            "confidence_level": self.confidence_level,
            "n_resamples": self.n_resamples,
            "n_undefined_resamples": self.n_undefined_resamples,
            "standard_error": self.standard_error,
            "seed": self.seed,
        }


def metric_for_level(ratings: Ratings, level: str) -> Metric:
    """The metric of a level of measurement, checking that its values are numbers where it needs them."""
    if level not in LEVELS:
        raise AgreementInputError(f"level of measurement must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == "nominal":
        return Metric("nominal", "nominal")
    numeric = ratings.numeric_values()
    if level == "ratio" and (numeric < 0).any():
        raise AgreementInputError("ratio level needs non-negative values (it measures distance from an absolute zero)")
    if level == "ordinal":
        return Metric("ordinal", "ordinal", numeric_values=numeric)
    return Metric(level, level, numeric_values=numeric)  # type: ignore[arg-type]


def metric_from_matrix(name: str, matrix: FloatArray) -> Metric:
    """A metric given as a symmetric distance matrix over the value domain with a zero diagonal."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise AgreementInputError(f"distance matrix must be square, got shape {matrix.shape}")
    if not np.allclose(matrix, matrix.T) or not np.allclose(np.diag(matrix), 0.0):
        raise AgreementInputError("distance matrix must be symmetric with a zero diagonal")
    return Metric("matrix", name, matrix=matrix)


class _Pairable:
    """The pairable units (two or more values) of encoded ratings, renumbered 0..U_p-1, in the forms the sums need.

    Everything beyond the values per unit is built on first use: the unit × value count matrix (one bincount over
    the ratings, the rows of unpairable units dropped), the per-rating arrays of pairable ratings, and the sorted
    (unit, distinct value) entries for value domains too large for the matrix.
    """

    def __init__(
        self, unit_idx: IntArray, value_idx: IntArray, n_all_units: int, n_values: int, per_unit: IntArray | None = None
    ) -> None:
        self._unit_all, self._value_all = unit_idx, value_idx
        self.n_values = max(n_values, 1)
        cells = n_all_units * self.n_values
        self._dense_feasible = cells <= _MAX_DENSE_CELLS
        self._dense_cheap = self._dense_feasible and cells <= max(4 * unit_idx.size, 1 << 16)
        all_counts = None
        if self._dense_cheap:
            all_counts = np.bincount(unit_idx * self.n_values + value_idx, minlength=cells).reshape(
                n_all_units, self.n_values
            )
            per_unit = _row_sums(all_counts)
        elif per_unit is None:
            per_unit = np.bincount(unit_idx, minlength=n_all_units)
        self._per_unit = per_unit
        self._keep_units = per_unit >= 2
        self._all_pairable = bool(self._keep_units.all())
        self.m: IntArray = per_unit if self._all_pairable else per_unit[self._keep_units]
        self.n_units = int(self.m.size)
        self.n = int(self.m.sum())
        if all_counts is not None:  # already built: fill the cached property
            self.__dict__["counts"] = all_counts if self._all_pairable else np.compress(self._keep_units, all_counts, 0)

    def marginals(self) -> FloatArray:
        if "counts" in self.__dict__:  # column by column: numpy's sum over the long axis of a narrow matrix is slow
            return np.array([self.counts[:, v].sum() for v in range(self.n_values)], dtype=np.float64)
        return np.bincount(self.value, minlength=self.n_values).astype(np.float64)

    def dense_feasible(self) -> bool:
        return self._dense_feasible

    def dense_cheap(self) -> bool:
        """Whether the count matrix cost no more than a pass over the ratings (else sums use sorted entries)."""
        return self._dense_cheap

    @cached_property
    def counts(self) -> IntArray:
        """Unit × value count matrix of the pairable units (only when dense_feasible)."""
        size = self._per_unit.size
        dense = np.bincount(self._unit_all * self.n_values + self._value_all, minlength=size * self.n_values)
        dense = dense.reshape(size, self.n_values)
        return dense if self._all_pairable else np.compress(self._keep_units, dense, 0)

    @cached_property
    def _rating_keep(self) -> npt.NDArray[np.bool_] | None:
        return None if self._all_pairable else self._keep_units[self._unit_all]

    @cached_property
    def unit(self) -> IntArray:
        """Pairable unit (renumbered) of each pairable rating."""
        if self._rating_keep is None:
            return self._unit_all
        remap = np.cumsum(self._keep_units) - 1
        return remap[self._unit_all[self._rating_keep]]

    @cached_property
    def value(self) -> IntArray:
        return self._value_all if self._rating_keep is None else self._value_all[self._rating_keep]

    @cached_property
    def _entries(self) -> tuple[IntArray, IntArray, IntArray]:
        """One entry per (unit, distinct value), sorted by unit then value."""
        if self.dense_cheap():
            counts = self.counts
            units, values = np.nonzero(counts)
            return units.astype(np.int64), values.astype(np.int64), counts[units, values].astype(np.int64)
        keys, tally = np.unique(self.unit * self.n_values + self.value, return_counts=True)
        return keys // self.n_values, keys % self.n_values, tally.astype(np.int64)

    @property
    def entry_unit(self) -> IntArray:
        return self._entries[0]

    @property
    def entry_value(self) -> IntArray:
        return self._entries[1]

    @property
    def entry_count(self) -> IntArray:
        return self._entries[2]


def _row_sums(counts: IntArray) -> IntArray:
    """Row sums of a units × values matrix; numpy's sum over a short last axis is slow, adding columns is not."""
    if counts.shape[1] > 16:
        return np.asarray(counts.sum(axis=1))
    total = counts[:, 0].copy()
    for column in range(1, counts.shape[1]):
        total += counts[:, column]
    return total


def _pairable(ratings: Ratings) -> _Pairable:
    return _Pairable(ratings.unit_idx, ratings.value_idx, ratings.n_units, ratings.n_values)


def _delta_function(metric: Metric, marginals: FloatArray) -> Callable[[IntArray, IntArray], FloatArray]:
    """Vectorised delta over value indices."""
    if metric.kind == "nominal":
        return lambda a, b: (a != b).astype(np.float64)
    if metric.kind in ("interval", "ratio"):
        x = metric.numeric_values
        assert x is not None
        if metric.kind == "interval":
            return lambda a, b: (x[a] - x[b]) ** 2
        def ratio(a: IntArray, b: IntArray) -> FloatArray:
            total = x[a] + x[b]
            diff = x[a] - x[b]
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.where(total == 0, 0.0, (diff / np.where(total == 0, 1.0, total)) ** 2)
            return np.asarray(out, dtype=np.float64)
        return ratio
    if metric.kind == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
        def ordinal(a: IntArray, b: IntArray) -> FloatArray:
            low, high = np.minimum(a, b), np.maximum(a, b)
            return np.asarray(
                (cumulative[high + 1] - cumulative[low] - (marginals[a] + marginals[b]) / 2.0) ** 2, dtype=np.float64
            )
        return ordinal
    matrix = metric.matrix
    assert matrix is not None
    return lambda a, b: matrix[a, b]


def _delta_matrix(metric: Metric, marginals: FloatArray) -> FloatArray:
    size = marginals.size
    grid = np.arange(size)
    return _delta_function(metric, marginals)(grid[:, None], grid[None, :])


def _observed_sum(pairs: _Pairable, metric: Metric, marginals: FloatArray) -> float:
    """sum_u d_u: coincidence-weighted disagreement within units."""
    m = pairs.m.astype(np.float64)
    if metric.kind == "nominal":
        if pairs.dense_cheap():
            counts = pairs.counts
            same = np.einsum("uv,uv->u", counts, counts).astype(np.float64)
        else:
            same = np.bincount(pairs.entry_unit, weights=pairs.entry_count.astype(np.float64) ** 2, minlength=pairs.n_units)
        return float(np.sum((m * m - same) / (m - 1.0)))
    if pairs.n_values <= _SMALL_DOMAIN and pairs.dense_cheap():
        # d_u = c_u' delta c_u / (m_u - 1) (delta has a zero diagonal), summed as the coincidence matrix times delta.
        coincidences = _coincidences(pairs.counts, m)
        return float(np.sum(coincidences * _delta_matrix(metric, marginals)))
    if metric.kind == "interval":
        x = metric.numeric_values
        assert x is not None
        # sum_{i != j} (x_i - x_j)^2 = 2 m sum_i (x_i - mean)^2
        values = x[pairs.value]
        means = np.bincount(pairs.unit, weights=values, minlength=pairs.n_units) / m
        squares = np.bincount(pairs.unit, weights=(values - means[pairs.unit]) ** 2, minlength=pairs.n_units)
        return float(np.sum(2.0 * m * squares / (m - 1.0)))
    unit, first, second, weight = _value_pairs(pairs)
    return float(np.sum(weight * _delta_function(metric, marginals)(first, second)))


def _coincidences(counts: IntArray, m: FloatArray) -> FloatArray:
    """sum_u c_u c_u' / (m_u - 1) without its diagonal correction (only ever multiplied by a zero-diagonal delta)."""
    dense = counts.astype(np.float64)
    return np.asarray((dense / (m - 1.0)[:, None]).T @ dense, dtype=np.float64)


def _value_pairs(pairs: _Pairable) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Each unordered pair of distinct values within a unit: (unit, value a, value b, weight).

    The weight 2 * n_ua * n_ub / (m_u - 1) counts both orders, so sum(weight * delta) = sum_u d_u.
    """
    m = pairs.m.astype(np.float64)
    per_unit = np.bincount(pairs.entry_unit, minlength=pairs.n_units)
    starts = np.concatenate([[0], np.cumsum(per_unit)[:-1]])
    position = np.arange(pairs.entry_unit.size) - starts[pairs.entry_unit]
    width = int(per_unit.max()) if per_unit.size else 0
    slot_value = np.full((pairs.n_units, width), -1, dtype=np.int64)
    slot_count = np.zeros((pairs.n_units, width), dtype=np.float64)
    slot_value[pairs.entry_unit, position] = pairs.entry_value
    slot_count[pairs.entry_unit, position] = pairs.entry_count
    units, firsts, seconds, weights = [], [], [], []
    # Distinct values fill slots from the left, so slot b holding a value means slot a < b does too.
    for b in range(1, width):
        rows = np.flatnonzero(slot_value[:, b] >= 0)
        for a in range(b):
            units.append(rows)
            firsts.append(slot_value[rows, a])
            seconds.append(slot_value[rows, b])
            weights.append(2.0 * slot_count[rows, a] * slot_count[rows, b] / (m[rows] - 1.0))
    if not units:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    return np.concatenate(units), np.concatenate(firsts), np.concatenate(seconds), np.concatenate(weights)


def _expected_sum(metric: Metric, marginals: FloatArray) -> float:
    """sum_{c,k} n_c n_k delta(c, k) over all pairable values."""
    n = float(marginals.sum())
    if metric.kind == "nominal":
        return n * n - float(np.sum(marginals**2))
    if metric.kind == "interval":
        x = metric.numeric_values
        assert x is not None
        centred = x - np.sum(marginals * x) / n if n else x
        return 2.0 * (n * float(np.sum(marginals * centred**2)) - float(np.sum(marginals * centred)) ** 2)
    delta = _delta_function(metric, marginals)
    present = np.flatnonzero(marginals > 0)
    weights = marginals[present]
    total = 0.0
    block = max(1, 4_000_000 // max(present.size, 1))
    for start in range(0, present.size, block):
        rows = present[start : start + block]
        distances = delta(rows[:, None], present[None, :])
        total += float(np.sum(weights[start : start + block, None] * distances * weights[None, :]))
    return total


def _alpha_from_sums(n: float, observed: float, expected: float) -> tuple[float, float, float]:
    """alpha, D_o and D_e; alpha is NaN when D_e is zero (a single value, nothing to disagree about)."""
    if n < 2:
        return float("nan"), float("nan"), float("nan")
    d_o = observed / n
    d_e = expected / (n * (n - 1.0))
    if d_e <= 0:
        return float("nan"), d_o, d_e
    return 1.0 - d_o / d_e, d_o, d_e


def krippendorff_alpha(
    ratings: Ratings,
    level: str = "nominal",
    *,
    metric: Metric | None = None,
    n_resamples: int = 0,
    confidence_level: float = 0.95,
    seed: int | None = 0,
) -> AlphaResult:
    """Krippendorff's alpha of encoded ratings at a level of measurement (or with an explicit ``metric``).

    With ``n_resamples > 0`` also a percentile bootstrap interval over pairable units, reproducible for a seed.
    """
    metric = metric or metric_for_level(ratings, level)
    if metric.kind == "matrix" and metric.matrix is not None and metric.matrix.shape[0] != ratings.n_values:
        raise AgreementInputError(
            f"distance matrix is {metric.matrix.shape[0]} × {metric.matrix.shape[0]} but there are {ratings.n_values} values"
        )
    if n_resamples > 0 and not 0.0 < confidence_level < 1.0:
        raise AgreementInputError(f"confidence level must be between 0 and 1, got {confidence_level}")
    return _alpha_of_pairable(_pairable(ratings), metric, ratings.n_units, n_resamples, confidence_level, seed)


def _alpha_of_pairable(
    pairs: _Pairable, metric: Metric, n_units: int, n_resamples: int, confidence_level: float, seed: int | None
) -> AlphaResult:
    """Alpha (and its bootstrap) of already-encoded pairable ratings; the arguments were checked by the caller."""
    marginals = pairs.marginals()
    n = float(pairs.n)
    if metric.kind != "nominal" and pairs.n_values <= _SMALL_DOMAIN and pairs.dense_cheap():
        # Small domain: the V × V distances once, for the coincidences and for the expected disagreement.
        delta = _delta_matrix(metric, marginals)
        observed = float(np.sum(_coincidences(pairs.counts, pairs.m.astype(np.float64)) * delta))
        expected = float(marginals @ delta @ marginals)
    else:
        observed, expected = _observed_sum(pairs, metric, marginals), _expected_sum(metric, marginals)
    alpha, d_o, d_e = _alpha_from_sums(n, observed, expected)
    result = AlphaResult(
        alpha=alpha,
        metric=metric.name,
        observed_disagreement=d_o,
        expected_disagreement=d_e,
        n_units=n_units,
        n_pairable_units=pairs.n_units,
        n_pairable_values=int(n),
    )
    if n_resamples <= 0 or pairs.n_units == 0:
        return result
    samples = bootstrap_alpha(pairs, metric, n_resamples, np.random.default_rng(seed))
    finite = samples[np.isfinite(samples)]
    tail = (1.0 - confidence_level) / 2.0 * 100.0
    interval = (
        (float(np.percentile(finite, tail)), float(np.percentile(finite, 100.0 - tail))) if finite.size else None
    )
    return _with_bootstrap(result, samples, finite, interval, confidence_level, seed)


def _with_bootstrap(
    result: AlphaResult,
    samples: FloatArray,
    finite: FloatArray,
    interval: tuple[float, float] | None,
    confidence_level: float,
    seed: int | None,
) -> AlphaResult:
    return AlphaResult(
        alpha=result.alpha,
        metric=result.metric,
        observed_disagreement=result.observed_disagreement,
        expected_disagreement=result.expected_disagreement,
        n_units=result.n_units,
        n_pairable_units=result.n_pairable_units,
        n_pairable_values=result.n_pairable_values,
        interval=interval,
        confidence_level=confidence_level,
        n_resamples=int(samples.size),
        n_undefined_resamples=int(samples.size - finite.size),
        standard_error=float(np.std(finite, ddof=1)) if finite.size > 1 else None,
        seed=seed,
        resamples=samples,
    )


def _profiles(counts: IntArray, m: IntArray) -> tuple[FloatArray, FloatArray]:
    """Distinct rows of the unit × value count matrix (sorted by their base-(max m + 1) key) and units per row."""
    n_values = counts.shape[1]
    base = int(m.max()) + 1 if m.size else 1
    if n_values * np.log2(base) < 62:
        powers = base ** np.arange(n_values, dtype=np.int64)
        key = counts.astype(np.int64, copy=False) @ powers
        if key.size and int(key.max()) < 8 * key.size + 65_536:  # small key range: counting beats sorting
            occurrences = np.bincount(key)
            present = np.flatnonzero(occurrences)
            freq = occurrences[present]
        else:
            present, freq = np.unique(key, return_counts=True)
        profiles = present[:, None] // powers[None, :] % base
    else:
        profiles, freq = np.unique(counts, axis=0, return_counts=True)
    return profiles.astype(np.float64), freq.astype(np.float64)


Statistic = Callable[[FloatArray], FloatArray]
Features: TypeAlias = "FloatArray | sparse.csr_matrix"  # per-profile sufficient statistics, dense or sparse


def _finish(n: FloatArray, observed: FloatArray, expected: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    return np.asarray(np.where((n >= 2) & (expected > 0), alpha, np.nan), dtype=np.float64)


def _profile_features(profiles: FloatArray, metric: Metric) -> tuple[Features, Statistic]:
    """Per-profile sufficient statistics (summed over a resample by a matrix product) and alpha from their sums."""
    m = profiles.sum(axis=1)
    n_values = profiles.shape[1]
    if metric.kind == "nominal":
        d = (m * m - np.sum(profiles**2, axis=1)) / (m - 1.0)

        def nominal(sums: FloatArray) -> FloatArray:
            marg = sums[:, 1:]
            n = marg.sum(axis=1)
            return _finish(n, sums[:, 0], n * n - np.sum(marg**2, axis=1))

        return np.column_stack([d, profiles]), nominal
    if metric.kind == "interval":
        x = metric.numeric_values
        assert x is not None
        x = x - np.average(x, weights=profiles.sum(axis=0)) if profiles.sum() else x
        s1, s2 = profiles @ x, profiles @ (x * x)
        d = np.maximum(2.0 * (m * s2 - s1 * s1) / (m - 1.0), 0.0)

        def interval(sums: FloatArray) -> FloatArray:
            n = sums[:, 1]
            return _finish(n, sums[:, 0], 2.0 * (n * sums[:, 3] - sums[:, 2] ** 2))

        return np.column_stack([d, m, s1, s2]), interval
    if metric.kind == "ordinal":
        return _ordinal_coincidences(profiles, m), _ordinal_statistic(n_values)
    delta_matrix = _delta_matrix(metric, profiles.sum(axis=0))
    d = np.sum((profiles @ delta_matrix) * profiles, axis=1) / (m - 1.0)

    def fixed(sums: FloatArray) -> FloatArray:
        marg = sums[:, 1:]
        return _finish(marg.sum(axis=1), sums[:, 0], np.sum((marg @ delta_matrix) * marg, axis=1))

    return np.column_stack([d, profiles]), fixed


def _ordinal_coincidences(profiles: FloatArray, m: FloatArray) -> Features:
    """Each profile's coincidence matrix (c c' - diag c) / (m - 1), flattened; sparse when dense would be large
    (a profile has a handful of distinct values, so at most their square of the V × V cells)."""
    n_profiles, n_values = profiles.shape
    if n_profiles * n_values * n_values <= _DENSE_FEATURE_CELLS:
        coincidences = profiles[:, :, None] * profiles[:, None, :]
        idx = np.arange(n_values)
        coincidences[:, idx, idx] -= profiles
        coincidences /= (m - 1.0)[:, None, None]
        return coincidences.reshape(n_profiles, -1)
    rows, values = np.nonzero(profiles)  # by profile, then value
    per_profile = np.bincount(rows, minlength=n_profiles)
    slot = np.arange(rows.size) - (np.cumsum(per_profile) - per_profile)[rows]
    width = int(per_profile.max())
    slot_value = np.full((n_profiles, width), -1, dtype=np.int64)
    slot_count = np.zeros((n_profiles, width))
    slot_value[rows, slot], slot_count[rows, slot] = values, profiles[rows, values]
    entry_rows, entry_cells, entry_weights = [], [], []
    for a in range(width):
        for b in range(width):
            both = np.flatnonzero((slot_value[:, a] >= 0) & (slot_value[:, b] >= 0))
            weight = slot_count[both, a] * slot_count[both, b] - (slot_count[both, a] if a == b else 0.0)
            entry_rows.append(both)
            entry_cells.append(slot_value[both, a] * n_values + slot_value[both, b])
            entry_weights.append(weight / (m[both] - 1.0))
    return sparse.csr_matrix(
        (np.concatenate(entry_weights), (np.concatenate(entry_rows), np.concatenate(entry_cells))),
        shape=(n_profiles, n_values * n_values),
    )


def _ordinal_statistic(n_values: int) -> Statistic:
    """Ordinal alpha from a resample's coincidence matrix: distances from the resample's own marginals."""
    idx = np.arange(n_values)
    low, high = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)

    def ordinal(sums: FloatArray) -> FloatArray:
        o = sums.reshape(-1, n_values, n_values)
        marg = o.sum(axis=2)
        cumulative = np.concatenate([np.zeros((marg.shape[0], 1)), np.cumsum(marg, axis=1)], axis=1)
        between = cumulative[:, high + 1] - cumulative[:, low]
        delta = (between - (marg[:, :, None] + marg[:, None, :]) / 2.0) ** 2
        observed = np.sum(o * delta, axis=(1, 2))
        expected = np.einsum("bc,bk,bck->b", marg, marg, delta)
        return _finish(marg.sum(axis=1), observed, expected)

    return ordinal


def _unit_interval_features(pairs: _Pairable, metric: Metric) -> tuple[FloatArray, Statistic]:
    """Interval features per unit, for value domains too large for a dense count matrix."""
    x = metric.numeric_values
    assert x is not None
    values = x[pairs.value] - np.mean(x[pairs.value])
    m = pairs.m.astype(np.float64)
    s1 = np.bincount(pairs.unit, weights=values, minlength=pairs.n_units)
    s2 = np.bincount(pairs.unit, weights=values * values, minlength=pairs.n_units)
    squares = np.bincount(pairs.unit, weights=(values - (s1 / m)[pairs.unit]) ** 2, minlength=pairs.n_units)
    d = 2.0 * m * squares / (m - 1.0)

    def interval(sums: FloatArray) -> FloatArray:
        n = sums[:, 1]
        return _finish(n, sums[:, 0], 2.0 * (n * sums[:, 3] - sums[:, 2] ** 2))

    return np.column_stack([d, m, s1, s2]), interval


def _poissonise(freq: FloatArray) -> bool:
    """Whether Poissonised resampling costs less than numpy's multinomial for these profile frequencies."""
    by_index = float(freq[freq < 2].sum()) + _SPARE_SD * math.sqrt(float(freq.sum()))
    by_table = int(np.count_nonzero((freq >= 2) & (freq < _TABLE_MAX_FREQ)))
    by_poisson = int(np.count_nonzero(freq >= _TABLE_MAX_FREQ))
    cost = _NS_DRAW * by_index + _NS_TABLE * by_table + _NS_POISSON * by_poisson
    return cost < _NS_MULTINOMIAL * freq.size


def _poisson_cdf(lam: float) -> FloatArray:
    """Cumulative Poisson(lam) probabilities far into the tail, the last set to 1 (inversion never runs off it)."""
    size = int(lam + 12.0 * math.sqrt(lam) + 40.0)
    pmf = np.empty(size)
    pmf[0] = math.exp(-lam)
    pmf[1:] = lam / np.arange(1, size)
    cdf = np.minimum(np.cumsum(np.cumprod(pmf)), 1.0)  # rounding may overshoot 1 in the tail: keep it sorted
    cdf[-1] = 1.0
    return cdf


class _PoissonTables:
    """Poisson draws by inversion for a few small means: a uniform u becomes the first k with F(k) > u.

    A guide table per mean (the first candidate k for each of 256 equal slices of [0, 1)) makes the search one
    lookup and, rarely, a few steps up; all columns of all means are drawn together.
    """

    buckets = 256

    def __init__(self, means: list[float]) -> None:
        cdfs = [_poisson_cdf(mean) for mean in means]
        self.width = max((cdf.size for cdf in cdfs), default=1)
        self.cdf = np.ones((len(cdfs), self.width))
        for row, cdf in enumerate(cdfs):
            self.cdf[row, : cdf.size] = cdf
        grid = np.arange(self.buckets) / self.buckets
        self.guide = np.stack([np.searchsorted(row, grid, side="right") for row in self.cdf]) if cdfs else None
        # position k of mean i is i * width + k in the flattened tables

    def draw(self, rng: np.random.Generator, table_of_column: IntArray, rows: int) -> IntArray:
        assert self.guide is not None
        uniform = rng.random((rows, table_of_column.size))
        bucket = (uniform * self.buckets).astype(np.intp)
        bucket += table_of_column * self.buckets
        drawn = np.take(self.guide.ravel(), bucket)
        offset = table_of_column * self.width
        position = drawn + offset
        up = np.flatnonzero(np.take(self.cdf.ravel(), position) <= uniform)
        flat_position, flat_uniform, cdf = position.ravel(), uniform.ravel(), self.cdf.ravel()
        while up.size:  # the guide is the first candidate: step up while F(k) <= u
            flat_position[up] += 1
            up = up[cdf[flat_position[up]] <= flat_uniform[up]]
        position -= offset
        return position


def _resample_counts(rng: np.random.Generator, freq: FloatArray, n_resamples: int) -> Iterator[tuple[int, FloatArray]]:
    """Blocks of (resamples × profiles) counts: how often each profile occurs among U units drawn with replacement.

    Every row is Multinomial(U, freq / U). With few profiles numpy's multinomial draws it (a binomial per profile).
    With many, the row is Poissonised: profile p gets Poisson(s f_p) units (by inverting a table of the Poisson
    distribution for each small f, by numpy's poisson for large ones, and as Poisson(s · their number) units drawn
    by index for profiles of a single unit), then the U - t units still missing are drawn by index from all units.
    Given its total t <= U a vector of independent Poisson(s f_p) counts is Multinomial(t, freq / U), so adding
    U - t independent draws makes it Multinomial(U, freq / U) exactly; a row with t > U (chance about 2 % for
    s = 1 - 2 / sqrt(U)) is drawn again, which keeps every row Multinomial(U, freq / U) given t <= U.
    """
    n_profiles = freq.size
    n_units = int(round(float(freq.sum())))
    if not _poissonise(freq):
        block = max(1, _BLOCK_CELLS // max(n_profiles, 1))
        for start in range(0, n_resamples, block):
            size = min(block, n_resamples - start)
            yield start, rng.multinomial(n_units, freq / freq.sum(), size=size).astype(np.float64)
        return
    # Work on profiles sorted by frequency, so that each way of drawing fills a contiguous range of columns.
    order = np.argsort(freq, kind="stable")
    restore = None if np.array_equal(order, np.arange(n_profiles)) else np.argsort(order)
    freq = freq[order]
    scale = max(0.0, 1.0 - _SPARE_SD / math.sqrt(n_units))
    pool = np.repeat(np.arange(n_profiles), freq.astype(np.int64))  # the profile of every unit
    n_single = int(np.searchsorted(freq, 2.0))  # profiles of one unit: columns [0, n_single)
    first_large = int(np.searchsorted(freq, float(_TABLE_MAX_FREQ)))  # columns [n_single, first_large): tables
    table_freqs, table_of_column = np.unique(freq[n_single:first_large], return_inverse=True)
    table_of_column = table_of_column.reshape(-1)
    tables = _PoissonTables([scale * f for f in table_freqs.tolist()])

    def draw(rows: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """Poisson counts of ``rows`` resamples (table columns, large columns, units of single-unit profiles to
        draw by index) and each row's total."""
        large = rng.poisson(scale * freq[first_large:], size=(rows, n_profiles - first_large))
        small = tables.draw(rng, table_of_column, rows) if first_large > n_single else np.zeros((rows, 0), np.intp)
        singles = rng.poisson(scale * n_single, size=rows)
        return small, large, singles, small.sum(axis=1) + large.sum(axis=1) + singles

    block = max(1, _BLOCK_CELLS // max(n_profiles, int(scale * n_single + 2 * _SPARE_SD * math.sqrt(n_units)) + 1))
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        small, large, singles, total = draw(size)
        over = np.flatnonzero(total > n_units)
        while over.size:
            small[over], large[over], singles[over], total[over] = draw(over.size)
            over = over[total[over] > n_units]
        missing = n_units - total
        rows = np.arange(size)
        drawn = [pool[rng.integers(0, n_units, size=int(missing.sum()), dtype=np.int32)]]
        row_of = [np.repeat(rows, missing)]
        if n_single:
            drawn.append(rng.integers(0, n_single, size=int(singles.sum()), dtype=np.int32))
            row_of.append(np.repeat(rows, singles))
        counts = np.bincount(
            np.concatenate(row_of) * n_profiles + np.concatenate(drawn), minlength=size * n_profiles
        ).reshape(size, n_profiles)
        counts[:, n_single:first_large] += small
        counts[:, first_large:] += large
        yield start, (counts if restore is None else counts[:, restore]).astype(np.float64)


def _merge_interval_profiles(profiles: FloatArray, freq: FloatArray, metric: Metric) -> tuple[FloatArray, FloatArray]:
    """One profile per (m, sum x, sum x^2): interval alpha sees a unit only through these, so units with different
    values but the same three sums are interchangeable (on a rating scale, about half the profiles merge)."""
    x = metric.numeric_values
    assert x is not None
    sums = np.column_stack([profiles.sum(axis=1), profiles @ x, profiles @ (x * x)])
    _, first, group = np.unique(sums, axis=0, return_index=True, return_inverse=True)
    return profiles[first], np.bincount(group.reshape(-1), weights=freq).astype(np.float64)


def bootstrap_alpha(pairs: _Pairable, metric: Metric, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """Alpha of ``n_resamples`` resamples of the pairable units (NaN where a resample has no expected disagreement)."""
    if pairs.dense_feasible():
        profiles, freq = _profiles(pairs.counts, pairs.m)
        if metric.kind == "interval":
            profiles, freq = _merge_interval_profiles(profiles, freq, metric)
        if _poissonise(freq):  # the Poissonised sampler wants profiles by frequency (any order gives the same alphas)
            order = np.argsort(freq, kind="stable")
            profiles, freq = profiles[order], freq[order]
        features, statistic = _profile_features(profiles, metric)
    elif metric.kind == "interval":
        features, statistic = _unit_interval_features(pairs, metric)
        freq = np.ones(pairs.n_units)
    else:
        return _bootstrap_by_pairs(pairs, metric, n_resamples, rng)
    samples = np.empty(n_resamples, dtype=np.float64)
    for start, counts in _resample_counts(rng, freq, n_resamples):
        sums = counts @ features if isinstance(features, np.ndarray) else np.asarray((features.T @ counts.T).T)
        samples[start : start + counts.shape[0]] = statistic(sums)
    return samples


def _bootstrap_by_pairs(pairs: _Pairable, metric: Metric, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """Slower general bootstrap for large value domains: per resample, unit weights over the within-unit pairs."""
    unit, first, second, weight = _value_pairs(pairs)
    entry_unit, entry_value, entry_count = pairs.entry_unit, pairs.entry_value, pairs.entry_count.astype(np.float64)
    samples = np.empty(n_resamples, dtype=np.float64)
    for start, unit_weights in _resample_counts(rng, np.ones(pairs.n_units), n_resamples):
        for offset, unit_weight in enumerate(unit_weights):
            marginals: FloatArray = np.bincount(
                entry_value, weights=entry_count * unit_weight[entry_unit], minlength=pairs.n_values
            ).astype(np.float64)
            observed = float(np.sum(unit_weight[unit] * weight * _delta_function(metric, marginals)(first, second)))
            n = float(marginals.sum())
            samples[start + offset] = _finish(
                np.array([n]), np.array([observed]), np.array([_expected_sum(metric, marginals)])
            )[0]
    return samples
