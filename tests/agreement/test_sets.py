"""MASI distance and multi-label alpha (MASI and per label)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import (
    AgreementInputError,
    alpha_per_label,
    krippendorff_alpha,
    label_set_ratings,
    masi_alpha,
    masi_distance,
    masi_matrix,
    per_label_alpha,
    ratings_from_long,
)
from tests.agreement.slow_reference import literal_alpha, units_from_long


def test_masi_distance_values_from_passonneau_2006() -> None:
    # MASI = 1 - J * M with M = 1 (identical), 2/3 (subsumption), 1/3 (overlap), 0 (disjoint).
    assert masi_distance({"a", "b"}, {"a", "b"}) == 0.0
    assert masi_distance({"a"}, {"a", "b"}) == pytest.approx(1 - (1 / 2) * (2 / 3))  # 0.667
    assert masi_distance({"a", "b"}, {"a", "c"}) == pytest.approx(1 - (1 / 3) * (1 / 3))  # 0.889
    assert masi_distance({"a"}, {"b"}) == 1.0
    # NLTK's doctest: masi_distance({1, 2}, {1, 2, 3, 4}) = 0.665 with its rounded weight 0.67; exact: 1 - 0.5 * 2/3.
    assert masi_distance({1, 2}, {1, 2, 3, 4}) == pytest.approx(2 / 3)
    assert masi_distance(set(), set()) == 0.0 and masi_distance(set(), {"a"}) == 1.0


def test_masi_matrix_matches_pairwise_function() -> None:
    sets = [(), ("a",), ("a", "b"), ("a", "c"), ("b",), ("a", "b", "c")]
    matrix = masi_matrix(sets)
    for i, first in enumerate(sets):
        for j, second in enumerate(sets):
            assert matrix[i, j] == pytest.approx(masi_distance(set(first), set(second)))


def _multilabel(seed: int) -> tuple[list[int], list[str], list[list[str] | None]]:
    rng = np.random.default_rng(seed)
    labels = ["joy", "anger", "fear", "sadness", "surprise"]
    units, raters, answers = [], [], []
    for unit in range(80):
        core = set(rng.choice(labels, size=int(rng.integers(0, 3)), replace=False).tolist())
        for rater in ("ann", "bob", "cem", "dia"):
            if rng.random() < 0.2:
                answer = None
            else:
                answer = sorted(core ^ ({str(rng.choice(labels))} if rng.random() < 0.4 else set()))
            units.append(unit)
            raters.append(rater)
            answers.append(answer)
    return units, raters, answers


@pytest.mark.parametrize("seed", range(3))
def test_masi_alpha_matches_literal_pairwise_definition(seed: int) -> None:
    units, raters, answers = _multilabel(seed)
    result = masi_alpha(label_set_ratings(units, raters, answers))
    grouped = units_from_long(units, [None if a is None else frozenset(a) for a in answers])
    expected = literal_alpha(grouped, distance=lambda a, b: masi_distance(a, b))  # type: ignore[arg-type]
    assert result.metric == "masi"
    assert result.alpha == pytest.approx(expected, abs=1e-10)


def test_per_label_binary_alpha_is_nominal_alpha_of_indicators() -> None:
    units, raters, answers = _multilabel(1)
    results = per_label_alpha(units, raters, answers)
    assert set(results) == {"joy", "anger", "fear", "sadness", "surprise"}
    for label, result in results.items():
        indicator = [None if a is None else int(label in a) for a in answers]
        direct = krippendorff_alpha(ratings_from_long(units, raters, indicator), "nominal")
        assert result.alpha == pytest.approx(direct.alpha, abs=1e-12)
        assert result.alpha == pytest.approx(literal_alpha(units_from_long(units, indicator)), abs=1e-12)


def test_per_label_intensity_alpha_is_ordinal() -> None:
    answers = [{"joy": 3}, {"joy": 2, "fear": 1}, {"joy": 3}, {}, {"fear": 2}, {"fear": 3, "joy": 1}]
    units = [1, 1, 2, 2, 3, 3]
    raters = ["a", "b", "a", "b", "a", "b"]
    results = per_label_alpha(units, raters, answers)
    joy_levels = [3, 2, 3, 0, 0, 1]
    assert results["joy"].metric == "ordinal"
    assert results["joy"].alpha == pytest.approx(literal_alpha(units_from_long(units, joy_levels), "ordinal"))
    with pytest.raises(AgreementInputError, match="row 0: intensity of 'joy' must be a number"):
        per_label_alpha([1, 1], ["a", "b"], [{"joy": "high"}, {"joy": 1}])
    with pytest.raises(AgreementInputError, match="row 1: a multi-label answer must be a list"):
        label_set_ratings([1, 1], ["a", "b"], [["joy"], "joy"])


def _label_reencoded(encoded, levels: np.ndarray, column: int):  # type: ignore[no-untyped-def]
    """The slow way: re-encode the ratings with one label's level as the value."""
    from annotation.agreement import Ratings

    domain, value_idx = np.unique(levels[encoded.value_idx, column], return_inverse=True)
    return Ratings(encoded.unit_idx, encoded.rater_idx, value_idx.reshape(-1), encoded.units, encoded.raters, domain)


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_per_label_equals_alpha_of_reencoded_ratings_with_its_bootstrap(level: str) -> None:
    rng = np.random.default_rng(8)
    labels = ["joy", "anger", "fear", "never", "always"]
    units, raters, answers = [], [], []
    for unit in range(300):
        truth = {labels[int(rng.integers(0, 3))]: int(rng.integers(1, 4))}
        for rater in range(int(rng.integers(1, 5))):  # some units have a single rating: not pairable
            answer = dict(truth) if rng.random() < 0.7 else {labels[int(rng.integers(0, 3))]: int(rng.integers(1, 4))}
            answer["always"] = 2
            units.append(unit)
            raters.append(rater)
            answers.append(answer if rng.random() > 0.1 else None)  # missing answers are dropped
    encoded = ratings_from_long(units, raters, [None if a is None else tuple(sorted(a.items())) for a in answers])
    levels = np.array([[dict(v).get(label, 0.0) for label in labels] for v in encoded.values], dtype=np.float64)
    if level == "nominal":
        levels = (levels > 0).astype(np.float64)
    fast = alpha_per_label(encoded, levels, labels, level, n_resamples=200, seed=4)
    for column, label in enumerate(labels):
        slow = krippendorff_alpha(_label_reencoded(encoded, levels, column), level, n_resamples=200, seed=4)
        got = fast[label]
        assert got.n_pairable_units == slow.n_pairable_units and got.n_pairable_values == slow.n_pairable_values
        assert got.n_units == slow.n_units
        if label in ("never", "always"):  # one value everywhere: nothing to agree on
            assert not got.defined and not slow.defined and got.interval is None
            continue
        assert got.alpha == pytest.approx(slow.alpha, abs=1e-12)
        assert got.interval == pytest.approx(slow.interval, abs=1e-12)
        assert got.resamples is not None and slow.resamples is not None
        assert np.allclose(got.resamples, slow.resamples, atol=1e-12, equal_nan=True)
        pairs = [(u, levels[v, column]) for u, v in zip(encoded.unit_idx.tolist(), encoded.value_idx.tolist())]
        grouped = units_from_long([u for u, _ in pairs], [x for _, x in pairs])
        assert got.alpha == pytest.approx(literal_alpha(grouped, level), abs=1e-12)


