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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from annotation.agreement.ratings import AgreementInputError, FloatArray, IntArray, Ratings

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")

# Dense unit × value count matrices above this many cells are not built (memory), see _Pairable.counts.
_MAX_DENSE_CELLS = 40_000_000
# Profiles up to this many are resampled by one multinomial draw per resample; beyond, by drawing units.
_MAX_MULTINOMIAL_PROFILES = 2_000
# Cells of a (resamples × profiles) count block held at once.
_BLOCK_CELLS = 20_000_000


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


@dataclass(frozen=True)
class _Pairable:
    """Ratings of pairable units only, with units renumbered 0..U_p-1 and per-unit value counts as entries."""

    unit: IntArray  # per rating
    value: IntArray  # per rating
    m: IntArray  # values per pairable unit
    entry_unit: IntArray  # one entry per (unit, distinct value), sorted by unit then value
    entry_value: IntArray
    entry_count: IntArray
    n_values: int  # size of the value domain V

    @property
    def n_units(self) -> int:
        return int(self.m.size)

    @property
    def n(self) -> int:
        return int(self.m.sum())

    def marginals(self) -> FloatArray:
        return np.bincount(self.value, minlength=self.n_values).astype(np.float64)

    def dense_feasible(self) -> bool:
        return self.n_units * self.n_values <= _MAX_DENSE_CELLS

    def counts(self) -> npt.NDArray[np.int32]:
        """Unit × value count matrix (only when dense_feasible)."""
        dense = np.zeros((self.n_units, self.n_values), dtype=np.int32)
        dense[self.entry_unit, self.entry_value] = self.entry_count
        return dense


def _pairable(ratings: Ratings) -> _Pairable:
    per_unit = np.bincount(ratings.unit_idx, minlength=ratings.n_units)
    pairable_units = np.flatnonzero(per_unit >= 2)
    remap = np.full(ratings.n_units, -1, dtype=np.int64)
    remap[pairable_units] = np.arange(pairable_units.size)
    keep = per_unit[ratings.unit_idx] >= 2
    unit = remap[ratings.unit_idx[keep]]
    value = ratings.value_idx[keep]
    n_values = max(ratings.n_values, 1)
    keys, counts = np.unique(unit * n_values + value, return_counts=True)
    return _Pairable(
        unit=unit,
        value=value,
        m=per_unit[pairable_units].astype(np.int64),
        entry_unit=keys // n_values,
        entry_value=keys % n_values,
        entry_count=counts.astype(np.int64),
        n_values=n_values,
    )


def _ordinal_matrix(marginals: FloatArray) -> FloatArray:
    """delta(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 for values ranked c <= k (Krippendorff 2011)."""
    cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
    low = np.minimum.outer(np.arange(marginals.size), np.arange(marginals.size))
    high = np.maximum.outer(np.arange(marginals.size), np.arange(marginals.size))
    between = cumulative[high + 1] - cumulative[low]
    return np.asarray((between - (marginals[:, None] + marginals[None, :]) / 2.0) ** 2, dtype=np.float64)


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
        same = np.bincount(pairs.entry_unit, weights=pairs.entry_count.astype(np.float64) ** 2, minlength=pairs.n_units)
        return float(np.sum((m * m - same) / (m - 1.0)))
    if metric.kind == "interval":
        x = metric.numeric_values
        assert x is not None
        values = x[pairs.value]
        means = np.bincount(pairs.unit, weights=values, minlength=pairs.n_units) / m
        squares = np.bincount(pairs.unit, weights=(values - means[pairs.unit]) ** 2, minlength=pairs.n_units)
        # sum_{i != j} (x_i - x_j)^2 = 2 m sum_i (x_i - mean)^2
        return float(np.sum(2.0 * m * squares / (m - 1.0)))
    unit, first, second, weight = _value_pairs(pairs)
    return float(np.sum(weight * _delta_function(metric, marginals)(first, second)))


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
    pairs = _pairable(ratings)
    marginals = pairs.marginals()
    n = float(pairs.n)
    alpha, d_o, d_e = _alpha_from_sums(n, _observed_sum(pairs, metric, marginals), _expected_sum(metric, marginals))
    result = AlphaResult(
        alpha=alpha,
        metric=metric.name,
        observed_disagreement=d_o,
        expected_disagreement=d_e,
        n_units=ratings.n_units,
        n_pairable_units=pairs.n_units,
        n_pairable_values=int(n),
    )
    if n_resamples <= 0 or pairs.n_units == 0:
        return result
    if not 0.0 < confidence_level < 1.0:
        raise AgreementInputError(f"confidence level must be between 0 and 1, got {confidence_level}")
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


def _profiles(counts: npt.NDArray[np.int32], m: IntArray) -> tuple[FloatArray, IntArray, FloatArray]:
    """Distinct rows of the unit × value count matrix: (profiles, profile of each unit, units per profile)."""
    n_values = counts.shape[1]
    base = int(m.max()) + 1 if m.size else 1
    if n_values * np.log2(base) < 62:
        key = counts.astype(np.int64) @ (base ** np.arange(n_values, dtype=np.int64))
        _, first, inverse, freq = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        profiles = counts[first]
    else:
        profiles, inverse, freq = np.unique(counts, axis=0, return_inverse=True, return_counts=True)
    return profiles.astype(np.float64), inverse.reshape(-1).astype(np.int64), freq.astype(np.float64)


