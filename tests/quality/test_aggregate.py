"""Aggregation rules on hand-made ratings (no database): multi-label majority, intensity median, ties, numbers."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.quality.aggregate import aggregate_question, aggregation_summary
from annotation.quality.columns import QuestionRatings
from annotation.schema import parse_questions


def _ratings(units: list[int], answers: list[object]) -> QuestionRatings:
    answer = np.empty(len(answers), dtype=object)
    answer[:] = answers
    raters = np.array([f"ext:r{i}" for i in range(len(units))], dtype=object)
    return QuestionRatings(np.array(units), raters, answer, np.array(["en"] * len(units), dtype=object), 0)


QUESTIONS = {q.key: q for q in parse_questions([
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "anger", "fear"]},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "sadness", "anger", "fear"], "intensity": True},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5},
])}


def test_multi_label_majority_with_lower_median_intensity() -> None:
    rows = aggregate_question(QUESTIONS["emotions"], _ratings([1, 1, 1], [{"joy": 3, "anger": 1}, {"joy": 1}, {"joy": 2, "fear": 1}]))
    (row,) = rows
    assert row.value == {"joy": 2}  # chosen by all three; levels 1, 2, 3
    assert row.distribution == pytest.approx({"joy": 1.0, "anger": 1 / 3, "fear": 1 / 3})
    assert row.confidence == pytest.approx(2 / 3)  # the weakest decision: anger and fear, 2 of 3 left them out
    assert row.n_ratings == 3


def test_single_choice_tie_policies() -> None:
    ratings = _ratings([1, 1, 2, 2, 2], ["anger", "joy", "fear", "fear", "joy"])
    abstain = {r.unit: r for r in aggregate_question(QUESTIONS["emotion"], ratings, tie_policy="abstain")}
    assert abstain[1].value is None and abstain[1].confidence is None
    assert abstain[2].value == "fear" and abstain[2].confidence == pytest.approx(2 / 3)
    prefer = {r.unit: r for r in aggregate_question(QUESTIONS["emotion"], ratings, tie_policy="prefer_order")}
    assert prefer[1].value == "joy" and prefer[1].method == "majority/prefer_order"  # joy is listed first
    summary = aggregation_summary(list(abstain.values()), 0.7)
    assert summary["n_open_ties"] == 1 and summary["n_below_review_threshold"] == 2
    assert summary["label_counts"] == {"fear": 1}
    dawid_skene = aggregate_question(QUESTIONS["emotion"], ratings, method="dawid_skene")
    assert {r.method for r in dawid_skene} == {"dawid_skene"} and all(0 < r.confidence <= 1 for r in dawid_skene)


def test_numeric_summary() -> None:
    (row,) = aggregate_question(QUESTIONS["valence"], _ratings([5, 5, 5, 5], [1.0, 2.0, 2.0, 5.0]))
    assert row.value == pytest.approx(2.5) and row.confidence is None
    assert row.distribution["median"] == pytest.approx(2.0)
    assert row.distribution["std"] == pytest.approx(np.std([1, 2, 2, 5], ddof=1))
    assert (row.distribution["min"], row.distribution["max"], row.distribution["n"]) == (1.0, 5.0, 4)


def test_multi_label_and_numeric_rows_equal_a_unit_by_unit_count() -> None:
    """Random answers (intensity dicts, label lists, empty answers) against a literal per-unit computation."""
    from annotation.quality.aggregate import aggregate_multi_label, aggregate_numeric
    from annotation.quality.columns import keyed_answers

    rng = np.random.default_rng(3)
    labels = ["joy", "sadness", "anger", "fear"]
    question = QUESTIONS["emotions"]
    units, answers = [], []
    for unit in rng.permutation(60).tolist():
        for _ in range(int(rng.integers(1, 6))):
            chosen = rng.choice(labels + ["outside"], size=int(rng.integers(0, 3)), replace=False).tolist()
            answers.append({label: int(rng.integers(1, 4)) for label in chosen} | ({"fear": 0} if rng.random() < 0.2 else {}))
            units.append(unit)
    ratings = _ratings(units, answers)
    rows = aggregate_multi_label(question, ratings)
    assert rows == aggregate_multi_label(question, ratings, keyed_answers(ratings))
    assert [r.unit for r in rows] == sorted(set(units))
    for row in rows:
        mine = [a for u, a in zip(units, answers) if u == row.unit]
        assert row.n_ratings == len(mine)
        share = {label: sum(1 for a in mine if a.get(label)) / len(mine) for label in labels}
        assert row.distribution == pytest.approx({k: v for k, v in share.items() if v > 0})
        assert row.confidence == pytest.approx(min(max(v, 1 - v) for v in share.values()))
        expected = {}
        for label in labels:
            if share[label] > 0.5:
                given = sorted(a[label] for a in mine if a.get(label))
                expected[label] = given[(len(given) - 1) // 2]
        assert row.value == expected

    numbers = rng.integers(1, 10, size=len(units)) / 2.0
    numeric = aggregate_numeric(_ratings(units, numbers.tolist()))
    for row in numeric:
        mine = numbers[np.array(units) == row.unit]
        assert row.value == pytest.approx(mine.mean()) and row.distribution["n"] == mine.size == row.n_ratings
        assert row.distribution["std"] == (pytest.approx(mine.std(ddof=1)) if mine.size > 1 else None)
        assert (row.distribution["min"], row.distribution["max"]) == (mine.min(), mine.max())
