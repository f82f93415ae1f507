"""Pairwise annotator matrix, per-annotator agreement, leave-one-out and group breakdowns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotation.agreement import (
    AgreementInputError,
    alpha_by_group,
    annotator_agreement,
    krippendorff_alpha,
    pairwise_alpha,
    ratings_from_frame,
    ratings_from_long,
)
from tests.agreement.slow_reference import literal_alpha, units_from_long


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    noise = {"ann": 0.1, "bob": 0.2, "cem": 0.3, "spammer": 1.0}
    for unit in range(150):
        truth = int(rng.integers(0, 4))
        language = "mr" if unit % 3 == 0 else "en"
        for rater, p in noise.items():
            if rng.random() < 0.2:
                continue
            value = int(rng.integers(0, 4)) if rng.random() < p else truth
            rows.append({"unit": unit, "rater": rater, "value": value, "language": language})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("level", ["nominal", "interval"])
def test_pairwise_matrix_matches_alpha_on_shared_units(level: str) -> None:
    frame = _frame()
    alphas, shared = pairwise_alpha(ratings_from_frame(frame), level)
    for a, b in [("ann", "bob"), ("bob", "spammer"), ("ann", "cem")]:
        pivot = frame.pivot(index="unit", columns="rater", values="value")[[a, b]].dropna()
        units = {u: [row[a], row[b]] for u, row in pivot.iterrows()}
        assert shared.loc[a, b] == len(units) == shared.loc[b, a]
        assert alphas.loc[a, b] == pytest.approx(literal_alpha(units, level), abs=1e-12)
        assert alphas.loc[b, a] == alphas.loc[a, b]
    assert np.isnan(alphas.loc["ann", "ann"])
    assert alphas.loc["ann", "bob"] > alphas.loc["ann", "spammer"]


def test_annotator_agreement_decomposes_overall_alpha_and_leave_one_out() -> None:
    frame = _frame(1)
    ratings = ratings_from_frame(frame)
    table = annotator_agreement(ratings, "nominal")
    overall = krippendorff_alpha(ratings, "nominal").alpha
    weighted = np.average(table["alpha_with_rest"], weights=table["n_pairable_ratings"])
    assert weighted == pytest.approx(overall, abs=1e-12)
    without_spammer = frame[frame.rater != "spammer"]
    expected = literal_alpha(units_from_long(without_spammer.unit.tolist(), without_spammer.value.tolist()))
    assert table.loc["spammer", "alpha_without"] == pytest.approx(expected, abs=1e-12)
    assert table.loc["spammer", "alpha_change_without"] > 0
    assert table["alpha_with_rest"].idxmin() == "spammer"
    assert table["alpha_with_rest"].idxmax() == "ann"


def test_annotator_agreement_interval_decomposes_too() -> None:
    ratings = ratings_from_frame(_frame(2))
    table = annotator_agreement(ratings, "interval")
    weighted = np.average(table["alpha_with_rest"], weights=table["n_pairable_ratings"])
    assert weighted == pytest.approx(krippendorff_alpha(ratings, "interval").alpha, abs=1e-12)


def test_alpha_by_language_with_intervals() -> None:
    frame = _frame(3)
    table = alpha_by_group(ratings_from_frame(frame), frame["language"], "nominal", n_resamples=200, seed=5)
    assert list(table.index) == ["en", "mr"]
    for language in ("en", "mr"):
        part = frame[frame.language == language]
        assert table.loc[language, "alpha"] == pytest.approx(
            literal_alpha(units_from_long(part.unit.tolist(), part.value.tolist())), abs=1e-12
        )
        assert table.loc[language, "interval_low"] < table.loc[language, "alpha"] < table.loc[language, "interval_high"]
    with pytest.raises(AgreementInputError, match="groups has 2 entries"):
        alpha_by_group(ratings_from_long([1, 1, 2], ["a", "b", "a"], [1, 2, 1]), ["en", "mr"])


def _messy(seed: int, values: int = 4) -> pd.DataFrame:
    """Ratings with missing values, units rated once, a constant rater and a rater who shares little."""
    rng = np.random.default_rng(seed)
    rows = []
    for unit in range(120):
        truth = int(rng.integers(0, values))
        for rater in ("ann", "bob", "cem", "dia", "constant", "rare"):
            if rng.random() < (0.9 if rater == "rare" else 0.25):
                continue
            value = 0 if rater == "constant" else (truth if rng.random() < 0.7 else int(rng.integers(0, values)))
            rows.append({"unit": unit, "rater": rater, "value": float(value)})
    rows.append({"unit": 999, "rater": "ann", "value": 1.0})  # a unit with one rating: not pairable
    return pd.DataFrame(rows)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_fast_breakdowns_equal_the_pair_by_pair_and_rater_by_rater_forms(level: str) -> None:
    from annotation.agreement.alpha import metric_for_level
    from annotation.agreement.breakdown import _annotator_agreement_general, _pairwise_alpha_by_pair

    ratings = ratings_from_frame(_messy(4))
    metric = metric_for_level(ratings, level)
    fast_alpha, fast_shared = pairwise_alpha(ratings, level, min_shared_units=3)
    slow_alpha, slow_shared = _pairwise_alpha_by_pair(ratings, level, metric, 3)
    assert np.array_equal(fast_shared.to_numpy(), slow_shared.to_numpy())
    np.testing.assert_allclose(fast_alpha.to_numpy(), slow_alpha.to_numpy(), atol=1e-12, equal_nan=True)
    assert np.isnan(fast_alpha.loc["constant", "constant"])

    fast = annotator_agreement(ratings, level)
    slow = _annotator_agreement_general(ratings, level, metric)
    assert list(fast.index) == list(slow.index)
    np.testing.assert_allclose(fast.to_numpy(dtype=float), slow.to_numpy(dtype=float), atol=1e-12, equal_nan=True)


def test_leave_one_out_when_removing_a_rater_leaves_nothing_to_pair() -> None:
    ratings = ratings_from_long([1, 1, 2, 2, 3], ["a", "b", "a", "b", "a"], ["x", "y", "x", "x", "y"])
    table = annotator_agreement(ratings, "nominal")
    assert np.isnan(table.loc["a", "alpha_without"]) and np.isnan(table.loc["b", "alpha_without"])
    assert table.loc["a", "n_ratings"] == 3 and table.loc["a", "n_pairable_ratings"] == 2
    same = annotator_agreement(ratings_from_long([1, 1, 2, 2], ["a", "b", "a", "b"], ["x", "x", "x", "x"]), "nominal")
    assert same["alpha_with_rest"].isna().all()  # everyone used one value: no expected disagreement


def test_pairwise_tables_give_each_pairs_cohen_kappa() -> None:
    from annotation.agreement import cohen_kappa_for_raters, cohen_kappa_from_table
    from annotation.agreement.breakdown import pairwise_tables

    frame = _messy(5)
    ratings = ratings_from_frame(frame)
    tables = pairwise_tables(ratings)
    names = list(ratings.raters)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            pivot = frame.pivot(index="unit", columns="rater", values="value")[[names[a], names[b]]].dropna()
            assert tables[a, b].sum() == len(pivot)
            if len(pivot):
                expected = cohen_kappa_for_raters(ratings, names[a], names[b])
                got = cohen_kappa_from_table(tables[a, b])
                assert got.kappa == pytest.approx(expected.kappa, nan_ok=True, abs=1e-12)
    assert not tables[np.tril_indices(len(names))].any()  # only a < b is filled


def test_leave_one_out_with_a_rater_twice_on_a_unit_equals_the_general_form() -> None:
    from annotation.agreement.alpha import metric_for_level
    from annotation.agreement.breakdown import _annotator_agreement_general

    frame = _messy(6)
    twice = pd.concat([frame, frame[frame.rater == "bob"].head(10).assign(value=3.0)])
    ratings = ratings_from_long(twice.unit, twice.rater, twice.value, allow_duplicates=True)
    for level in ("nominal", "interval"):
        fast = annotator_agreement(ratings, level)
        slow = _annotator_agreement_general(ratings, level, metric_for_level(ratings, level))
        np.testing.assert_allclose(fast.to_numpy(dtype=float), slow.to_numpy(dtype=float), atol=1e-12, equal_nan=True)
