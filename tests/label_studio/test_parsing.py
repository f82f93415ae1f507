"""The pure reading of Label Studio configs and tasks, checked against label-studio-sdk's own parser."""

from __future__ import annotations

import pytest
from label_studio_sdk.label_interface import LabelInterface

from annotation.export.label_studio import label_config
from annotation.label_studio.parsing import (
    LabelConfigError,
    answers_result,
    label_config_map,
    result_answers,
    task_read,
)
from annotation.schema import parse_questions
from tests.conftest import EMOTION_QUESTIONS
from tests.label_studio.conftest import AUDIO_CONFIG, LS_CONFIG, build_export

EVERYTHING = """<View>
  <Text name="text" value="$text"/>
  <Audio name="audio" value="$audio"/>
  <Paragraphs name="dialogue" value="$dialogue" layout="dialogue"/>
  <Choices name="sentiment" toName="text"><Choice value="positive"/><Choice value="negative"/></Choices>
  <Choices name="tags" toName="text" choice="multiple"><Choice value="a" alias="A"/><Choice value="b"/></Choices>
  <Choices name="options" toName="text" value="$options"/>
  <Rating name="stars" toName="text" maxRating="10"/>
  <Number name="2nd valence" toName="text" min="-1" max="1" step="0.1"/>
  <TextArea name="note" toName="text"/>
  <Labels name="regions" toName="audio"><Label value="laugh"/><Label value="cry"/></Labels>
  <Labels name="spans" toName="text"><Label value="ORG"/></Labels>
  <Taxonomy name="kind" toName="text" maxUsages="1"><Choice value="X"><Choice value="Y"/></Choice><Choice value="Z"/></Taxonomy>
  <Choices name="per_region" toName="audio" perRegion="true"><Choice value="loud"/><Choice value="soft"/></Choices>
  <DateTime name="when" toName="text"/>
</View>"""


def test_each_label_studio_control_maps_to_its_sentio_question_or_is_reported_by_tag_name() -> None:
    mapping = label_config_map(EVERYTHING)
    assert (mapping.text_var, mapping.audio_var) == ("text", "audio")
    assert mapping.questions == [
        {"key": "sentiment", "type": "single_choice", "title": "sentiment", "labels": ["positive", "negative"],
         "required": False},
        {"key": "tags", "type": "multi_label", "title": "tags", "labels": ["A", "b"], "required": False},
        {"key": "stars", "type": "numeric", "title": "stars", "min": 1, "max": 10, "step": 1, "required": False},
        {"key": "q_2nd_valence", "type": "numeric", "title": "2nd valence", "required": False, "min": -1.0,
         "max": 1.0, "step": 0.1},
        {"key": "note", "type": "text", "title": "note", "required": False},
        {"key": "regions", "type": "segments", "title": "regions", "labels": ["laugh", "cry"], "required": False},
        {"key": "kind", "type": "single_choice", "title": "kind", "labels": ["X", "X / Y", "Z"], "required": False},
    ]
    parse_questions(mapping.questions)  # a valid Sentio schema
    assert {(u.tag, u.name) for u in mapping.unmapped} == {
        ("Paragraphs", "dialogue"), ("Choices", "options"), ("Labels", "spans"), ("Choices", "per_region"),
        ("DateTime", "when")}
    reasons = {u.name: u.reason for u in mapping.unmapped}
    assert reasons["options"] == "it takes its choices from the task data; Sentio questions have fixed labels"
    assert "perRegion" in reasons["per_region"] and "metadata" in reasons["dialogue"]


def test_bad_configs_are_refused_with_the_reason() -> None:
    with pytest.raises(LabelConfigError, match="not well-formed XML"):
        label_config_map("<View><Text name='t' value='$t'></View>")
    with pytest.raises(LabelConfigError, match="declares a DTD or entities"):
        label_config_map('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><View>&lol;</View>')
    with pytest.raises(LabelConfigError, match="label-studio-sdk rejects the labelling config: toName=\"nowhere\""):
        label_config_map('<View><Text name="t" value="$t"/><Choices name="c" toName="nowhere">'
                         '<Choice value="x"/></Choices></View>')
    with pytest.raises(LabelConfigError, match="shows neither a Text nor an Audio object"):
        label_config_map('<View><HyperText name="h" value="$html"/><Choices name="c" toName="h">'
                         '<Choice value="x"/></Choices></View>')
    with pytest.raises(LabelConfigError, match="the labelling config is empty"):
        label_config_map("  ")


def test_overlong_choices_and_clashing_names_are_handled() -> None:
    long = "x" * 101
    mapping = label_config_map('<View><Text name="t" value="$t"/>'
                               f'<Choices name="Mood" toName="t"><Choice value="{long}"/><Choice value="y"/></Choices>'
                               '<Choices name="mood" toName="t"><Choice value="x"/><Choice value="y"/></Choices>'
                               '<Choices name="MOOD!" toName="t"><Choice value="x"/><Choice value="y"/></Choices>'
                               '<Choices name="9a" toName="t"><Choice value="x"/><Choice value="y"/></Choices></View>')
    assert [q["key"] for q in mapping.questions] == ["mood", "mood_2", "q_9a"]
    assert [(u.name, u.reason) for u in mapping.unmapped] == [
        ("Mood", "a choice is empty or longer than 100 characters")]