def test_alpha_per_label_matches_the_krippendorff_package_on_binary_matrices() -> None:
    import krippendorff

    rng = np.random.default_rng(2)
    raters, n_units, labels = 5, 400, ["a", "b", "c"]
    truth = rng.random((n_units, 3)) < 0.4
    chosen = np.where(rng.random((raters, n_units, 3)) < 0.8, truth[None], rng.random((raters, n_units, 3)) < 0.3)
    answered = rng.random((raters, n_units)) < 0.8
    rows = [(u, r, tuple(label for j, label in enumerate(labels) if chosen[r, u, j]))
            for r in range(raters) for u in range(n_units) if answered[r, u]]
    encoded = label_set_ratings([x[0] for x in rows], [x[1] for x in rows], [list(x[2]) for x in rows])
    levels = np.array([[float(label in value) for label in labels] for value in encoded.values])
    ours = alpha_per_label(encoded, levels, labels)
    for j, label in enumerate(labels):
        matrix = np.where(answered, chosen[:, :, j], np.nan).astype(float)
        assert ours[label].alpha == pytest.approx(krippendorff.alpha(matrix, level_of_measurement="nominal"), abs=1e-12)


def test_alpha_per_label_checks_its_input() -> None:
    encoded = ratings_from_long([1, 1], ["a", "b"], ["x", "y"])
    with pytest.raises(AgreementInputError, match="values × labels, 2 × 1"):
        alpha_per_label(encoded, np.zeros((3, 1)), ["joy"])
    with pytest.raises(AgreementInputError, match="nominal or ordinal"):
        alpha_per_label(encoded, np.zeros((2, 1)), ["joy"], "interval")
