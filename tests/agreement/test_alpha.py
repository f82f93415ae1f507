"""Krippendorff's alpha against published values, the ``krippendorff`` package and a literal implementation."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest

from annotation.agreement import (
    AgreementInputError,
    krippendorff_alpha,
    ratings_from_frame,
    ratings_from_long,
    ratings_from_matrix,
)
from tests.agreement.slow_reference import literal_alpha, units_from_long

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E ("a general form"): reliability data
# of 4 observers (rows) coding 12 units (columns), with missing values. The paper reports alpha = 0.743 (nominal),
# 0.815 (ordinal), 0.849 (interval) and 0.797 (ratio); the same data and values appear in the README of the
# ``krippendorff`` package (fast-krippendorff 0.9.0), which gives 0.743421052631579, 0.8153875037548814,
# 0.8491071428571428 and 0.7974027747116121.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}
PACKAGE_0_9_0 = {
    "nominal": 0.743421052631579,
    "ordinal": 0.8153875037548814,
    "interval": 0.8491071428571428,
    "ratio": 0.7974027747116121,
}


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_2011_worked_example(level: str) -> None:
    result = krippendorff_alpha(ratings_from_matrix(KRIPPENDORFF_2011), level)
    assert round(result.alpha, 3) == PUBLISHED[level]
    assert result.alpha == pytest.approx(PACKAGE_0_9_0[level], abs=1e-12)
    # Unit 12 has a single value and is not pairable: 40 pairable values in 11 units.
    assert result.n_pairable_units == 11
    assert result.n_pairable_values == 40


def test_worked_example_nominal_disagreements_match_paper() -> None:
    # The paper's nominal coincidence matrix has marginals n_1..n_5 = 9, 13, 10, 5, 3 (n = 40) and off-diagonal
    # coincidences summing to 8 (units 2, 6 and 8 disagree), so alpha = 1 - (n-1) * 8 / (n^2 - sum n_c^2)
    # = 1 - 39 * 8 / (1600 - 384) = 0.743.
    result = krippendorff_alpha(ratings_from_matrix(KRIPPENDORFF_2011), "nominal")
    assert result.observed_disagreement == pytest.approx(8 / 40)
    assert result.expected_disagreement == pytest.approx((1600 - 384) / (40 * 39))
    assert result.alpha == pytest.approx(1 - 39 * 8 / 1216)


def _random_reliability_data(rng: np.random.Generator, raters: int, units: int, values: int, missing: float) -> np.ndarray:
    truth = rng.integers(1, values + 1, size=units)
    data = np.where(rng.random((raters, units)) < 0.6, truth, rng.integers(1, values + 1, size=(raters, units)))
    data = data.astype(float)
    data[rng.random((raters, units)) < missing] = np.nan
    return data


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_matches_krippendorff_package_and_literal_definition(seed: int, level: str) -> None:
    rng = np.random.default_rng(seed)
    data = _random_reliability_data(rng, int(rng.integers(2, 7)), int(rng.integers(10, 80)), int(rng.integers(2, 7)), 0.3)
    ours = krippendorff_alpha(ratings_from_matrix(data), level).alpha
    package = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    units = {u: [v for v in data[:, u] if not math.isnan(v)] for u in range(data.shape[1])}
    assert ours == pytest.approx(package, abs=1e-10)
    assert ours == pytest.approx(literal_alpha(units, level), abs=1e-10)


def test_long_form_with_string_labels_and_arbitrary_ids() -> None:
    rng = np.random.default_rng(7)
    labels = np.array(["joy", "anger", "fear", "neutral"])
    rows = [
        (f"utt-{u}", f"rater-{r}", labels[rng.integers(0, 4)] if rng.random() > 0.25 else None)
        for u in range(60)
        for r in range(4)
    ]
    units, raters, values = zip(*rows)
    ours = krippendorff_alpha(ratings_from_long(units, raters, values), "nominal").alpha
    assert ours == pytest.approx(literal_alpha(units_from_long(units, values)), abs=1e-12)


def test_continuous_interval_values_without_a_dense_value_domain() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=400)
    data = truth + rng.normal(scale=0.5, size=(3, 400))
    data[rng.random(data.shape) < 0.2] = np.nan
    units = {u: list(data[~np.isnan(data[:, u]), u]) for u in range(400)}
    result = krippendorff_alpha(ratings_from_matrix(data), "interval")
    assert result.alpha == pytest.approx(literal_alpha(units, "interval"), abs=1e-10)


def test_perfect_agreement_is_one_and_single_value_is_undefined() -> None:
    assert krippendorff_alpha(ratings_from_matrix([[1, 2, 3], [1, 2, 3]]), "nominal").alpha == 1.0
    constant = krippendorff_alpha(ratings_from_matrix([[1, 1, 1], [1, 1, 1]]), "nominal")
    assert not constant.defined
    assert constant.as_dict()["alpha"] is None
    no_pairs = krippendorff_alpha(ratings_from_matrix([[1, NAN], [NAN, 2]]), "nominal")
    assert no_pairs.n_pairable_units == 0 and not no_pairs.defined


def test_bad_input_is_named() -> None:
    with pytest.raises(AgreementInputError, match="level of measurement"):
        krippendorff_alpha(ratings_from_matrix(KRIPPENDORFF_2011), "cardinal")
    with pytest.raises(AgreementInputError, match="values must be numbers"):
        krippendorff_alpha(ratings_from_long([1, 1], ["a", "b"], ["joy", "fear"]), "interval")
    with pytest.raises(AgreementInputError, match="non-negative"):
        krippendorff_alpha(ratings_from_long([1, 1], ["a", "b"], [-1.0, 2.0]), "ratio")
    with pytest.raises(AgreementInputError, match="rated unit 'u1' more than once"):
        ratings_from_long(["u1", "u1"], ["ann", "ann"], ["joy", "fear"])
    import pandas as pd

    with pytest.raises(AgreementInputError, match="missing column"):
        ratings_from_frame(pd.DataFrame({"unit": [1], "value": [2]}))
    with pytest.raises(AgreementInputError, match="row 1: column 'rater' is missing"):
        ratings_from_long([1, 2], ["a", None], [1, 2])
