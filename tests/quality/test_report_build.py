"""The report's pure computation on hand-made columns: gold does not follow the bootstrap seed, the summary read
from an aggregate's columns equals the one from its rows, the label distribution by distinct answer."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.quality.aggregate import AggregationPolicy, aggregate_question, aggregation_summary
from annotation.quality.columns import AnnotationColumns, question_ratings
from annotation.quality.report import (
    ReportParams,
    agreement_report_build,
    encode_question,
    jsonable,
    label_distribution,
)
from annotation.schema import Question

LABELS = ("joy", "anger", "fear")
QUESTIONS = [
    Question("emotion", "single_choice", labels=LABELS),
    Question("emotions", "multi_label", labels=LABELS, intensity=True),
    Question("valence", "numeric", minimum=1, maximum=5, step=1),
]


def _objects(values: list[object]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


def _columns() -> AnnotationColumns:
    """Twelve units, two raters each, many of them tied; languages en and hi; one label sometimes unanswered."""
    rng = np.random.default_rng(5)
    unit = np.repeat(np.arange(12), 2)
    rater = _objects([f"user:{r}" for r in np.tile([1, 2], 12)])
    single = _objects([LABELS[i] for i in rng.integers(0, 3, size=24)])
    multi = _objects([{LABELS[i]: int(level)} if i != 2 else {"joy": 1, "fear": None}
                      for i, level in zip(rng.integers(0, 3, size=24), rng.integers(1, 4, size=24))])
    multi[3] = []  # "none of these"
    return AnnotationColumns(
        annotation_id=np.arange(24), unit=unit, rater=rater, is_human=np.ones(24, dtype=bool),
        perspective=_objects([""] * 24), language=_objects(["en" if u % 2 else "hi" for u in unit]),
        answers={"emotion": single, "emotions": multi, "valence": _objects(rng.integers(1, 6, size=24).tolist())},
    )


@pytest.mark.parametrize("tie_policy", ["random", "prefer_order", "abstain"])
def test_gold_does_not_follow_the_bootstrap_seed(tie_policy: str) -> None:
    columns = _columns()
    built = [agreement_report_build(columns, QUESTIONS, ReportParams(n_resamples=20, seed=seed, tie_policy=tie_policy))
             for seed in (1, 2)]
    for question in QUESTIONS:
        first, second = (aggregates[(question.key, "")] for _, aggregates in built)
        # the same answers as the gold rule alone (what the export applies), whatever the report's seed
        alone = aggregate_question(question, question_ratings(columns, question.key, "", human=True),
                                   AggregationPolicy(tie_policy=tie_policy))
        assert alone is not None
        for aggregate in (first, second):
            assert aggregate.values.tolist() == alone.values.tolist()
            assert aggregate.tied.tolist() == alone.tied.tolist()
    assert built[0][1][("emotion", "")].tied.any()  # the data has ties for the policy to settle
    summaries = [[q["perspectives"][0]["aggregation"] for q in report["questions"]] for report, _ in built]
    assert summaries[0] == summaries[1]


def test_summary_from_columns_equals_the_summary_from_rows() -> None:
    columns = _columns()
    for question in QUESTIONS:
        for tie_policy in ("abstain", "prefer_order"):
            aggregate = aggregate_question(question, question_ratings(columns, question.key, "", human=True),
                                           AggregationPolicy(tie_policy=tie_policy))
            assert aggregate is not None
            rows = aggregate.rows()
            from_columns, from_rows = aggregation_summary(aggregate, 0.6), aggregation_summary(rows, 0.6)
            if question.type == "numeric":
                spreads = [row.distribution["std"] for row in rows if row.distribution["std"] is not None]
                assert from_columns.pop("mean_within_unit_std") == pytest.approx(np.mean(spreads))
            assert from_columns == from_rows
            assert from_rows["n_units"] == 12
            assert (sum(from_rows["label_counts"].values()) > 0) == (question.type != "numeric")


def test_label_distribution_by_distinct_answer() -> None:
    columns = _columns()
    question = QUESTIONS[1]
    ratings = question_ratings(columns, question.key, "", human=True)
    parsed = jsonable(label_distribution(question, ratings))
    assert parsed == jsonable(label_distribution(question, ratings, encode_question(question, ratings).keyed))
    for row in parsed["languages"]:
        mine = [a for a, language in zip(ratings.answer, ratings.language) if language == row["language"]]
        assert row["n_ratings"] == len(mine)
        assert row["n_none"] == sum(1 for a in mine if not any(v for v in (a.values() if isinstance(a, dict) else a)))
        for label, count in zip(parsed["labels"], row["counts"]):
            assert count == sum(1 for a in mine if (a.get(label) if isinstance(a, dict) else label in a))
