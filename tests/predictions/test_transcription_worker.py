"""A transcription job on a real Celery worker consuming the GPU queue through real Redis."""

from __future__ import annotations

import pytest
from django.db import transaction

from annotation.predictions.services import project_model_register, transcription_job_create
from corpora.models import TranscriptSource, Utterance
from jobs.models import JobStatus
from tests.predictions.conftest import audio_store, utterance_make
from tests.workers.conftest import WorkerProcess, wait_for_job

pytestmark = pytest.mark.postgres("the worker process shares the test database, which an in-memory SQLite is not")


def test_transcription_job_runs_on_a_gpu_queue_worker(celery_env, tmp_path, world, speak) -> None:  # type: ignore[no-untyped-def]
    clip = utterance_make(world.corpus, "en", audio=audio_store(speak("Hello, how are you today?", "en"), "hello.wav"))
    asr = project_model_register(project=world.project, card_id="whisper-tiny.en", user=world.lead)
    with transaction.atomic():  # sent to the gpu queue when this commits
        job = transcription_job_create(project=world.project, user=world.lead, asr_model_id=asr.pk,
                                       utterance_ids=[clip.pk], weak_labels=False)
    worker = WorkerProcess(celery_env, tmp_path / "gpu-worker.log", queues="gpu")
    worker.start()
    try:
        finished = wait_for_job(job.pk, worker)
    finally:
        worker.stop()
    assert finished.status == JobStatus.SUCCEEDED, finished.message
    assert finished.counts["transcribed"] == 1
    transcribed = Utterance.objects.get(pk=clip.pk)
    assert transcribed.transcript_source == TranscriptSource.ASR and transcribed.transcript_model == asr.model_version
    assert "how are you" in transcribed.text.lower()
