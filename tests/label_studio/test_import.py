"""Importing a Label Studio JSON export: every annotation of every annotator, predictions, skipped work, the
all-or-nothing rule, re-imports, and the corpus agreement report on the result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.label_studio.parsing import UNVERSIONED_MODEL
from annotation.models import Annotation, LabelSchemaVersion, Origin, Prediction
from annotation.predictions.services import META_KEY
from annotation.quality.selectors import agreement_report_find, quality_source_for_corpus
from annotation.quality.services import agreement_report_compute
from corpora.models import Utterance
from jobs.models import JobStatus
from tests.label_studio.conftest import LS_CONFIG, build_export

pytestmark = pytest.mark.django_db


def test_every_annotation_of_every_annotator_becomes_a_rating_with_its_facts(corpus, run_ls_import) -> None:
    tasks = build_export(30)
    job = run_ls_import(corpus, tasks)
    assert job.status == JobStatus.SUCCEEDED, (job.message, list(job.errors.values_list("reason", flat=True)))
    assert job.counts["tasks"] == 30 and job.counts["utterances"] == 30
    assert job.counts["annotations"] == 90 and job.counts["predictions"] == 30
    version = LabelSchemaVersion.objects.get(pk=job.result["schema"]["id"])
    assert version.schema.slug == "forum-label-studio"
    keys = {q["key"]: q for q in version.questions}
    assert keys["emotion"]["type"] == "single_choice" and keys["emotion"]["title"] == "Which emotion?"
    assert keys["emotions_present"]["type"] == "multi_label"
    assert keys["intensity"] == {"key": "intensity", "type": "numeric", "title": "intensity", "min": 1, "max": 5,
                                 "step": 1, "required": False}
    assert keys["valence"]["step"] == 0.5 and keys["why"]["type"] == "text"
    assert keys["topic"]["labels"] == ["Family", "Family / Parents", "Family / Children", "Work"]
    assert job.result["unmapped"] == [{"tag": "Labels", "name": "who", "reason": (
        "labels on text spans have no Sentio question type (only labels on audio regions become time segments)")}]
    assert job.result["questions"]["Emotions-Present"] == "emotions_present"
    assert job.counts["dropped_regions"] > 0  # the "who" spans, reported and left out

    for task in tasks:
        utterance = Utterance.objects.get(corpus=corpus, external_id=f"ls-task-{task['id']}")
        assert utterance.text == task["data"]["text"] and utterance.language.code == "en"
        assert utterance.metadata["label_studio"] == {"task_id": task["id"], "data": {"source": "forum"}}
        humans = Annotation.objects.filter(utterance=utterance, origin=Origin.HUMAN).order_by("id")
        assert [a.external_id for a in humans] == [str(a["id"]) for a in task["annotations"]]
        for annotation, source in zip(humans, task["annotations"]):
            assert annotation.project_id is None and annotation.schema_version_id == version.pk
            assert annotation.external_rater == f"ls:{source['completed_by']}"
            assert annotation.created_at == datetime.fromisoformat(source["created_at"]).astimezone(UTC)
            assert annotation.updated_at == datetime.fromisoformat(source["updated_at"]).astimezone(UTC)
            assert annotation.lead_time_ms == round(source["lead_time"] * 1000)
            assert annotation.was_cancelled == source["was_cancelled"]
            assert annotation.import_job_id == job.pk
            if source["was_cancelled"]:
                assert annotation.value == {}
                continue
            chosen = next(r for r in source["result"] if r["from_name"] == "emotion")["value"]["choices"][0]
            assert annotation.value["emotion"] == chosen
            assert annotation.value["topic"] in (["Family / Parents"], ["Work"])
            assert "who" not in annotation.value
        prediction = Prediction.objects.get(utterance=utterance)
        source_prediction = task["predictions"][0]
        assert prediction.model_version == "bert-emotion-v2" and prediction.uncertainty == pytest.approx(0.25)
        label = source_prediction["result"][0]["value"]["choices"][0]
        assert prediction.label == label and prediction.scores[label] == 0.75
        assert prediction.scores[META_KEY]["answers"] == {"emotion": label}
        model_made = Annotation.objects.get(utterance=utterance, origin=Origin.MODEL)
        assert model_made.model_version == "bert-emotion-v2" and model_made.value == {"emotion": label}
    assert job.counts["cancelled"] == Annotation.objects.filter(was_cancelled=True).count() > 0


def test_the_lead_gets_alpha_per_question_with_intervals_on_the_imported_project(corpus, run_ls_import) -> None:
    job = run_ls_import(corpus, build_export(40, agree=0.9))
    version = LabelSchemaVersion.objects.get(pk=job.result["schema"]["id"])
    source = quality_source_for_corpus(corpus, version)
    report = agreement_report_compute(source=source, n_resamples=200)
    assert agreement_report_find(source).pk == report.pk
    result = report.result
    assert result["totals"]["human_raters"] == 3 and result["totals"]["units"] == 40
    assert result["totals"]["model_versions"] == ["bert-emotion-v2"]
    by_key = {q["key"]: q for q in result["questions"]}
    emotion = by_key["emotion"]["perspectives"][0]
    low, high = emotion["alpha"]["interval"]
    assert 0.5 < emotion["alpha"]["alpha"] <= 1 and low <= emotion["alpha"]["alpha"] <= high
    assert emotion["counts"]["n_raters"] == 3
    assert emotion["models"][0]["model_version"] == "bert-emotion-v2"
    for key in ("emotions_present", "intensity", "valence", "topic"):
        assert by_key[key]["perspectives"][0]["alpha"]["interval"] is not None, key
    assert "skipped" in by_key["why"]


def test_a_bad_annotation_fails_the_whole_import_and_names_task_annotation_and_control(corpus, run_ls_import) -> None:
    tasks = build_export(5)
    tasks[3]["annotations"][1]["result"][0]["value"]["choices"] = ["bored"]
    tasks[4]["annotations"][0]["lead_time"] = "soon"
    job = run_ls_import(corpus, tasks)
    assert job.status == JobStatus.FAILED and "nothing was imported" in job.message
    assert not Utterance.objects.filter(corpus=corpus).exists() and not Annotation.objects.exists()
    errors = {(e.row, e.column): e.reason for e in job.errors.all()}
    assert "'bored' is not one of the labels" in errors[(4, "annotations[1].emotion")]
    assert errors[(5, "annotations[0].lead_time")] == "must be seconds (a number ≥ 0), got 'soon'"
    assert all(e.file == "export.json" for e in job.errors.all())


def test_skip_invalid_keeps_the_rest_and_counts_what_it_left_out(corpus, run_ls_import) -> None:
    tasks = build_export(5)
    tasks[3]["annotations"][1]["result"][0]["value"]["choices"] = ["joy", "anger"]  # two answers to a single choice
    tasks[2]["data"] = {"source": "no text"}
    job = run_ls_import(corpus, tasks, mode="skip_invalid")
    assert job.status == JobStatus.SUCCEEDED
    assert job.counts["utterances"] == 4 and job.counts["rejected_tasks"] == 1
    assert job.counts["rejected_annotations"] == 1 and job.counts["annotations"] == 4 * 3 - 1
    reasons = [e.reason for e in job.errors.all()]
    assert "a single choice holds 2 choices: ['joy', 'anger']" in reasons
    assert "the task has no text and no audio (data key 'text')" in reasons


def test_reimporting_adds_only_what_is_new(corpus, run_ls_import) -> None:
    tasks = build_export(6)
    first = run_ls_import(corpus, tasks)
    tasks[0]["annotations"].append({**tasks[0]["annotations"][0], "id": 99999, "completed_by": 14})
    tasks.append(build_export(1, first_id=2000)[0])
    again = run_ls_import(corpus, tasks)
    assert again.status == JobStatus.SUCCEEDED, again.message
    assert again.counts["utterances"] == 1 and again.counts["utterances_matched"] == 6
    assert again.counts["annotations"] == 1 + 3 and again.counts["already_imported"] == 6 * 3 + 6
    assert Annotation.objects.filter(origin=Origin.HUMAN).count() == 7 * 3 + 1
    assert Prediction.objects.count() == 7
    assert again.result["schema"] == first.result["schema"]  # the same config: the same schema version
    assert LabelSchemaVersion.objects.filter(schema__slug="forum-label-studio").count() == 1


def test_a_changed_config_makes_a_new_schema_version(corpus, run_ls_import) -> None:
    first = run_ls_import(corpus, build_export(2))
    changed = LS_CONFIG.replace('<Choice value="neutral"/>', '<Choice value="neutral"/><Choice value="fear"/>')
    second = run_ls_import(corpus, build_export(2, first_id=3000), config=changed)
    assert first.result["schema"]["slug"] == second.result["schema"]["slug"]
    assert (first.result["schema"]["version"], second.result["schema"]["version"]) == (1, 2)


def test_numbers_without_a_range_take_it_from_the_answers_and_predictions_without_version(corpus, run_ls_import) -> None:
    config = '<View><Text name="t" value="$text"/><Number name="arousal" toName="t"/></View>'
    tasks = [{"id": i, "data": {"text": f"text {i}"},
              "annotations": [{"id": 10 + i, "completed_by": 1, "result": [
                  {"from_name": "arousal", "to_name": "t", "type": "number", "value": {"number": 2.5 + i}}]}],
              "predictions": [{"result": [{"from_name": "arousal", "to_name": "t", "type": "number",
                                           "value": {"number": 7}}]}]}
             for i in range(3)]
    job = run_ls_import(corpus, tasks, config=config)
    assert job.status == JobStatus.SUCCEEDED, job.message
    [question] = LabelSchemaVersion.objects.get(pk=job.result["schema"]["id"]).questions
    assert (question["min"], question["max"]) == (2, 7)
    assert set(Prediction.objects.values_list("model_version", flat=True)) == {UNVERSIONED_MODEL}


def test_bad_files_and_configs_fail_with_the_reason_and_write_nothing(corpus, run_ls_import) -> None:
    from annotation.label_studio.services import LabelStudioError

    broken = run_ls_import(corpus, b'[{"id": 1, "data": {"text": "a"}}, {"id": 2,')
    assert broken.status == JobStatus.FAILED and "is not valid JSON" in broken.message
    not_a_list = run_ls_import(corpus, {"tasks": []})
    assert not_a_list.status == JobStatus.FAILED and "holds no list of tasks" in not_a_list.message
    empty = run_ls_import(corpus, b" [ ] ")
    assert empty.status == JobStatus.FAILED and "holds no tasks" in empty.message
    garbage = run_ls_import(corpus, b'[{"id": 1, "data": {"text": "a"}} {"id": 2}]')
    assert "expected ',' or ']' after a task" in garbage.message
    with pytest.raises(LabelStudioError) as refused:
        run_ls_import(corpus, build_export(1), config='<!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]><View/>')
    assert refused.value.errors == {"config": "the labelling config declares a DTD or entities; Label Studio configs "
                                              "need neither"}
    with pytest.raises(LabelStudioError) as unmappable:
        run_ls_import(corpus, build_export(1), config='<View><Image name="i" value="$image"/>'
                                                      '<RectangleLabels name="box" toName="i"><Label value="cat"/>'
                                                      '</RectangleLabels></View>')
    reason = unmappable.value.errors["config"]
    assert reason.startswith("nothing in the labelling config maps to a Sentio question (<Image name='i'>")
    assert "<RectangleLabels name='box'>: no Sentio question type matches this control" in reason
    with pytest.raises(LabelStudioError) as language:
        run_ls_import(corpus, build_export(1), language="klingon-xx")
    assert "language" in language.value.errors
    assert not Utterance.objects.exists()


def test_the_command_imports_a_file_and_prints_alpha(corpus, tmp_path: Path) -> None:
    export = tmp_path / "project-7.json"
    export.write_text(json.dumps(build_export(12)))
    config = tmp_path / "label_config.xml"
    config.write_text(LS_CONFIG)
    out = StringIO()
    call_command("import_label_studio", "new-corpus", str(export), "--config", str(config), "--language", "en",
                 "--create", "--name", "New", "--license", "CC0-1.0", "--resamples", "50", stdout=out)
    text = out.getvalue()
    assert "succeeded" in text and "annotations=36" in text
    assert "not imported: <Labels name='who'>" in text
    assert "Emotions-Present -> emotions_present" in text
    assert "agreement of 3 rater(s) on 12 utterance(s)" in text
    assert "emotion (nominal): " in text and "[" in text.split("emotion (nominal): ")[1].splitlines()[0]
    with pytest.raises(CommandError, match="--config: give the labelling config"):
        call_command("import_label_studio", "new-corpus", str(export), stdout=StringIO())
    with pytest.raises(CommandError, match="a corpus with slug 'new-corpus' already exists"):
        call_command("import_label_studio", "new-corpus", str(export), "--config", str(config), "--create",
                     "--license", "x", stdout=StringIO())


def test_tasks_stream_across_read_blocks_whatever_their_size(corpus, run_ls_import, monkeypatch) -> None:
    import annotation.label_studio.services as services

    monkeypatch.setattr(services, "READ_BLOCK_CHARS", 97)  # far smaller than one task
    tasks = build_export(7)
    tasks[2]["data"]["text"] = "मला खूप आनंद झाला आहे " * 40  # multi-byte text across block edges
    body = b"\xef\xbb\xbf \n" + json.dumps(tasks, ensure_ascii=False, indent=2).encode()  # a BOM and pretty-printing
    job = run_ls_import(corpus, body)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["tasks"] == 7 and job.counts["annotations"] == 21
    assert Utterance.objects.get(external_id=f"ls-task-{tasks[2]['id']}").text == tasks[2]["data"]["text"]
    monkeypatch.setattr(services, "MAX_TASK_CHARS", 500)
    too_big = run_ls_import(corpus, b'[{"id": 1, "data": {"text": "' + b"x" * 2000 + b'"}}]')
    assert too_big.status == JobStatus.FAILED and "is not valid JSON near character" in too_big.message


def test_the_corpus_projects_get_items_for_the_new_utterances(corpus, lead, emotion_schema, run_ls_import) -> None:
    from annotation.models import ProjectItem
    from annotation.services import project_create

    project = project_create(name="On the forum", corpus=corpus, schema_version=emotion_schema, created_by=lead,
                             overlap=2)
    job = run_ls_import(corpus, build_export(5))
    assert job.status == JobStatus.SUCCEEDED
    assert set(ProjectItem.objects.filter(project=project).values_list("utterance__external_id", flat=True)) == {
        f"ls-task-{1000 + i}" for i in range(5)}
    assert set(corpus.languages.values_list("code", flat=True)) == {"en"}
