"""Label Studio exports made in the test: tasks shaped like Label Studio 1.x's JSON export, three annotators per
task who mostly agree, a skipped annotation now and then, model predictions, and a config that uses every control
Sentio maps plus some it does not."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import numpy as np
import pytest
import soundfile
from django.core.files.base import ContentFile

from corpora.services import corpus_create
from tests.predictions.conftest import world  # noqa: F401  (a trilingual project with human labels)

EMOTIONS = ["joy", "sadness", "anger", "neutral"]
LS_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Header value="Which emotion?"/>
  <Choices name="emotion" toName="text" choice="single" required="true">
    <Choice value="joy"/><Choice value="sadness"/><Choice value="anger"/><Choice value="neutral"/>
  </Choices>
  <Choices name="Emotions-Present" toName="text" choice="multiple">
    <Choice value="joy"/><Choice value="sadness"/><Choice value="anger"/>
  </Choices>
  <Rating name="intensity" toName="text" maxRating="5"/>
  <Number name="valence" toName="text" min="1" max="5" step="0.5"/>
  <TextArea name="why" toName="text"/>
  <Taxonomy name="topic" toName="text">
    <Choice value="Family"><Choice value="Parents"/><Choice value="Children"/></Choice>
    <Choice value="Work"/>
  </Taxonomy>
  <Labels name="who" toName="text"><Label value="PERSON"/></Labels>
</View>"""
AUDIO_CONFIG = """<View>
  <Audio name="audio" value="$audio"/>
  <Text name="transcript" value="$transcript"/>
  <Choices name="emotion" toName="audio"><Choice value="joy"/><Choice value="anger"/></Choices>
  <Labels name="segments" toName="audio"><Label value="joy"/><Label value="anger"/></Labels>
</View>"""


def region(name: str, kind: str, value: dict[str, Any], to_name: str = "text") -> dict[str, Any]:
    return {"id": f"r-{name}-{random.randrange(10**9)}", "from_name": name, "to_name": to_name, "type": kind,
            "value": value, "origin": "manual"}


def result_for(emotion: str, *, valence: float, stars: int, why: str, topic: list[list[str]]) -> list[dict[str, Any]]:
    present = [] if emotion == "neutral" else [emotion]
    out = [region("emotion", "choices", {"choices": [emotion]}),
           region("intensity", "rating", {"rating": stars}),
           region("valence", "number", {"number": valence}),
           region("topic", "taxonomy", {"taxonomy": topic}),
           region("who", "labels", {"start": 0, "end": 4, "text": "Anna", "labels": ["PERSON"]})]
    if present:
        out.append(region("Emotions-Present", "choices", {"choices": present}))
    if why:
        out.append(region("why", "textarea", {"text": [why]}))
    return out


def build_export(n_tasks: int, *, seed: int = 1, annotators: tuple[int, ...] = (11, 12, 13), agree: float = 0.85,
                 skip_every: int = 7, first_id: int = 1000) -> list[dict[str, Any]]:
    """A Label Studio JSON export: each task annotated by every annotator (one skips now and then)."""
    rng = random.Random(seed)
    tasks = []
    annotation_id = 5000
    for i in range(n_tasks):
        truth = rng.choice(EMOTIONS)
        task_id = first_id + i
        annotations = []
        for k, user in enumerate(annotators):
            annotation_id += 1
            skipped = skip_every and (i * len(annotators) + k) % skip_every == skip_every - 1
            emotion = truth if rng.random() < agree else rng.choice(EMOTIONS)
            annotations.append({
                "id": annotation_id, "completed_by": user, "was_cancelled": bool(skipped), "ground_truth": False,
                "result": [] if skipped else result_for(
                    emotion, valence=4.0 if emotion == "joy" else 2.0, stars=rng.randint(1, 5),
                    why="it says so" if k == 0 else "", topic=[["Family", "Parents"]] if i % 2 else [["Work"]]),
                "created_at": f"2024-03-{1 + i % 28:02d}T10:{k:02d}:00.000000Z",
                "updated_at": f"2024-03-{1 + i % 28:02d}T11:{k:02d}:00.000000Z",
                "lead_time": round(3.5 + k + i % 5, 3), "prediction": {}, "result_count": 0, "unique_id": f"u{annotation_id}",
                "import_id": None, "last_action": None, "task": task_id, "project": 7, "updated_by": user,
                "parent_prediction": None, "parent_annotation": None, "last_created_by": None,
            })
        tasks.append({
            "id": task_id, "data": {"text": f"Task {i}: I feel {truth} about Anna today", "source": "forum"},
            "annotations": annotations, "file_upload": "tasks.json", "drafts": [],
            "predictions": [{"id": 900 + i, "model_version": "bert-emotion-v2", "score": 0.75, "created_ago": "1 day",
                             "result": [region("emotion", "choices", {"choices": [truth]})], "task": task_id,
                             "project": 7}],
            "data_hash": None, "meta": {}, "created_at": "2024-02-28T09:00:00Z", "updated_at": "2024-03-02T09:00:00Z",
            "inner_id": i + 1, "total_annotations": len(annotations), "cancelled_annotations": 0,
            "total_predictions": 1, "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None,
            "project": 7, "updated_by": None, "comment_authors": [],
        })
    return tasks


def wav_bytes(seconds: float = 0.4, rate: int = 16000, pitch: float = 220.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.2 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}


@pytest.fixture
def corpus(db, lead):  # type: ignore[no-untyped-def]
    return corpus_create(name="Forum posts", slug="forum", license="CC-BY-4.0", created_by=lead)


@pytest.fixture
def run_ls_import():  # type: ignore[no-untyped-def]
    """Create a Label Studio import job from tasks in memory and run it in-process, as the command does."""
    from annotation.label_studio.services import label_studio_import_job_create, label_studio_import_run
    from jobs.models import Job

    def run(corpus, tasks: Any, config: str = LS_CONFIG, *, created_by=None, headers=None, **options) -> Job:  # type: ignore[no-untyped-def]
        body = tasks if isinstance(tasks, bytes) else json.dumps(tasks).encode()
        options.setdefault("language", "en")
        job = label_studio_import_job_create(corpus=corpus, export_file=ContentFile(body, name="export.json"),
                                             label_config=config, options=options, created_by=created_by,
                                             enqueue=False)
        label_studio_import_run(job_id=job.pk, audio_headers=headers)
        job.refresh_from_db()
        return job

    return run
