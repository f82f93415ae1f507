"""Language-aware ASR: Whisper gets each utterance's language tag, an English-only Whisper is refused for a corpus
with no English (and warned about for a mixed one, and never listed first), and a transcript says it is ASR."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from annotation.models import ProjectModel
from annotation.predictions.services import project_model_register, transcription_job_create, transcription_run
from annotation.services import project_create
from corpora.models import Corpus, TranscriptSource, Utterance
from jobs.models import JobStatus
from tests.predictions.conftest import audio_store, utterance_make

GERMAN = "Guten Morgen, das Wetter ist heute sehr schön"


def _client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def german_project(emotion_schema, lead):  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Deutsch", slug="deutsch", license="CC-BY-4.0")
    return project_create(name="Deutsch", corpus=corpus, schema_version=emotion_schema, created_by=lead)


def test_english_only_whisper_is_refused_for_a_german_corpus_and_listed_after_whisper_base(german_project, lead) -> None:
    utterance_make(german_project.corpus, "de", text="Ich freue mich")
    client = _client(lead)
    refused = client.post(f"/api/projects/{german_project.pk}/models/", {"card_id": "whisper-tiny.en"}, format="json")
    assert refused.status_code == 400
    assert "knows only en" in refused.json()["card_id"][0] and "de" in refused.json()["card_id"][0]
    assert not ProjectModel.objects.exists()
    catalogue = client.get(f"/api/projects/{german_project.pk}/models/").json()["catalogue"]
    asr = [entry["id"] for entry in catalogue if entry["task"] == "asr" and entry["available"]]
    assert asr == ["whisper-base", "whisper-tiny.en"]
    tiny = next(entry for entry in catalogue if entry["id"] == "whisper-tiny.en")
    assert tiny["language_fit"] == "none" and "multilingual" in tiny["language_warning"]


def test_english_only_whisper_is_registered_with_a_warning_on_a_mixed_corpus(world) -> None:
    response = _client(world.lead).post(f"/api/projects/{world.project.pk}/models/", {"card_id": "whisper-tiny.en"},
                                        format="json")
    assert response.status_code == 201
    [warning] = response.json()["warnings"]
    assert "knows only en" in warning and "hi" in warning and "mr" in warning
    base = _client(world.lead).post(f"/api/projects/{world.project.pk}/models/", {"card_id": "whisper-base"},
                                    format="json")
    assert base.status_code == 201 and base.json()["warnings"] == []


@pytest.mark.slow
def test_german_speech_is_transcribed_as_german_with_its_tag(german_project, lead, speak) -> None:
    corpus = german_project.corpus
    german = utterance_make(corpus, "de", audio=audio_store(speak(GERMAN, "de"), "de.wav"))
    english = utterance_make(corpus, "en", audio=audio_store(speak("Good morning, the weather is lovely", "en"),
                                                             "en.wav"))
    asr = project_model_register(project=german_project, card_id="whisper-base", user=lead)
    job = transcription_job_create(project=german_project, user=lead, asr_model_id=asr.pk)
    transcription_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["transcribed"] == 2
    clip = Utterance.objects.get(pk=german.pk)
    provenance = clip.metadata["asr"]
    assert clip.transcript_source == TranscriptSource.ASR and clip.transcript_model == asr.model_version
    assert provenance["language"] == "de" and provenance["language_source"] == "tag"
    assert provenance["model"] == "whisper-base" and 0 < clip.transcript_confidence <= 1
    words = set(re.findall(r"\w+", clip.text.lower()))
    assert {"guten", "morgen"} <= words, clip.text
    assert len(provenance["words"]) >= 4 and all(0 <= w[3] <= 1 for w in provenance["words"])
    assert Utterance.objects.get(pk=english.pk).metadata["asr"]["language"] == "en"

    # The item's history (the review screen's item) names the transcript's model and confidence.
    response = _client(lead).get(f"/api/projects/{german_project.pk}/review-queue/{german.pk}/")
    assert response.status_code == 200, response.content
    transcript = response.json()["utterance"]["transcript"]
    assert transcript["source"] == "asr" and transcript["model"] == "whisper-base"
    assert transcript["model_version"] == asr.model_version and transcript["language"] == "de"
    assert transcript["confidence"] == pytest.approx(clip.transcript_confidence)
    assert transcript["words"][0]["probability"] == provenance["words"][0][3]
