"""Aggregation rules on hand-made ratings (no database): multi-label rules, intensity, ties, missing labels, numbers."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import dawid_skene, mace, ratings_from_long
from annotation.quality.aggregate import AggregationPolicy, aggregate_question, aggregation_summary
from annotation.quality.columns import QuestionRatings
from annotation.schema import parse_questions


def _ratings(units: list[int], answers: list[object], raters: list[str] | None = None) -> QuestionRatings:
    answer = np.empty(len(answers), dtype=object)
    answer[:] = answers
    names = np.array(raters or [f"ext:r{i}" for i in range(len(units))], dtype=object)
    return QuestionRatings(np.array(units), names, answer, np.array(["en"] * len(units), dtype=object), 0)


QUESTIONS = {q.key: q for q in parse_questions([
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "anger", "fear"]},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "sadness", "anger", "fear"], "intensity": True},
    {"key": "binary", "type": "multi_label", "labels": ["joy", "sadness", "anger", "fear"]},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5},
])}


def _rows(question: str, ratings: QuestionRatings, **policy: object) -> dict[int, object]:
    aggregate = aggregate_question(QUESTIONS[question], ratings, AggregationPolicy(**policy))  # type: ignore[arg-type]
    assert aggregate is not None
    return {row.unit: row for row in aggregate.rows()}


def test_multi_label_share_rule_with_lower_median_intensity() -> None:
    (row,) = _rows("emotions", _ratings([1, 1, 1], [{"joy": 3, "anger": 1}, {"joy": 1}, {"joy": 2, "fear": 1}])).values()
    assert row.value == {"joy": 2}  # chosen by all three; levels 1, 2, 3
    assert row.distribution == pytest.approx({"joy": 1.0, "anger": 1 / 3, "fear": 1 / 3})
    assert row.confidence == pytest.approx(2 / 3)  # the weakest decision: anger and fear, 2 of 3 left them out
    assert row.n_ratings == 3 and not row.tied and row.method == "share>0.5"


def test_none_of_these_counts_against_every_label() -> None:
    # Two raters said "no emotion", one chose joy: the gold is the empty answer, not joy.
    rows = _rows("binary", _ratings([1, 1, 1, 2, 2, 2], [[], [], ["joy"], ["joy"], ["joy", "fear"], []]))
    assert rows[1].value == [] and rows[1].distribution == pytest.approx({"joy": 1 / 3})
    assert rows[2].value == ["joy"]
    summary = aggregation_summary(list(rows.values()), 0.6)
    assert summary["n_none_of_these"] == 1 and summary["label_counts"] == {"joy": 1}


def test_an_unanswered_label_counts_for_neither_side() -> None:
    # fear: r1 chose it, r2 said no, r3 left it blank -> 1 of 2 who answered: a tie at "more than half";
    # joy: chosen by both who answered it (r3 left it blank too) -> present although only 2 of 3 ratings.
    answers = [["joy", "fear"], {"joy": 1, "fear": 0}, {"joy": None, "fear": None, "anger": 0}]
    rows = _rows("binary", _ratings([7, 7, 7], answers), tie_policy="abstain")
    assert rows[7].value is None and rows[7].tied  # open tie: to review
    assert rows[7].distribution["_tied"] == ["fear"] and rows[7].distribution["joy"] == 1.0
    broken = _rows("binary", _ratings([7, 7, 7], answers), tie_policy="prefer_order")[7]
    assert broken.value == ["joy"] and broken.tied  # the tied label is left out, and the row says it was a tie
    (row,) = _rows("binary", _ratings([3], [{"sadness": None, "joy": 1}])).values()
    assert row.value == ["joy"] and row.distribution["_unanswered"] == ["sadness"]


def test_share_threshold_and_mean_intensity_rules() -> None:
    ratings = _ratings([1] * 4, [{"joy": 1}, {"joy": 1}, {"joy": 0, "anger": 3}, {"anger": 2}])
    assert _rows("emotions", ratings, share_above=0.25)[1].value == {"joy": 1, "anger": 2}
    assert _rows("emotions", ratings, share_above=0.5, tie_policy="random")[1].tied  # 2 of 4: both on the line
    # Mean level over the four raters: joy 0.5, anger 1.25.
    assert _rows("emotions", ratings, multi_label_rule="mean_intensity", intensity_threshold=1.0)[1].value == {"anger": 1}
    assert _rows("emotions", ratings, multi_label_rule="mean_intensity", intensity_threshold=0.5)[1].value == {
        "joy": 1, "anger": 1}
    strict = _rows("emotions", ratings, multi_label_rule="mean_intensity", intensity_threshold=0.5,
                   intensity_inclusive=False)[1]
    assert strict.value == {"anger": 1} and strict.method == "mean>0.5"


def test_dawid_skene_and_mace_per_label_equal_a_binary_run() -> None:
    rng = np.random.default_rng(5)
    units, raters, answers, truth = [], [], [], rng.random((40, 4)) < 0.4
    for u in range(40):
        for r, accuracy in enumerate((0.95, 0.9, 0.6, 0.55)):
            chosen = [label for j, label in enumerate(QUESTIONS["binary"].labels)
                      if (truth[u, j] if rng.random() < accuracy else not truth[u, j])]
            units.append(u)
            raters.append(f"ext:r{r}")
            answers.append(chosen)
    for method, run in (("dawid_skene", dawid_skene), ("mace", mace)):
        rows = _rows("binary", _ratings(units, answers, raters), multi_label_rule=method)
        for label in QUESTIONS["binary"].labels:
            binary = ratings_from_long(units, raters, [int(label in a) for a in answers])
            posterior = run(binary).posteriors
            chosen = posterior[1] > 0.5 if 1 in posterior.columns else posterior[0] < 0.5
            for unit, present in chosen.items():
                assert (label in rows[unit].value) == bool(present)
        assert {row.method for row in rows.values()} == {f"{method}_per_label"}


def test_single_choice_tie_policies() -> None:
    ratings = _ratings([1, 1, 2, 2, 2], ["anger", "joy", "fear", "fear", "joy"])
    abstain = _rows("emotion", ratings, tie_policy="abstain")
    assert abstain[1].value is None and abstain[1].confidence is None and abstain[1].tied
    assert abstain[2].value == "fear" and abstain[2].confidence == pytest.approx(2 / 3) and not abstain[2].tied
    prefer = _rows("emotion", ratings, tie_policy="prefer_order")
    assert prefer[1].value == "joy" and prefer[1].method == "majority/prefer_order" and prefer[1].tied
    summary = aggregation_summary(list(abstain.values()), 0.7)
    assert summary["n_open_ties"] == 1 and summary["n_below_review_threshold"] == 2
    assert summary["label_counts"] == {"fear": 1}
    dawid_skene_rows = _rows("emotion", ratings, method="dawid_skene")
    assert {r.method for r in dawid_skene_rows.values()} == {"dawid_skene"}
    assert all(r.confidence is None or 0 < r.confidence <= 1 for r in dawid_skene_rows.values())


def test_sources_name_single_aggregated_and_ties() -> None:
    aggregate = aggregate_question(QUESTIONS["emotion"], _ratings([3, 1, 1, 2, 2, 2], ["joy", "anger", "joy", "fear", "fear", "joy"]),
                                   AggregationPolicy(tie_policy="random"))
    assert aggregate is not None
    assert aggregate.units.tolist() == [1, 2, 3]  # sorted by utterance
    assert aggregate.sources().tolist() == ["tie_broken", "aggregated", "single_annotation"]
    open_tie = aggregate_question(QUESTIONS["emotion"], _ratings([1, 1], ["anger", "joy"]))
    assert open_tie is not None and open_tie.sources().tolist() == ["tie_open"]


def test_numeric_summary() -> None:
    (row,) = _rows("valence", _ratings([5, 5, 5, 5], [1.0, 2.0, 2.0, 5.0])).values()
    assert row.value == pytest.approx(2.5) and row.confidence is None
    assert row.distribution["median"] == pytest.approx(2.0)
    assert row.distribution["std"] == pytest.approx(np.std([1, 2, 2, 5], ddof=1))
    assert (row.distribution["min"], row.distribution["max"], row.distribution["n"]) == (1.0, 5.0, 4)
