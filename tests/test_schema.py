import pytest

from annotation.schema import SchemaError, parse_questions, validate_answers
from tests.conftest import EMOTION_QUESTIONS


@pytest.fixture
def questions():
    return parse_questions(EMOTION_QUESTIONS)


def test_valid_answers_are_normalised(questions):
    value = {
        "emotion": "joy",
        "emotions": {"anger": 2, "joy": 3},
        "valence": 3.7,
        "rationale": "sounds happy",
        "regions": [{"start": 1.5, "end": 2.0, "label": "anger"}, {"start": 0.0, "end": 1.0, "label": "joy"}],
    }
    cleaned = validate_answers(questions, value)
    assert list(cleaned["emotions"]) == ["joy", "anger"]  # schema order
    assert cleaned["regions"][0]["label"] == "joy"


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ({"emotion": "bored"}, "emotion", "not one of the labels"),
        ({}, "emotion", "required"),
        ({"emotion": "joy", "emotions": {"joy": 4}}, "emotions", "0 to 3"),
        ({"emotion": "joy", "valence": 7}, "valence", "outside the range"),
        ({"emotion": "joy", "valence": 3.05}, "valence", "step"),
        ({"emotion": "joy", "valence": True}, "valence", "must be a number"),
        ({"emotion": "joy", "rationale": "x" * 501}, "rationale", "at most 500"),
        ({"emotion": "joy", "regions": [{"start": 2, "end": 1, "label": "joy"}]}, "regions", "start < end"),
        ({"emotion": "joy", "mood": "x"}, "mood", "no such question"),
    ],
)
def test_answers_outside_the_schema_name_the_field(questions, value, field, reason):
    with pytest.raises(SchemaError) as excinfo:
        validate_answers(questions, value)
    assert field in excinfo.value.errors
    assert reason in excinfo.value.errors[field]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "questions"),
        ([{"key": "Bad Key", "type": "text"}], "questions[0].key"),
        ([{"key": "a", "type": "slider"}], "questions[0].type"),
        ([{"key": "a", "type": "single_choice", "labels": []}], "questions[0].labels"),
        ([{"key": "a", "type": "single_choice", "labels": ["x", "x"]}], "questions[0].labels"),
        ([{"key": "v", "type": "numeric", "min": 5, "max": 1}], "questions[0].min"),
        ([{"key": "a", "type": "text"}, {"key": "a", "type": "text"}], "questions[1].key"),
    ],
)
def test_bad_schemas_are_refused_with_the_field(raw, field):
    with pytest.raises(SchemaError) as excinfo:
        parse_questions(raw)
    assert field in excinfo.value.errors
