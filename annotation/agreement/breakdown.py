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
    _SMALL_DOMAIN,
    AlphaResult,
    Metric,
    _alpha_from_sums,
    _delta_function,
    _delta_matrix,
    _expected_sum,
    _finish,
    _pairable,
    krippendorff_alpha,
    metric_for_level,
)
from annotation.agreement.ratings import AgreementInputError, FloatArray, IntArray, Ratings

# Rater pairs × value pairs cells of the pairwise contingency tables built at once (beyond: pair by pair).
_MAX_PAIR_TABLE_CELLS = 20_000_000


def _slots(ratings: Ratings) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Ratings sorted by unit: (order, unit of each, slot within its unit, ratings per unit)."""
    per_unit = np.bincount(ratings.unit_idx, minlength=ratings.n_units)
    order = np.argsort(ratings.unit_idx, kind="stable")
    unit_sorted = ratings.unit_idx[order]
    starts = np.concatenate([[0], np.cumsum(per_unit)[:-1]])
    return order, unit_sorted, np.arange(ratings.n_ratings) - starts[unit_sorted], per_unit


def _rating_pairs(ratings: Ratings) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Every pair of ratings of one unit by two different raters: (rater a, rater b, value a, value b), a < b."""
    order, unit_sorted, slot, per_unit = _slots(ratings)
    width = int(per_unit.max()) if per_unit.size else 0
    slot_rater = np.full((ratings.n_units, width), -1, dtype=np.int64)
    slot_value = np.zeros((ratings.n_units, width), dtype=np.int64)
    slot_rater[unit_sorted, slot] = ratings.rater_idx[order]
    slot_value[unit_sorted, slot] = ratings.value_idx[order]
    firsts, seconds, first_values, second_values = [], [], [], []
    for b in range(1, width):
        rows = np.flatnonzero(slot_rater[:, b] >= 0)  # slots fill from the left: slot a < b is taken too
        for a in range(b):
            ra, rb = slot_rater[rows, a], slot_rater[rows, b]
            va, vb = slot_value[rows, a], slot_value[rows, b]
            swap = ra > rb
            firsts.append(np.where(swap, rb, ra))
            seconds.append(np.where(swap, ra, rb))
            first_values.append(np.where(swap, vb, va))
            second_values.append(np.where(swap, va, vb))
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    different = a != b  # a rater who rated a unit twice is not paired with themself
    return a[different], b[different], np.concatenate(first_values)[different], np.concatenate(second_values)[different]


def pairwise_tables(ratings: Ratings) -> npt.NDArray[np.int64]:
    """Contingency tables of every rater pair on the units both rated: ``tables[a, b, i, k]`` (a < b) counts units
    where rater a gave value i and rater b value k (the lower triangle a > b is zero)."""
    raters, values = ratings.n_raters, max(ratings.n_values, 1)
    a, b, va, vb = _rating_pairs(ratings)
    key = ((a * raters + b) * values + va) * values + vb
    return np.bincount(key, minlength=raters * raters * values * values).reshape(raters, raters, values, values)


def _alpha_of_tables(tables: FloatArray, metric: Metric) -> FloatArray:
    """Alpha of pair data from their contingency tables (pairs × V × V): every unit has m = 2, so the coincidence
    matrix is the table plus its transpose."""
    coincidences = tables + np.swapaxes(tables, 1, 2)
    marginals = coincidences.sum(axis=2)
    n = marginals.sum(axis=1)
    if metric.kind == "ordinal":
        size = marginals.shape[1]
        index = np.arange(size)
        low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)
        cumulative = np.concatenate([np.zeros((marginals.shape[0], 1)), np.cumsum(marginals, axis=1)], axis=1)
        between = cumulative[:, high + 1] - cumulative[:, low]
        delta = (between - (marginals[:, :, None] + marginals[:, None, :]) / 2.0) ** 2
    else:
        delta = np.broadcast_to(_delta_matrix(metric, marginals.sum(axis=0)), coincidences.shape)
    observed = np.einsum("pck,pck->p", coincidences, delta)
    expected = np.einsum("pc,pk,pck->p", marginals, marginals, delta)
    return _finish(n, observed, expected)


