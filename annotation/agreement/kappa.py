"""Cohen's kappa (two raters), Fleiss' kappa (a fixed number of ratings per unit), observed agreement, counts.

Cohen (1960): kappa = (p_o - p_e) / (1 - p_e) with p_e from the two raters' own marginals; weighted kappa
(Cohen 1968) uses linear |i - j| / (K - 1) or quadratic ((i - j) / (K - 1))^2 disagreement weights over the
ordered categories. Fleiss (1971): P_i = (sum_j n_ij^2 - n) / (n (n - 1)), P_bar the mean of P_i,
p_j = sum_i n_ij / (N n), P_e = sum_j p_j^2, kappa = (P_bar - P_e) / (1 - P_e); it needs every unit to have the
same number n of ratings (the raters themselves may differ) and says so when that does not hold.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.agreement.alpha import _pairable
from annotation.agreement.ratings import AgreementInputError, Ratings


@dataclass(frozen=True)
class KappaResult:
    """A kappa, or the reason it does not apply to these ratings (``applicable`` False, ``kappa`` NaN)."""

    name: str
    kappa: float
    observed_agreement: float
    expected_agreement: float
    n_units: int
    applicable: bool = True
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kappa": self.kappa if np.isfinite(self.kappa) else None,
            "observed_agreement": self.observed_agreement if np.isfinite(self.observed_agreement) else None,
            "expected_agreement": self.expected_agreement if np.isfinite(self.expected_agreement) else None,
            "n_units": self.n_units,
            "applicable": self.applicable,
            "reason": self.reason,
        }


def _not_applicable(name: str, reason: str, n_units: int = 0) -> KappaResult:
    nan = float("nan")
    return KappaResult(name, nan, nan, nan, n_units, applicable=False, reason=reason)


def cohen_kappa_from_table(table: npt.ArrayLike, weights: Literal["linear", "quadratic"] | None = None) -> KappaResult:
    """Cohen's kappa from a K × K contingency table (rows: rater A's category, columns: rater B's)."""
    counts = np.asarray(table, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise AgreementInputError(f"contingency table must be square, got shape {counts.shape}")
    total = counts.sum()
    name = "cohen_kappa" if weights is None else f"cohen_kappa_{weights}"
    if total == 0:
        return _not_applicable(name, "no unit was rated by both raters")
    size = counts.shape[0]
    index = np.arange(size)
    if weights is None:
        disagreement = (index[:, None] != index[None, :]).astype(np.float64)
    elif weights == "linear":
        disagreement = np.abs(index[:, None] - index[None, :]) / max(size - 1, 1)
    elif weights == "quadratic":
        disagreement = ((index[:, None] - index[None, :]) / max(size - 1, 1)) ** 2
    else:
        raise AgreementInputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    observed = counts / total
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    p_o = 1.0 - float(np.sum(disagreement * observed))
    p_e = 1.0 - float(np.sum(disagreement * expected))
    if p_e >= 1.0:
        return KappaResult(name, float("nan"), p_o, p_e, int(total), applicable=False,
                           reason="both raters used a single category: kappa is undefined")
    return KappaResult(name, (p_o - p_e) / (1.0 - p_e), p_o, p_e, int(total))


def cohen_kappa(
    first: Sequence[Hashable] | pd.Series,
    second: Sequence[Hashable] | pd.Series,
    *,
    labels: Sequence[Hashable] | None = None,
    weights: Literal["linear", "quadratic"] | None = None,
) -> KappaResult:
    """Cohen's kappa of two raters' labels for the same units (positions match; None/NaN pairs are skipped).

    Weighted kappa needs ``labels`` in their order (e.g. intensity 0..3), or sortable labels.
    """
    a, b = pd.Series(list(first), dtype=object), pd.Series(list(second), dtype=object)
    if len(a) != len(b):
        raise AgreementInputError(f"the two raters' label lists differ in length: {len(a)} and {len(b)}")
    both = (a.notna() & b.notna()).to_numpy()
    a, b = a[both], b[both]
    categories = list(labels) if labels is not None else sorted(set(a) | set(b), key=lambda v: (str(type(v)), v))
    position = {label: i for i, label in enumerate(categories)}
    unknown = (set(a) | set(b)) - set(position)
    if unknown:
        raise AgreementInputError(f"labels {sorted(map(str, unknown))} are not among the given labels")
    rows = np.fromiter((position[v] for v in a), dtype=np.int64, count=len(a))
    cols = np.fromiter((position[v] for v in b), dtype=np.int64, count=len(b))
    size = len(categories)
    table = np.bincount(rows * size + cols, minlength=size * size).reshape(size, size)
    return cohen_kappa_from_table(table, weights)


def cohen_kappa_for_raters(ratings: Ratings, first_rater: Hashable, second_rater: Hashable) -> KappaResult:
    """Cohen's kappa of two named raters over the units both rated (nominal)."""
    rater_ids = list(ratings.raters)
    for rater in (first_rater, second_rater):
        if rater not in rater_ids:
            raise AgreementInputError(f"rater {rater!r} has no ratings")
    a, b = rater_ids.index(first_rater), rater_ids.index(second_rater)
    first = np.full(ratings.n_units, -1, dtype=np.int64)
    second = np.full(ratings.n_units, -1, dtype=np.int64)
    mask_a, mask_b = ratings.rater_idx == a, ratings.rater_idx == b
    first[ratings.unit_idx[mask_a]] = ratings.value_idx[mask_a]
    second[ratings.unit_idx[mask_b]] = ratings.value_idx[mask_b]
    shared = (first >= 0) & (second >= 0)
    size = ratings.n_values
    table = np.bincount(first[shared] * size + second[shared], minlength=size * size).reshape(size, size)
    return cohen_kappa_from_table(table)


def fleiss_kappa_from_counts(counts: npt.ArrayLike) -> KappaResult:
    """Fleiss' kappa from a units × categories matrix of how many raters chose each category."""
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2:
        raise AgreementInputError(f"count table must be units × categories, got shape {table.shape}")
    per_unit = table.sum(axis=1)
    if table.shape[0] == 0:
        return _not_applicable("fleiss_kappa", "no units")
    if not np.all(per_unit == per_unit[0]):
        return _not_applicable(
            "fleiss_kappa",
            f"units have between {int(per_unit.min())} and {int(per_unit.max())} ratings; Fleiss' kappa needs the "
            "same number of ratings for every unit (use Krippendorff's alpha, which allows missing ratings)",
            int(table.shape[0]),
        )
    raters = per_unit[0]
    if raters < 2:
        return _not_applicable("fleiss_kappa", "units need at least two ratings each", int(table.shape[0]))
    agreement = (np.sum(table * table, axis=1) - raters) / (raters * (raters - 1.0))
    p_bar = float(agreement.mean())
    shares = table.sum(axis=0) / table.sum()
    p_e = float(np.sum(shares**2))
    if p_e >= 1.0:
        return KappaResult("fleiss_kappa", float("nan"), p_bar, p_e, int(table.shape[0]), applicable=False,
                           reason="every rating is the same category: kappa is undefined")
    return KappaResult("fleiss_kappa", (p_bar - p_e) / (1.0 - p_e), p_bar, p_e, int(table.shape[0]))


def fleiss_kappa(ratings: Ratings, *, pairable_only: bool = True) -> KappaResult:
    """Fleiss' kappa of encoded nominal ratings; units with fewer than two ratings are left out when ``pairable_only``."""
    per_unit = np.bincount(ratings.unit_idx, minlength=ratings.n_units)
    keep_units = per_unit >= (2 if pairable_only else 1)
    table = np.bincount(
        ratings.unit_idx * ratings.n_values + ratings.value_idx, minlength=ratings.n_units * ratings.n_values
    ).reshape(ratings.n_units, ratings.n_values)
    return fleiss_kappa_from_counts(table[keep_units])


@dataclass(frozen=True)
class RatingCounts:
    n_ratings: int
    n_units: int
    n_raters: int
    n_units_with_two_or_more: int
    ratings_per_unit: dict[int, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "n_ratings": self.n_ratings,
            "n_units": self.n_units,
            "n_raters": self.n_raters,
            "n_units_with_two_or_more": self.n_units_with_two_or_more,
            "ratings_per_unit": {str(k): v for k, v in self.ratings_per_unit.items()},
        }


def rating_counts(ratings: Ratings) -> RatingCounts:
    """How many units, raters, ratings; how many units have at least two ratings; the ratings-per-unit histogram."""
    per_unit = np.bincount(ratings.unit_idx, minlength=ratings.n_units)
    rated = per_unit[per_unit > 0]
    sizes, frequency = np.unique(rated, return_counts=True)
    return RatingCounts(
        n_ratings=ratings.n_ratings,
        n_units=int(rated.size),
        n_raters=int(np.unique(ratings.rater_idx).size),
        n_units_with_two_or_more=int(np.sum(rated >= 2)),
        ratings_per_unit={int(s): int(f) for s, f in zip(sizes, frequency)},
    )


def observed_agreement(ratings: Ratings) -> float:
    """Share of agreeing pairs of values within units, weighted as in alpha: 1 - D_o (nominal).

    Each pairable unit u contributes sum_c n_uc (n_uc - 1) / (m_u - 1) agreeing pairs out of m_u; NaN without
    pairable units.
    """
    pairs = _pairable(ratings)
    if pairs.n == 0:
        return float("nan")
    m = pairs.m.astype(np.float64)
    if pairs.dense_cheap():
        same = np.einsum("uv,uv->u", pairs.counts, pairs.counts).astype(np.float64)
    else:
        same = np.bincount(pairs.entry_unit, weights=pairs.entry_count.astype(np.float64) ** 2, minlength=pairs.n_units)
    return float(np.sum((same - m) / (m - 1.0)) / pairs.n)
