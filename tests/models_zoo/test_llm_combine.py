"""Combining several LLMs' labels per question: union, intersection, strict majority."""

from __future__ import annotations

import pytest

from models_zoo.llm import AnswerSchema, combine_answers
from models_zoo.llm.combine import combine_question

SCHEMA = AnswerSchema.from_questions([
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger"]},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "sadness", "anger", "fear"]},
    {"key": "intensity", "type": "multi_label", "labels": ["joy", "anger"], "intensity": True},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.5},
])
EMOTION, EMOTIONS, INTENSITY, VALENCE = SCHEMA.questions


def test_multi_label_union_intersection_majority() -> None:
    answers = [["joy", "anger"], ["joy"], ["joy", "fear", "anger"]]
    assert combine_question(EMOTIONS, answers, "union") == ["joy", "anger", "fear"]
    assert combine_question(EMOTIONS, answers, "intersection") == ["joy"]
    assert combine_question(EMOTIONS, answers, "majority") == ["joy", "anger"]  # 2 of 3
    # two models: majority needs both (more than half)
    assert combine_question(EMOTIONS, [["joy", "anger"], ["joy"]], "majority") == ["joy"]
    # "no emotion" agreed on is an answer, not a missing one
    assert combine_question(EMOTIONS, [[], []], "intersection") == []


def test_intensity_keeps_the_level_any_every_or_most_models_reached() -> None:
    answers = [{"joy": 3, "anger": 1}, {"joy": 1}, {"joy": 2, "anger": 2}]
    assert combine_question(INTENSITY, answers, "union") == {"joy": 3, "anger": 2}
    assert combine_question(INTENSITY, answers, "intersection") == {"joy": 1}
    assert combine_question(INTENSITY, answers, "majority") == {"joy": 2, "anger": 1}


def test_single_choice_keeps_one_label_or_none() -> None:
    assert combine_question(EMOTION, ["joy", "joy", "anger"], "majority") == "joy"
    assert combine_question(EMOTION, ["joy", "joy", "anger"], "intersection") is None
    assert combine_question(EMOTION, ["joy", "joy", "anger"], "union") is None  # two labels cannot fit one choice
    assert combine_question(EMOTION, ["joy", "joy"], "intersection") == "joy"
    assert combine_question(EMOTION, ["joy", "sadness", "anger"], "majority") is None


def test_a_model_that_failed_the_item() -> None:
    assert combine_question(EMOTION, ["joy", None], "union") == "joy"
    assert combine_question(EMOTION, ["joy", None], "intersection") is None  # cannot know
    assert combine_question(EMOTION, ["joy", None], "majority") is None  # 1 of 2 is not more than half
    assert combine_question(EMOTION, ["joy", "joy", None], "majority") == "joy"
    assert combine_question(EMOTIONS, [["joy"], None, ["joy", "fear"]], "majority") == ["joy"]
    assert combine_question(EMOTIONS, [None, None], "union") is None
    # one of two answered: "no label reached a majority" must not read as an agreed "no emotion"
    assert combine_question(EMOTIONS, [["joy"], None], "majority") is None
    assert combine_question(EMOTIONS, [[], None, []], "majority") == []


def test_numbers_take_the_lower_median_of_the_values_given() -> None:
    assert combine_question(VALENCE, [2.0, 4.5, 3.5], "majority") == 3.5
    assert combine_question(VALENCE, [2.0, 4.5], "union") == 2.0  # one of the values, so still on the step
    assert combine_question(VALENCE, [2.0, None], "intersection") is None
    assert combine_question(VALENCE, [2.0, None, None], "majority") is None
    assert combine_question(VALENCE, [2.0, None, None], "union") == 2.0


def test_combine_answers_item_by_item_leaving_out_questions_without_an_answer() -> None:
    first = {"emotion": "joy", "emotions": ["joy"], "intensity": {"joy": 2}, "valence": 4.0}
    second = {"emotion": "anger", "emotions": ["joy", "anger"], "intensity": {"joy": 1, "anger": 1}, "valence": 3.0}
    assert combine_answers([first, second, None], SCHEMA, "union") == {
        "emotions": ["joy", "anger"], "intensity": {"joy": 2, "anger": 1}, "valence": 3.0}
    assert combine_answers([first, second], SCHEMA, "intersection") == {
        "emotions": ["joy"], "intensity": {"joy": 1}, "valence": 3.0}


def test_unknown_methods_and_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown method 'vote'"):
        combine_question(EMOTION, ["joy"], "vote")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="emotions: 'love' is not one of the labels"):
        combine_question(EMOTIONS, [["love"]], "union")
