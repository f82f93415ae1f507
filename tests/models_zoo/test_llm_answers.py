"""Answer schemas: label-schema questions become a JSON schema that only admits the label set, and every answer
is checked again when it comes back."""

from __future__ import annotations

import json

import pytest

from models_zoo.llm import AnswerSchema, LLMAnswerError, TemplateError

QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger"], "title": "Main emotion"},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "sadness", "anger"]},
    {"key": "intensity", "type": "multi_label", "labels": ["joy", "anger"], "intensity": True},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.5},
    {"key": "rationale", "type": "text", "max_length": 500},
    {"key": "regions", "type": "segments", "labels": ["joy"]},
]


def test_json_schema_constrains_each_question_type_to_its_labels_and_range() -> None:
    schema = AnswerSchema.from_questions(QUESTIONS, translation=True, rationale=True)
    assert schema.skipped == ("rationale", "regions")
    js = schema.json_schema()
    # translation first, then rationale, then labels: the order the model writes them in
    assert list(js["properties"]) == ["translation", "rationale", "labels"]
    assert js["required"] == ["translation", "rationale", "labels"] and js["additionalProperties"] is False
    labels = js["properties"]["labels"]
    assert labels["required"] == ["emotion", "emotions", "intensity", "valence"]
    assert labels["additionalProperties"] is False
    props = labels["properties"]
    assert props["emotion"] == {"type": "string", "enum": ["joy", "sadness", "anger"]}
    assert props["emotions"] == {"type": "array", "items": {"type": "string", "enum": ["joy", "sadness", "anger"]}}
    assert props["intensity"]["properties"]["joy"] == {"type": "integer", "enum": [0, 1, 2, 3]}
    assert props["intensity"]["required"] == ["joy", "anger"]
    assert props["valence"] == {"type": "number", "enum": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]}
    json.dumps(js)  # serialisable as it goes on the wire


def test_a_fine_or_stepless_scale_is_a_range_not_an_enum() -> None:
    fine = AnswerSchema.from_questions([{"key": "v", "type": "numeric", "min": 0, "max": 100, "step": 0.01}])
    assert fine.json_schema()["properties"]["labels"]["properties"]["v"] == {"type": "number", "minimum": 0.0,
                                                                             "maximum": 100.0}
    tenth = AnswerSchema.from_questions([{"key": "v", "type": "numeric", "min": 1, "max": 5, "step": 0.1}])
    grid = tenth.json_schema()["properties"]["labels"]["properties"]["v"]["enum"]
    assert len(grid) == 41 and grid[:3] == [1.0, 1.1, 1.2] and grid[-1] == 5.0  # no 1.2000000000000002


def test_text_fields_are_capped_only_when_asked() -> None:
    plain = AnswerSchema.from_questions(QUESTIONS[:1], translation=True).json_schema()
    assert plain["properties"]["translation"] == {"type": "string"}
    capped = AnswerSchema.from_questions(QUESTIONS[:1], translation=True, max_text_chars=300).json_schema()
    assert capped["properties"]["translation"] == {"type": "string", "maxLength": 300}


def test_parse_returns_answers_in_sentios_annotation_form() -> None:
    schema = AnswerSchema.from_questions(QUESTIONS, translation=True, rationale=True)
    answer = schema.parse(json.dumps({
        "translation": " I am so happy ", "rationale": "Happiness is stated.",
        "labels": {"emotion": "joy", "emotions": ["anger", "joy", "joy"], "intensity": {"joy": 2, "anger": 0},
                   "valence": 4.4},
    }))
    assert answer.translation == "I am so happy" and answer.rationale == "Happiness is stated."
    # multi-label in the schema's order, each once; intensity 0 means absent; numbers snap to the step
    assert answer.labels == {"emotion": "joy", "emotions": ["joy", "anger"], "intensity": {"joy": 2}, "valence": 4.5}


def test_raw_line_breaks_inside_a_rationale_are_tolerated() -> None:
    schema = AnswerSchema.from_questions(QUESTIONS[:1], rationale=True)
    answer = schema.parse('{"rationale": "He shouts.\n\tHe is angry.", "labels": {"emotion": "anger"}}')
    assert answer.rationale == "He shouts.\n\tHe is angry." and answer.labels == {"emotion": "anger"}


@pytest.mark.parametrize(("labels", "reason"), [
    ({"emotion": "happiness", "emotions": [], "intensity": {}, "valence": 3}, "'happiness' is not one of the labels"),
    ({"emotion": "joy", "emotions": ["joy", "love"], "intensity": {}, "valence": 3}, "'love' is not one of the labels"),
    ({"emotion": "joy", "emotions": "joy", "intensity": {}, "valence": 3}, "must be a list of labels"),
    ({"emotion": "joy", "emotions": [], "intensity": {"joy": 4}, "valence": 3}, "intensity of 'joy' must be an integer"),
    ({"emotion": "joy", "emotions": [], "intensity": {"fear": 1}, "valence": 3}, "'fear' is not one of the labels"),
    ({"emotion": "joy", "emotions": [], "intensity": {}, "valence": 7}, "outside the range 1-5"),
    ({"emotion": "joy", "emotions": [], "intensity": {}, "valence": "high"}, "must be a number"),
    ({"emotions": [], "intensity": {}, "valence": 3}, "no answer to 'emotion'"),
    ({"emotion": "joy", "emotions": [], "intensity": {}, "valence": 3, "arousal": 2}, "'arousal' is not a question"),
])
def test_parse_refuses_answers_outside_the_schema(labels: dict[str, object], reason: str) -> None:
    schema = AnswerSchema.from_questions(QUESTIONS)
    raw = json.dumps({"labels": labels})
    with pytest.raises(LLMAnswerError) as caught:
        schema.parse(raw)
    assert reason in caught.value.reason
    assert caught.value.raw == raw and caught.value.retryable is False


def test_parse_refuses_what_is_not_the_answer_object() -> None:
    schema = AnswerSchema.from_questions(QUESTIONS[:1], translation=True)
    for raw, reason in [("joy", "not JSON"), ("[1]", "not a JSON object"),
                        ('{"labels": {"emotion": "joy"}}', "'translation' must be a string"),
                        ('{"translation": "x", "labels": ["joy"]}', "'labels' must be an object")]:
        with pytest.raises(LLMAnswerError, match=reason):
            schema.parse(raw)


def test_questions_an_llm_cannot_use_are_refused_by_name() -> None:
    with pytest.raises(TemplateError, match="no question an LLM can answer"):
        AnswerSchema.from_questions([{"key": "why", "type": "text"}])
    with pytest.raises(TemplateError, match="question 'e': 'labels' must be a non-empty list"):
        AnswerSchema.from_questions([{"key": "e", "type": "single_choice", "labels": []}])
    with pytest.raises(TemplateError, match="labels must be unique"):
        AnswerSchema.from_questions([{"key": "e", "type": "multi_label", "labels": ["joy", "joy"]}])
    with pytest.raises(TemplateError, match="min < max"):
        AnswerSchema.from_questions([{"key": "v", "type": "numeric", "min": 5, "max": 1}])


def test_describe_tells_the_model_what_to_answer() -> None:
    text = AnswerSchema.from_questions(QUESTIONS).describe().splitlines()
    assert text == [
        "- emotion (Main emotion): exactly one of: joy, sadness, anger",
        "- emotions: every label that applies (none is allowed), from: joy, sadness, anger",
        "- intensity: for every label an intensity from 0 (absent) to 3 (strong): joy, anger",
        "- valence: a number from 1 to 5 in steps of 0.5",
    ]
