"""Round trips: a Label Studio export imported into Sentio and exported again in Label Studio format keeps every
annotation (with its rater, skipped state and lead time) and every prediction; the export passes label-studio-sdk's
parser; its audio links resolve; and it imports back into Sentio unchanged."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.storage import default_storage

from annotation.export.label_studio import label_studio_validate
from annotation.export.services import export_job_create, export_run
from annotation.label_studio.parsing import label_config_map, result_answers
from annotation.models import Annotation, LabelSchemaVersion, Origin
from corpora.models import Corpus, Utterance
from corpora.services import corpus_create
from jobs.models import Job, JobStatus
from tests.label_studio.conftest import AUDIO_CONFIG, build_export, wav_bytes

pytestmark = pytest.mark.django_db


def export_label_studio(corpus: Corpus, version: LabelSchemaVersion, lead: Any) -> tuple[str, list[dict[str, Any]]]:
    with mock.patch("jobs.dispatch.task_send"):
        job = export_job_create(created_by=lead, corpus=corpus, schema_version=version,
                                options={"formats": ["label_studio"], "seed": 3})
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    files = {f["name"]: Path(default_storage.path(f["storage_name"])) for f in job.result["files"]}
    config = files["label_studio/label_config.xml"].read_text()
    tasks = [t for split in ("train", "dev", "test") for t in json.loads(files[f"label_studio/{split}.json"].read_text())]
    return config, tasks


def ratings(corpus: Corpus) -> Counter[tuple[Any, ...]]:
    """Every human annotation of a corpus as (task text, rater, answers, skipped, lead time)."""
    return Counter(
        (a.utterance.text, a.external_rater, json.dumps(a.value, sort_keys=True), a.was_cancelled, a.lead_time_ms)
        for a in Annotation.objects.filter(utterance__corpus=corpus, origin=Origin.HUMAN).select_related("utterance"))


def test_label_studio_to_sentio_to_label_studio_to_sentio_keeps_every_annotation(corpus, lead, run_ls_import) -> None:
    source_tasks = build_export(24)
    first = run_ls_import(corpus, source_tasks)
    assert first.status == JobStatus.SUCCEEDED, first.message
    version = LabelSchemaVersion.objects.get(pk=first.result["schema"]["id"])

    config, tasks = export_label_studio(corpus, version, lead)
    assert label_studio_validate(config, tasks) == []  # label-studio-sdk's LabelInterface accepts config and tasks
    assert len(tasks) == 24
    exported = [a for t in tasks for a in t["annotations"]]
    assert len(exported) == sum(len(t["annotations"]) for t in source_tasks) == 72
    assert Counter(a["created_username"] for a in exported) == Counter({"ls:11": 24, "ls:12": 24, "ls:13": 24})
    assert sum(a["was_cancelled"] for a in exported) == sum(a["was_cancelled"] for t in source_tasks
                                                              for a in t["annotations"])
    assert all(len(t["predictions"]) == 1 and t["predictions"][0]["model_version"] == "bert-emotion-v2" for t in tasks)
    # Each exported annotation holds the answers of the Label Studio annotation it came from.
    mapping = label_config_map(config)
    originals = {a["id"]: a for t in source_tasks for a in t["annotations"]}
    by_sentio_id = {a.pk: a for a in Annotation.objects.filter(origin=Origin.HUMAN)}
    source_mapping = label_config_map(first.params["label_config"])
    for annotation in exported:
        stored = by_sentio_id[annotation["id"]]
        answers, problems, _ = result_answers(mapping, annotation["result"], "a")
        assert problems == [] and answers == stored.value
        original = originals[int(stored.external_id)]
        assert result_answers(source_mapping, original["result"], "o")[0] == answers
        assert annotation["lead_time"] == original["lead_time"]

    # ... and Sentio imports its own export back, keeping every rating.
    again = corpus_create(name="Round trip", slug="round-trip", license="CC-BY-4.0", created_by=lead)
    back = run_ls_import(again, tasks, config=config)
    assert back.status == JobStatus.SUCCEEDED, back.message
    assert back.counts["annotations"] == 72 and back.counts["predictions"] == 24
    assert ratings(again) == ratings(corpus)
    assert set(Utterance.objects.filter(corpus=again).values_list("external_id", flat=True)) == {
        f"ls-task-{t['id']}" for t in source_tasks}


def test_audio_links_in_the_export_resolve_and_come_back_on_import(settings, corpus, lead, run_ls_import,
                                                                   tmp_path: Path, client) -> None:
    settings.PUBLIC_URL = "https://sentio.example.org"
    folder = tmp_path / "clips"
    folder.mkdir()
    tasks = []
    for i in range(6):
        (folder / f"clip{i}.wav").write_bytes(wav_bytes(0.2 + 0.05 * i, pitch=300 + 20 * i))
        tasks.append({"id": i + 1, "data": {"audio": f"/data/upload/2/0000000{i}-clip{i}.wav", "transcript": f"c{i}"},
                      "annotations": [{"id": 100 + 3 * i + k, "completed_by": k, "result": [
                          {"from_name": "emotion", "to_name": "audio", "type": "choices",
                           "value": {"choices": ["joy" if k else "anger"]}}]} for k in range(3)],
                      "predictions": [{"model_version": "ser-1", "score": 0.6, "result": [
                          {"from_name": "emotion", "to_name": "audio", "type": "choices",
                           "value": {"choices": ["joy"]}}]}]})
    first = run_ls_import(corpus, tasks, config=AUDIO_CONFIG, audio_dir=str(folder), created_by=lead)
    assert first.status == JobStatus.SUCCEEDED, first.message
    version = LabelSchemaVersion.objects.get(pk=first.result["schema"]["id"])
    config, exported = export_label_studio(corpus, version, lead)
    assert label_studio_validate(config, exported) == []
    client.force_login(lead)
    for task in exported:
        link = task["data"]["audio"]
        assert link.startswith("https://sentio.example.org/media/audio/")
        response = client.get(link.removeprefix("https://sentio.example.org"))
        assert response.status_code == 200
        utterance = Utterance.objects.get(pk=task["data"]["utterance_id"])
        assert b"".join(response.streaming_content) == utterance.audio.read()
    again = corpus_create(name="Audio again", slug="audio-again", license="CC-BY-4.0", created_by=lead)
    back = run_ls_import(again, exported, config=config, created_by=lead)
    assert back.status == JobStatus.SUCCEEDED, back.message
    assert sorted(Utterance.objects.filter(corpus=again).values_list("audio_duration_s", flat=True)) == \
        sorted(Utterance.objects.filter(corpus=corpus).values_list("audio_duration_s", flat=True))
    assert all(u.audio.name.startswith(f"audio/{again.pk}/") for u in Utterance.objects.filter(corpus=again))
    assert ratings(again) == ratings(corpus)
    # Someone who cannot see the first corpus cannot pull its audio in through a link.
    stranger_corpus = corpus_create(name="Other", slug="other", license="CC0-1.0", created_by=None)
    from django.contrib.auth.models import User

    stranger = User.objects.create_user("sam_stranger")
    refused = run_ls_import(stranger_corpus, exported, config=config, created_by=stranger, mode="skip_invalid")
    assert refused.counts["rejected_tasks"] == len(exported)
    assert "names no file this import may read" in Job.objects.get(pk=refused.pk).errors.first().reason
