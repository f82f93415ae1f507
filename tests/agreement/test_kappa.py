"""Cohen's and Fleiss' kappa against textbook values; observed agreement and counts."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import (
    cohen_kappa,
    cohen_kappa_for_raters,
    cohen_kappa_from_table,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    observed_agreement,
    rating_counts,
    ratings_from_long,
    ratings_from_matrix,
)

# Fleiss (1971) as worked in Wikipedia's "Fleiss' kappa" article: 14 raters sort 10 subjects into 5 categories;
# P_bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example() -> None:
    result = fleiss_kappa_from_counts(FLEISS_WIKIPEDIA)
    assert result.applicable
    assert round(result.observed_agreement, 3) == 0.378
    assert round(result.expected_agreement, 3) == 0.213
    assert round(result.kappa, 3) == 0.210


def test_fleiss_kappa_from_ratings_equals_count_table() -> None:
    units, raters, values = [], [], []
    for unit, row in enumerate(FLEISS_WIKIPEDIA):
        rater = 0
        for category, count in enumerate(row):
            for _ in range(count):
                units.append(unit)
                raters.append(rater)
                values.append(category)
                rater += 1
    assert fleiss_kappa(ratings_from_long(units, raters, values)).kappa == pytest.approx(
        fleiss_kappa_from_counts(FLEISS_WIKIPEDIA).kappa
    )


def test_fleiss_kappa_says_when_it_does_not_apply() -> None:
    data = np.array([[1, 2, 1, np.nan], [1, 2, 2, 3], [1, 1, np.nan, 3]])
    result = fleiss_kappa(ratings_from_matrix(data))
    assert not result.applicable
    assert "between 2 and 3 ratings" in result.reason and "Krippendorff" in result.reason
    assert result.as_dict()["kappa"] is None


def test_cohen_kappa_wikipedia_example() -> None:
    # Wikipedia "Cohen's kappa", simple example: 50 proposals; both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    # p_o = 0.7, p_e = 0.5, kappa = 0.4.
    result = cohen_kappa_from_table([[20, 5], [10, 15]])
    assert result.observed_agreement == pytest.approx(0.7)
    assert result.expected_agreement == pytest.approx(0.5)
    assert result.kappa == pytest.approx(0.4)
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second, labels=["yes", "no"]).kappa == pytest.approx(0.4)


def test_weighted_cohen_kappa_by_hand() -> None:
    table = np.array([[10, 3, 1], [2, 12, 4], [0, 3, 15]], dtype=float)
    p = table / table.sum()
    expected = np.outer(p.sum(1), p.sum(0))
    for weights, weight in [("linear", lambda i, j: abs(i - j) / 2), ("quadratic", lambda i, j: ((i - j) / 2) ** 2)]:
        observed_d = sum(weight(i, j) * p[i, j] for i in range(3) for j in range(3))
        expected_d = sum(weight(i, j) * expected[i, j] for i in range(3) for j in range(3))
        assert cohen_kappa_from_table(table, weights).kappa == pytest.approx(1 - observed_d / expected_d)  # type: ignore[arg-type]


def test_cohen_kappa_for_two_named_raters_uses_shared_units() -> None:
    ratings = ratings_from_long(
        ["u1", "u1", "u2", "u2", "u3", "u4", "u4"],
        ["ann", "bob", "ann", "bob", "ann", "ann", "bob"],
        ["joy", "joy", "fear", "joy", "fear", "fear", "fear"],
    )
    result = cohen_kappa_for_raters(ratings, "ann", "bob")
    assert result.n_units == 3
    assert result.kappa == pytest.approx(cohen_kappa(["joy", "fear", "fear"], ["joy", "joy", "fear"]).kappa)


def test_observed_agreement_and_counts() -> None:
    data = np.array([[1, 2, 3, np.nan], [1, 2, 1, 4], [1, 1, np.nan, np.nan]])
    ratings = ratings_from_matrix(data)
    # Unit 1: 3/3 agree -> 3 (6 ordered agreeing pairs / (m-1)=2); unit 2: 2 of 3 agree -> 2/2 = 1; unit 3: 0.
    assert observed_agreement(ratings) == pytest.approx((3 + 1 + 0) / 8)
    alpha = krippendorff_alpha(ratings, "nominal")
    assert observed_agreement(ratings) == pytest.approx(1 - alpha.observed_disagreement)
    counts = rating_counts(ratings)
    assert counts.n_units == 4 and counts.n_units_with_two_or_more == 3 and counts.n_ratings == 9
    assert counts.ratings_per_unit == {1: 1, 2: 1, 3: 2}