def test_a_sentio_export_config_maps_back_to_the_same_questions_intensities_included() -> None:
    questions = parse_questions(EMOTION_QUESTIONS)
    mapping = label_config_map(label_config(questions))
    back = parse_questions(mapping.questions)
    assert [(q.key, q.type, q.labels, q.intensity, q.minimum, q.maximum, q.step) for q in back] == [
        (q.key, q.type, q.labels, q.intensity, q.minimum, q.maximum, q.step) for q in questions]
    assert mapping.unmapped == []


ANSWERS = {
    "sentiment": "negative", "tags": ["A", "b"], "stars": 7, "q_2nd_valence": -0.3, "note": "why not",
    "regions": [{"start": 0.5, "end": 1.25, "label": "laugh"}, {"start": 2.0, "end": 3.0, "label": "cry"}],
    "kind": "X / Y",
}


def test_answers_become_results_that_label_studio_accepts_and_read_back_the_same() -> None:
    mapping = label_config_map(EVERYTHING)
    result = answers_result(mapping, ANSWERS)
    interface = LabelInterface(EVERYTHING)
    assert interface.validate_prediction({"model_version": "m", "score": 0.5, "result": result}, return_errors=True) == []
    answers, problems, dropped = result_answers(mapping, result, "predictions[0]")
    assert problems == [] and dropped == 0
    assert answers == ANSWERS
    intensities = label_config_map(label_config(parse_questions(EMOTION_QUESTIONS)))
    value = {"emotion": "joy", "emotions": {"joy": 2, "anger": 0}, "valence": 3.3, "rationale": "x",
             "regions": [{"start": 0, "end": 1, "label": "anger"}]}
    result = answers_result(intensities, value)
    assert LabelInterface(intensities.config).validate_prediction({"result": result}, return_errors=True) == []
    assert result_answers(intensities, result, "a")[0] == value


def test_results_that_do_not_fit_their_control_are_problems_naming_it() -> None:
    mapping = label_config_map(EVERYTHING)
    bad = [
        {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": "positive"}},
        {"from_name": "stars", "to_name": "text", "type": "rating", "value": {"rating": "many"}},
        {"from_name": "note", "to_name": "text", "type": "textarea"},
        {"from_name": "spans", "to_name": "text", "type": "labels", "value": {"start": 0, "end": 1, "labels": ["ORG"]}},
    ]
    answers, problems, dropped = result_answers(mapping, bad, "annotations[2]")
    assert answers == {} and dropped == 1
    assert [(p.where, p.reason) for p in problems] == [
        ("annotations[2].sentiment", "value.choices must be a list of strings"),
        ("annotations[2].stars", "value.rating must be a number, got 'many'"),
        ("annotations[2].note", "the region has no value object"),
    ]


def test_a_task_reads_with_raters_times_skips_and_predictions() -> None:
    mapping = label_config_map(LS_CONFIG)
    [task] = build_export(1, skip_every=2)
    task["annotations"][0]["completed_by"] = {"id": 11, "email": "ana@example.org", "first_name": "Ana"}
    del task["annotations"][2]["completed_by"]
    task["predictions"].append(4242)  # an export made without prediction contents
    draft = task_read(mapping, task)
    assert draft.problems == [] and draft.external_id == "ls-task-1000" and draft.text.startswith("Task 0")
    assert [(a.rater, a.rater_email, a.cancelled) for a in draft.annotations] == [
        ("ls:11", "ana@example.org", False), ("ls:12", "", True), ("ls:anonymous-1000-2", "", False)]
    assert draft.annotations[1].answers == {}
    assert draft.annotations[0].lead_time_ms == 3500 and draft.annotations[0].created_at.tzinfo is not None
    assert [(p.model_version, p.score) for p in draft.predictions] == [("bert-emotion-v2", 0.75)]
    assert draft.predictions_as_ids == 1
    broken = task_read(mapping, {"id": 5, "data": "text"})
    assert [(p.where, p.reason) for p in broken.problems] == [("data", "must be a JSON object")]
    score = task_read(mapping, {**task, "predictions": [{"score": 3, "result": []}]})
    assert [(p.where, p.reason) for p in score.problems] == [("predictions[0].score", "must be a number from 0 to 1, got 3")]


def test_audio_tasks_keep_the_audio_reference_and_segments() -> None:
    mapping = label_config_map(AUDIO_CONFIG)
    assert (mapping.audio_var, mapping.text_var) == ("audio", "transcript")
    task = {"id": 3, "data": {"audio": "/data/upload/1/abcd1234-clip.wav", "transcript": "ha ha"},
            "annotations": [{"id": 1, "completed_by": 2, "result": [
                {"from_name": "segments", "to_name": "audio", "type": "labels",
                 "value": {"start": 1.5, "end": 0.5, "channel": 0, "labels": ["joy"]}}]}]}
    draft = task_read(mapping, task)
    assert draft.audio == "/data/upload/1/abcd1234-clip.wav"
    assert [(p.where, p.reason) for p in draft.problems] == [
        ("annotations[0].segments", "segment 0 needs numbers 0 <= start < end (seconds)")]