Statistic = Callable[[FloatArray], FloatArray]


def _finish(n: FloatArray, observed: FloatArray, expected: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    return np.asarray(np.where((n >= 2) & (expected > 0), alpha, np.nan), dtype=np.float64)


def _profile_features(profiles: FloatArray, metric: Metric) -> tuple[FloatArray, Statistic]:
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
        coincidences = profiles[:, :, None] * profiles[:, None, :]
        idx = np.arange(n_values)
        coincidences[:, idx, idx] -= profiles
        coincidences /= (m - 1.0)[:, None, None]
        low = np.minimum.outer(idx, idx)
        high = np.maximum.outer(idx, idx)

        def ordinal(sums: FloatArray) -> FloatArray:
            o = sums.reshape(-1, n_values, n_values)
            marg = o.sum(axis=2)
            cumulative = np.concatenate([np.zeros((marg.shape[0], 1)), np.cumsum(marg, axis=1)], axis=1)
            between = cumulative[:, high + 1] - cumulative[:, low]
            delta = (between - (marg[:, :, None] + marg[:, None, :]) / 2.0) ** 2
            observed = np.sum(o * delta, axis=(1, 2))
            expected = np.einsum("bc,bk,bck->b", marg, marg, delta)
            return _finish(marg.sum(axis=1), observed, expected)

        return coincidences.reshape(profiles.shape[0], -1), ordinal
    delta_matrix = _delta_matrix(metric, profiles.sum(axis=0))
    d = np.sum((profiles @ delta_matrix) * profiles, axis=1) / (m - 1.0)

    def fixed(sums: FloatArray) -> FloatArray:
        marg = sums[:, 1:]
        return _finish(marg.sum(axis=1), sums[:, 0], np.sum((marg @ delta_matrix) * marg, axis=1))

    return np.column_stack([d, profiles]), fixed


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


def _resample_counts(
    rng: np.random.Generator, freq: FloatArray, unit_profile: IntArray | None, n_resamples: int
) -> Iterator[tuple[int, FloatArray]]:
    """Blocks of (resamples × profiles) counts: how often each profile occurs among U_p units drawn with replacement."""
    n_profiles = freq.size
    n_units = int(freq.sum())
    block = max(1, _BLOCK_CELLS // max(n_profiles, 1))
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        if n_profiles <= _MAX_MULTINOMIAL_PROFILES:
            counts = rng.multinomial(n_units, freq / freq.sum(), size=size).astype(np.float64)
        else:
            counts = np.empty((size, n_profiles), dtype=np.float64)
            for row in range(size):
                drawn = rng.integers(0, n_units, size=n_units)
                counts[row] = np.bincount(drawn if unit_profile is None else unit_profile[drawn], minlength=n_profiles)
        yield start, counts


def bootstrap_alpha(pairs: _Pairable, metric: Metric, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """Alpha of ``n_resamples`` resamples of the pairable units (NaN where a resample has no expected disagreement)."""
    unit_profile: IntArray | None
    if pairs.dense_feasible():
        profiles, unit_profile, freq = _profiles(pairs.counts(), pairs.m)
        if metric.kind == "ordinal" and profiles.shape[0] * pairs.n_values**2 > _MAX_DENSE_CELLS:
            return _bootstrap_by_pairs(pairs, metric, n_resamples, rng)
        features, statistic = _profile_features(profiles, metric)
    elif metric.kind == "interval":
        features, statistic = _unit_interval_features(pairs, metric)
        unit_profile, freq = None, np.ones(pairs.n_units)
    else:
        return _bootstrap_by_pairs(pairs, metric, n_resamples, rng)
    samples = np.empty(n_resamples, dtype=np.float64)
    for start, counts in _resample_counts(rng, freq, unit_profile, n_resamples):
        samples[start : start + counts.shape[0]] = statistic(counts @ features)
    return samples


def _bootstrap_by_pairs(pairs: _Pairable, metric: Metric, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """Slower general bootstrap for large value domains: per resample, unit weights over the within-unit pairs."""
    unit, first, second, weight = _value_pairs(pairs)
    entry_count = pairs.entry_count.astype(np.float64)
    samples = np.empty(n_resamples, dtype=np.float64)
    for index in range(n_resamples):
        unit_weight = np.bincount(rng.integers(0, pairs.n_units, size=pairs.n_units), minlength=pairs.n_units).astype(np.float64)
        marginals: FloatArray = np.bincount(
            pairs.entry_value, weights=entry_count * unit_weight[pairs.entry_unit], minlength=pairs.n_values
        ).astype(np.float64)
        observed = float(np.sum(unit_weight[unit] * weight * _delta_function(metric, marginals)(first, second)))
        n = float(marginals.sum())
        samples[index] = _finish(np.array([n]), np.array([observed]), np.array([_expected_sum(metric, marginals)]))[0]
    return samples
