"""Breakdowns of alpha: per annotator pair, per annotator (leave-one-out and agreement with the rest), per group.

Agreement with the rest decomposes alpha by coder. The observed disagreement is a sum over the pairable
values, D_o = (1/n) sum_i sum_{j != i in u(i)} delta(v_i, v_j) / (m_u - 1); keeping only the values i of
annotator a gives D_o(a), their disagreement with everyone else on the same units, and
alpha_rest(a) = 1 - D_o(a) / D_e with the expected disagreement D_e of the whole data. The overall alpha is
the n_a-weighted mean of these, so an annotator far below it pulls agreement down.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.agreement.alpha import (
    AlphaResult,
    Metric,
    _delta_function,
    _expected_sum,
    _pairable,
    krippendorff_alpha,
    metric_for_level,
)
from annotation.agreement.ratings import AgreementInputError, Ratings


def _per_rater_units(ratings: Ratings) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """For each rater, their rated units (sorted) and the value they gave each."""
    order = np.lexsort((ratings.unit_idx, ratings.rater_idx))
    rater_sorted = ratings.rater_idx[order]
    bounds = np.searchsorted(rater_sorted, np.arange(ratings.n_raters + 1))
    return [
        (ratings.unit_idx[order[bounds[r] : bounds[r + 1]]], ratings.value_idx[order[bounds[r] : bounds[r + 1]]])
        for r in range(ratings.n_raters)
    ]


def pairwise_alpha(
    ratings: Ratings, level: str = "nominal", *, metric: Metric | None = None, min_shared_units: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alpha for every pair of raters on the units both rated, and the number of those units.

    Returns two rater × rater frames (alpha, shared units); pairs with fewer than ``min_shared_units`` shared
    units, and the diagonal, are NaN in the alpha frame.
    """
    per_rater = _per_rater_units(ratings)
    size = ratings.n_raters
    alphas = np.full((size, size), np.nan)
    shared_counts = np.zeros((size, size), dtype=np.int64)
    for a in range(size):
        units_a, values_a = per_rater[a]
        for b in range(a + 1, size):
            units_b, values_b = per_rater[b]
            _, index_a, index_b = np.intersect1d(units_a, units_b, assume_unique=True, return_indices=True)
            shared = index_a.size
            shared_counts[a, b] = shared_counts[b, a] = shared
            if shared < min_shared_units:
                continue
            pair = Ratings(
                unit_idx=np.concatenate([np.arange(shared), np.arange(shared)]),
                rater_idx=np.concatenate([np.zeros(shared, dtype=np.int64), np.ones(shared, dtype=np.int64)]),
                value_idx=np.concatenate([values_a[index_a], values_b[index_b]]),
                units=np.arange(shared),
                raters=ratings.raters[[a, b]],
                values=ratings.values,
            )
            alphas[a, b] = alphas[b, a] = krippendorff_alpha(pair, level, metric=metric).alpha
    names = pd.Index(ratings.raters, name="rater")
    return pd.DataFrame(alphas, index=names, columns=names), pd.DataFrame(shared_counts, index=names, columns=names)


def _disagreement_with_others(ratings: Ratings, metric: Metric) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Per rating: sum over the other values in its unit of delta / (m_u - 1); and whether the unit is pairable."""
    per_unit = np.bincount(ratings.unit_idx, minlength=ratings.n_units)
    pairable = per_unit[ratings.unit_idx] >= 2
    pairs = _pairable(ratings)
    delta = _delta_function(metric, pairs.marginals())
    order = np.argsort(ratings.unit_idx, kind="stable")
    unit_sorted = ratings.unit_idx[order]
    starts = np.searchsorted(unit_sorted, np.arange(ratings.n_units))
    slot = np.arange(ratings.n_ratings) - starts[unit_sorted]
    width = int(per_unit.max()) if per_unit.size else 0
    slot_value = np.full((ratings.n_units, width), -1, dtype=np.int64)
    slot_value[unit_sorted, slot] = ratings.value_idx[order]
    slot_sum = np.zeros((ratings.n_units, width))
    for a in range(width):
        for b in range(width):
            if a == b:
                continue
            rows = np.flatnonzero((slot_value[:, a] >= 0) & (slot_value[:, b] >= 0))
            slot_sum[rows, a] += delta(slot_value[rows, a], slot_value[rows, b])
    per_rating = np.empty(ratings.n_ratings)
    per_rating[order] = slot_sum[unit_sorted, slot]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(pairable, per_rating / (per_unit[ratings.unit_idx] - 1.0), 0.0).astype(np.float64)
    return scaled, pairable


def annotator_agreement(ratings: Ratings, level: str = "nominal", *, metric: Metric | None = None) -> pd.DataFrame:
    """Per annotator: ratings, pairable ratings, agreement with the rest, and alpha without them (leave-one-out).

    A metric computes its marginal-dependent distances (ordinal) from whatever ratings it is applied to, so
    one metric serves the whole data and every subset.

    ``alpha_change_without`` > 0 means agreement rises when the annotator is left out.
    """
    metric = metric or metric_for_level(ratings, level)
    overall = krippendorff_alpha(ratings, level, metric=metric)
    per_rating, pairable = _disagreement_with_others(ratings, metric)
    pairs = _pairable(ratings)
    n = float(pairs.n)
    expected = _expected_sum(metric, pairs.marginals()) / (n * (n - 1.0)) if n >= 2 else float("nan")
    rows: list[dict[str, Any]] = []
    for rater in range(ratings.n_raters):
        mine = ratings.rater_idx == rater
        n_pairable = int(np.sum(mine & pairable))
        observed = float(np.sum(per_rating[mine & pairable]) / n_pairable) if n_pairable else float("nan")
        rest = 1.0 - observed / expected if n_pairable and expected > 0 else float("nan")
        without = krippendorff_alpha(ratings.subset(~mine), level, metric=metric)
        rows.append(
            {
                "rater": ratings.raters[rater],
                "n_ratings": int(mine.sum()),
                "n_pairable_ratings": n_pairable,
                "observed_disagreement": observed,
                "alpha_with_rest": rest,
                "alpha_without": without.alpha,
                "alpha_change_without": without.alpha - overall.alpha,
            }
        )
    return pd.DataFrame(rows).set_index("rater")


def alpha_by_group(
    ratings: Ratings,
    groups: Sequence[Hashable] | npt.NDArray[Any] | pd.Series,
    level: str = "nominal",
    *,
    metric: Metric | None = None,
    n_resamples: int = 0,
    confidence_level: float = 0.95,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Alpha (with interval when resampling) per group, e.g. language, perspective or label; one group per rating."""
    group_col = pd.Series(np.asarray(groups, dtype=object))
    if len(group_col) != ratings.n_ratings:
        raise AgreementInputError(f"groups has {len(group_col)} entries for {ratings.n_ratings} ratings")
    codes, names = pd.factorize(group_col, sort=True)
    rows: list[dict[str, Any]] = []
    for code, name in enumerate(names):
        subset = ratings.subset(codes == code)
        result: AlphaResult = krippendorff_alpha(
            subset,
            level,
            metric=metric,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            seed=seed,
        )
        rows.append(
            {
                "group": name,
                "alpha": result.alpha,
                "interval_low": result.interval[0] if result.interval else np.nan,
                "interval_high": result.interval[1] if result.interval else np.nan,
                "n_ratings": subset.n_ratings,
                "n_pairable_units": result.n_pairable_units,
                "n_pairable_values": result.n_pairable_values,
            }
        )
    return pd.DataFrame(rows).set_index("group")