def pairwise_alpha(
    ratings: Ratings, level: str = "nominal", *, metric: Metric | None = None, min_shared_units: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alpha for every pair of raters on the units both rated, and the number of those units.

    Returns two rater × rater frames (alpha, shared units); pairs with fewer than ``min_shared_units`` shared
    units, and the diagonal, are NaN in the alpha frame. All pairs' contingency tables come from one bincount over
    the pairs of ratings within units, and alpha of a pair is a V × V sum over its table.
    """
    metric = metric or metric_for_level(ratings, level)
    size, values = ratings.n_raters, max(ratings.n_values, 1)
    if size * size * values * values > _MAX_PAIR_TABLE_CELLS or values > _SMALL_DOMAIN:
        return _pairwise_alpha_by_pair(ratings, level, metric, min_shared_units)
    tables = pairwise_tables(ratings)
    first, second = np.triu_indices(size, k=1)
    upper = tables[first, second].astype(np.float64)
    shared_upper = upper.sum(axis=(1, 2)).astype(np.int64)
    alpha_upper = np.where(shared_upper >= min_shared_units, _alpha_of_tables(upper, metric), np.nan)
    alphas = np.full((size, size), np.nan)
    shared_counts = np.zeros((size, size), dtype=np.int64)
    alphas[first, second] = alphas[second, first] = alpha_upper
    shared_counts[first, second] = shared_counts[second, first] = shared_upper
    names = pd.Index(ratings.raters, name="rater")
    return pd.DataFrame(alphas, index=names, columns=names), pd.DataFrame(shared_counts, index=names, columns=names)


def _per_rater_units(ratings: Ratings) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """For each rater, their rated units (sorted) and the value they gave each."""
    order = np.lexsort((ratings.unit_idx, ratings.rater_idx))
    rater_sorted = ratings.rater_idx[order]
    bounds = np.searchsorted(rater_sorted, np.arange(ratings.n_raters + 1))
    return [
        (ratings.unit_idx[order[bounds[r] : bounds[r + 1]]], ratings.value_idx[order[bounds[r] : bounds[r + 1]]])
        for r in range(ratings.n_raters)
    ]


def _pairwise_alpha_by_pair(
    ratings: Ratings, level: str, metric: Metric, min_shared_units: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise alpha one pair at a time, for value domains too large for contingency tables (continuous values)."""
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
    """Per rating: sum over the other values in its unit of delta / (m_u - 1); and whether the unit is pairable.

    The general form, one slot pair at a time, for value domains too large for a unit × value count matrix.
    """
    order, unit_sorted, slot, per_unit = _slots(ratings)
    pairable = per_unit[ratings.unit_idx] >= 2
    delta = _delta_function(metric, _pairable(ratings).marginals())
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


def _coincidence_sum(counts: npt.NDArray[Any], m: npt.NDArray[Any]) -> FloatArray:
    """sum over rows with m >= 2 of c c' / (m - 1), without the diagonal correction (delta's diagonal is zero)."""
    weight = np.where(m >= 2, 1.0 / np.maximum(m - 1.0, 1.0), 0.0)
    return np.asarray((counts * weight[:, None]).T @ counts, dtype=np.float64)


def _pair_weight(m: FloatArray) -> FloatArray:
    """1 / (m - 1) for pairable units, 0 for the others."""
    return np.where(m >= 2, 1.0 / np.maximum(m - 1.0, 1.0), 0.0)


def annotator_agreement(ratings: Ratings, level: str = "nominal", *, metric: Metric | None = None) -> pd.DataFrame:
    """Per annotator: ratings, pairable ratings, agreement with the rest, and alpha without them (leave-one-out).

    A metric computes its marginal-dependent distances (ordinal) from whatever ratings it is applied to, so
    one metric serves the whole data and every subset.

    ``alpha_change_without`` > 0 means agreement rises when the annotator is left out. Leaving a rater out
    changes only the units they rated, so each annotator costs work in proportion to their ratings: with a fixed
    distance, a unit's c' delta c loses 2 (delta c)_v when the rater's value v goes; with ordinal distances, which
    move with the marginals, their units' coincidences are taken out of the totals and put back without the rater.
    """
    metric = metric or metric_for_level(ratings, level)
    pairs = _pairable(ratings)
    if not (pairs.dense_feasible() and pairs.n_values <= _SMALL_DOMAIN):
        return _annotator_agreement_general(ratings, level, metric)
    overall = krippendorff_alpha(ratings, level, metric=metric)
    values = pairs.n_values
    counts = np.bincount(ratings.unit_idx * values + ratings.value_idx, minlength=ratings.n_units * values)
    counts = counts.reshape(ratings.n_units, values).astype(np.float64)
    per_unit = counts.sum(axis=1)
    marginals = pairs.marginals()
    n = float(pairs.n)
    delta = _delta_matrix(metric, marginals)
    expected = _expected_sum(metric, marginals) / (n * (n - 1.0)) if n >= 2 else float("nan")
    spread = counts @ delta  # (delta c_u)_v: the distance of value v to all values of unit u
    mine_spread = spread[ratings.unit_idx, ratings.value_idx]
    pairable = per_unit[ratings.unit_idx] >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        # A rating's disagreement with the other values of its unit.
        per_rating = np.where(pairable, mine_spread / (per_unit[ratings.unit_idx] - 1.0), 0.0)
    order = np.argsort(ratings.rater_idx, kind="stable")
    bounds = np.searchsorted(ratings.rater_idx[order], np.arange(ratings.n_raters + 1))
    ordinal = metric.kind == "ordinal"
    once = np.unique(ratings.unit_idx * ratings.n_raters + ratings.rater_idx).size == ratings.n_ratings
    if ordinal or not once:  # moving distances, or a rater twice on a unit: coincidence matrices per rater
        coincidences = _coincidence_sum(counts, per_unit)
    else:
        spread_total = np.einsum("uv,uv->u", spread, counts)  # c_u' delta c_u
        weight, weight_without = _pair_weight(per_unit), _pair_weight(per_unit - 1.0)
        observed_total = float(spread_total @ weight)
    rows: list[dict[str, Any]] = []
    for rater in range(ratings.n_raters):
        mine = order[bounds[rater] : bounds[rater + 1]]
        units, mine_values = ratings.unit_idx[mine], ratings.value_idx[mine]
        if ordinal or not once:
            units, position = np.unique(units, return_inverse=True)
            removed = np.bincount(
                position.reshape(-1) * values + mine_values, minlength=units.size * values
            ).reshape(units.size, values)
            before, m_before = counts[units], per_unit[units]
            after = before - removed
            m_after = m_before - removed.sum(axis=1)
            rest_coincidences: FloatArray = coincidences - _coincidence_sum(before, m_before)
            rest_coincidences += _coincidence_sum(after, m_after)
            rest_marginals = marginals - before[m_before >= 2].sum(axis=0) + after[m_after >= 2].sum(axis=0)
            rest_delta = _delta_matrix(metric, rest_marginals) if ordinal else delta
            rest_observed = float(np.sum(rest_coincidences * rest_delta))
        else:
            m = per_unit[units]
            rest_observed = observed_total - float(spread_total[units] @ weight[units])
            rest_observed += float((spread_total[units] - 2.0 * mine_spread[mine]) @ weight_without[units])
            # Units left with one value drop out of the marginals entirely; the others lose the rater's value.
            rest_marginals = marginals - np.bincount(mine_values[m >= 3], minlength=values)
            rest_marginals -= counts[units[m == 2]].sum(axis=0)
        without, _, _ = _alpha_from_sums(
            float(rest_marginals.sum()), rest_observed, _expected_sum(metric, rest_marginals)
        )
        n_pairable = int(pairable[mine].sum())
        observed = float(per_rating[mine].sum() / n_pairable) if n_pairable else float("nan")
        rows.append(
            {
                "rater": ratings.raters[rater],
                "n_ratings": int(mine.size),
                "n_pairable_ratings": n_pairable,
                "observed_disagreement": observed,
                "alpha_with_rest": 1.0 - observed / expected if n_pairable and expected > 0 else float("nan"),
                "alpha_without": without,
                "alpha_change_without": without - overall.alpha,
            }
        )
    return pd.DataFrame(rows).set_index("rater")


def _annotator_agreement_general(ratings: Ratings, level: str, metric: Metric) -> pd.DataFrame:
    """annotator_agreement for value domains too large for a count matrix: each leave-one-out from scratch."""
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
    array = np.asarray(groups)  # numeric groups (weeks) factorise as numbers, anything else as objects
    # dtype=object: pandas would otherwise copy every string into an Arrow string array first
    group_col = pd.Series(array) if array.dtype.kind in "iuf" else pd.Series(array.astype(object), dtype=object)
    if len(group_col) != ratings.n_ratings:
        raise AgreementInputError(f"groups has {len(group_col)} entries for {ratings.n_ratings} ratings")
    codes, names = pd.factorize(group_col, sort=True)
    order = np.argsort(codes, kind="stable")  # each group's ratings in their original order, as a mask would keep them
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    rows: list[dict[str, Any]] = []
    for code, name in enumerate(names):
        mine = order[bounds[code] : bounds[code + 1]]
        subset = Ratings(
            ratings.unit_idx[mine], ratings.rater_idx[mine], ratings.value_idx[mine], ratings.units, ratings.raters,
            ratings.values,
        )
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
