"""Exports of a corpus with speech: the Hugging Face DatasetDict carries the clips in a datasets ``Audio`` column
(bytes embedded, so it plays without Sentio), and the Label Studio tasks link each clip at a URL that serves it to a
signed-in member, with model and LLM answers as predictions."""

from __future__ import annotations

import hashlib
import io
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import numpy as np
import pytest
import soundfile
from django.core.files.base import ContentFile
from django.test import Client

from annotation.export.services import export_job_create, export_run
from annotation.models import Annotation, Origin
from annotation.services import label_schema_create, project_create
from corpora.models import Conversation, Corpus, Language, Speaker, Utterance
from jobs.models import Job, JobStatus
from tests.export.test_export import stored_path

pytestmark = pytest.mark.django_db(transaction=False)

SAMPLE_RATE = 16_000
EMOTIONS = ["joy", "anger", "neutral"]


def tone(frequency: float, seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return out.getvalue()


@pytest.fixture
def spoken(lead: Any, export_media: Any) -> dict[str, Any]:
    """Twelve conversations of four turns: three spoken (a clip each, a distinct tone), the last text only. Six
    conversations are labelled by people, six by an LLM only (train material)."""
    english = Language.objects.get_or_create(code="en", defaults={"name": "English", "script": "Latn"})[0]
    corpus = Corpus.objects.create(name="Spoken", slug="spoken", license="CC-BY-4.0", created_by=lead)
    version = label_schema_create(name="Spoken emotions", slug="spoken-emotions",
                                  questions=[{"key": "emotion", "type": "single_choice", "labels": EMOTIONS}])
    project = project_create(name="Spoken gold", corpus=corpus, schema_version=version, created_by=lead)
    clips: dict[int, np.ndarray] = {}
    text_only: set[int] = set()
    for c in range(12):
        conversation = Conversation.objects.create(corpus=corpus, external_id=f"c{c}")
        speaker = Speaker.objects.create(corpus=corpus, external_id=f"s{c}")
        for turn in range(4):
            text = f"conversation {c} turn {turn}"
            utterance = Utterance.objects.create(
                corpus=corpus, external_id=f"c{c}-{turn}", conversation=conversation, speaker=speaker, turn_index=turn,
                language=english, text=text, content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
            )
            if turn < 3:
                samples = tone(200.0 + 40 * c + 10 * turn)
                utterance.audio.save(f"c{c}-{turn}.wav", ContentFile(wav_bytes(samples)), save=False)
                utterance.audio_duration_s = len(samples) / SAMPLE_RATE
                utterance.save(update_fields=["audio", "audio_duration_s"])
                clips[utterance.pk] = samples
            else:
                text_only.add(utterance.pk)
            value = {"emotion": EMOTIONS[(c + turn) % 3]}
            if c % 2:
                Annotation.objects.create(utterance=utterance, project=project, schema_version=version, value=value,
                                          origin=Origin.LLM, model_version="gemma-cot")
            else:
                Annotation.objects.create(utterance=utterance, project=project, schema_version=version, value=value,
                                          origin=Origin.HUMAN, external_rater="r1")
    return {"project": project, "clips": clips, "text_only": text_only}


def run_export(project: Any, lead: Any, capture: Any, **options: Any) -> Job:
    with mock.patch("jobs.dispatch.task_send"), capture(execute=True):
        job = export_job_create(created_by=lead, project=project, options=options)
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def test_hugging_face_export_has_an_audio_column_that_decodes(spoken, lead, django_capture_on_commit_callbacks):
    from datasets import Audio, Value, load_from_disk

    job = run_export(spoken["project"], lead, django_capture_on_commit_callbacks, formats=["hf"], seed=1,
                     heldout_min_annotations=1, grouping="conversation")
    dataset = load_from_disk(str(stored_path(job, "hf/dataset_dict.json").parent))
    assert set(dataset) == {"train", "dev", "test"}
    seen_clips = seen_text_only = 0
    for split in dataset.values():
        assert isinstance(split.features["audio"], Audio) and split.features["text"] == Value("string")
        # Decoding through datasets needs torchcodec (absent here); the embedded bytes are what it decodes.
        raw = split.cast_column("audio", Audio(decode=False))
        for row in raw:
            uid = row["utterance_id"]
            if uid in spoken["text_only"]:
                assert row["audio"] is None
                seen_text_only += 1
                continue
            samples, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
            assert rate == SAMPLE_RATE and row["audio"]["path"].endswith(".wav")
            np.testing.assert_allclose(samples, spoken["clips"][uid], atol=1 / 2**14)
            seen_clips += 1
    assert seen_clips == len(spoken["clips"]) and seen_text_only == len(spoken["text_only"])


def test_a_text_only_export_keeps_a_plain_audio_column_and_empty_splits_load(
        db, lead, export_media, django_capture_on_commit_callbacks):
    from datasets import Value, load_from_disk

    from tests.export.conftest import build_meld_like

    meld = build_meld_like(lead=lead, shows=4)
    job = run_export(meld.project, lead, django_capture_on_commit_callbacks, formats=["hf"],
                     splits={"train": 1, "dev": 0.001, "test": 0.001})
    assert job.result["splits"]["dev"]["utterances"] == 0  # so the empty split is really exercised
    dataset = load_from_disk(str(stored_path(job, "hf/dataset_dict.json").parent))
    assert dataset["train"].features["audio"] == Value("string")
    assert dataset["dev"].num_rows == 0 and dataset["dev"].column_names == dataset["train"].column_names


def test_label_studio_tasks_link_audio_that_resolves_and_carry_predictions(
        spoken, lead, settings, django_capture_on_commit_callbacks):
    import json

    settings.PUBLIC_URL = "https://sentio.example.org"
    job = run_export(spoken["project"], lead, django_capture_on_commit_callbacks, formats=["label_studio"], seed=1,
                     heldout_min_annotations=1, grouping="conversation")
    tasks = [t for s in ("train", "dev", "test")
             for t in json.loads(stored_path(job, f"label_studio/{s}.json").read_text())]
    assert len(tasks) == len(spoken["clips"]) + len(spoken["text_only"])
    member = Client()
    member.force_login(lead)
    for task in tasks:
        uid = task["data"]["utterance_id"]
        if uid in spoken["text_only"]:
            assert task["data"]["audio"] == ""
            continue
        link = urlsplit(task["data"]["audio"])
        assert (link.scheme, link.netloc) == ("https", "sentio.example.org")
        served = member.get(link.path)
        body = b"".join(served.streaming_content)
        samples, _ = soundfile.read(io.BytesIO(body), dtype="float32")
        np.testing.assert_allclose(samples, spoken["clips"][uid], atol=1 / 2**14)
        assert Client().get(link.path).status_code in (302, 403)  # not for anonymous visitors
    predicted = [t for t in tasks if t["predictions"]]
    assert predicted and all(p["model_version"] == "gemma-cot" and p["result"][0]["value"]["choices"]
                             for t in predicted for p in t["predictions"])
    assert {t["data"]["split"] for t in predicted} == {"train"}  # LLM labels stay out of dev and test
