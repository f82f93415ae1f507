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


# --- "none of these" and missing labels -------------------------------------------------------------------------------

BINARY = [{"key": "emotions", "type": "multi_label", "labels": ["joy", "fear", "anger"]}]
INTENSITY = [{"key": "emotions", "type": "multi_label", "labels": ["joy", "fear", "anger"], "intensity": True}]


@pytest.mark.parametrize(("raw", "answer", "stored"), [
    (BINARY, [], []),
    (BINARY, {"joy": 0, "fear": 0}, []),
    (INTENSITY, {}, {}),
    (INTENSITY, [], {}),
    (INTENSITY, {"fear": 0, "joy": 0}, {"joy": 0, "fear": 0}),
])
def test_an_empty_multi_label_answer_is_none_of_these(raw, answer, stored):
    questions = parse_questions(raw)
    assert questions[0].allow_empty  # on by default
    assert validate_answers(questions, {"emotions": answer}) == {"emotions": stored}


@pytest.mark.parametrize("value", [{}, {"emotions": None}, {"emotions": {"joy": None, "fear": None}}])
def test_an_absent_or_all_null_answer_is_not_an_answer(value):
    with pytest.raises(SchemaError) as excinfo:
        validate_answers(parse_questions(BINARY), value)
    assert excinfo.value.errors == {"value": "answers no question"}


def test_allow_empty_false_refuses_none_of_these():
    questions = parse_questions([{**BINARY[0], "allow_empty": False, "required": True}])
    with pytest.raises(SchemaError) as excinfo:
        validate_answers(questions, {"emotions": []})  # as before: an empty list leaves it unanswered
    assert excinfo.value.errors["emotions"] == "this question is required"
    with pytest.raises(SchemaError) as zeros:
        validate_answers(questions, {"emotions": {"joy": 0}})
    assert "choose at least one label" in zeros.value.errors["emotions"]
    assert validate_answers(questions, {"emotions": ["fear"]}) == {"emotions": ["fear"]}
    with pytest.raises(SchemaError) as bad:
        parse_questions([{**BINARY[0], "allow_empty": "yes"}])
    assert "questions[0].allow_empty" in bad.value.errors


def test_null_marks_a_label_unanswered_and_is_kept():
    binary = parse_questions(BINARY)
    # Without nulls a 0/1 mapping is the usual list; with one it stays a mapping (absent labels dropped).
    assert validate_answers(binary, {"emotions": {"anger": 1, "joy": 0}}) == {"emotions": ["anger"]}
    assert validate_answers(binary, {"emotions": {"anger": 1, "joy": 0, "fear": None}}) == {
        "emotions": {"fear": None, "anger": 1}}
    intensity = parse_questions(INTENSITY)
    assert validate_answers(intensity, {"emotions": {"anger": 2, "joy": None, "fear": 0}}) == {
        "emotions": {"joy": None, "fear": 0, "anger": 2}}
    with pytest.raises(SchemaError) as excinfo:
        validate_answers(binary, {"emotions": {"joy": 2}})
    assert "from 0 to 1 or null" in excinfo.value.errors["emotions"]


def test_multi_label_levels_separates_chosen_absent_and_missing():
    from annotation.schema import multi_label_levels

    assert multi_label_levels(["joy", "fear"]) == ({"joy": 1, "fear": 1}, frozenset())
    assert multi_label_levels({"joy": 2, "fear": 0, "anger": None}) == ({"joy": 2}, frozenset({"anger"}))
    assert multi_label_levels([]) == ({}, frozenset())
