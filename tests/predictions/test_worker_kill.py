"""A real Celery worker on the GPU queue, killed with SIGKILL in the middle of a pre-annotation job.

Needs the tables of annotation.ProjectModel in the worker's database: with ``--nomigrations`` pytest creates them;
with migrations, the migration that adds ProjectModel must exist (see the report of issue 5).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from kombu import Connection

from annotation.models import Prediction, ProjectModel
from annotation.predictions.services import TrainHeadSpec, project_head_train
from jobs.models import Job, JobKind, JobStatus
from jobs.services import job_create
from tests.predictions.conftest import utterance_make
from tests.workers.conftest import WorkerProcess, redis_broker_url, wait_for_job, wait_until
from workers.tasks import run_preannotation_job

SUBJECTS = ["the team", "my neighbour", "our teacher", "the driver", "her brother", "the manager", "a stranger",
            "the children", "my friend", "the doctor"]
EVENTS = ["won the match", "lost the keys", "missed the train", "sent a gift", "broke the window",
          "told a joke", "cancelled the trip", "fixed the roof", "shouted at us", "sang a song"]
ENDINGS = ["and I loved it", "and I am furious", "which made me cry", "so we laughed", "again today",
           "without asking", "at midnight"]


def restore_unacked_messages() -> int:
    """What Redis does once the visibility timeout of an unacknowledged message expires: put it back on its queue
    (the timeout is an hour by default; the test does not wait for it)."""
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 0}  # with this run's key prefix
    with Connection(redis_broker_url(), transport_options=options) as connection:
        channel = connection.default_channel
        before = len(channel.client.zrange(channel.unacked_index_key, 0, -1))  # ZRANGE gets the key prefix, ZCARD not
        channel.qos.restore_visible(num=1000)
        return int(before)


@pytest.mark.postgres("the worker process shares the test database, which an in-memory SQLite is not")
def test_sigkill_mid_job_then_restart_completes_with_one_prediction_per_utterance(
        celery_env, tmp_path, world) -> None:  # type: ignore[no-untyped-def]
    worker = WorkerProcess(celery_env, tmp_path / "gpu-worker.log", queues="gpu")
    model = project_head_train(project=world.project, spec=TrainHeadSpec("emotion"), user=world.lead)
    texts = [f"{s} {e} {t}" for s in SUBJECTS for e in EVENTS for t in ENDINGS][:600]
    for text in texts:
        utterance_make(world.corpus, "en", text=text)
    total = len(texts) + len(world.unlabelled)  # the head's own training items are never predicted
    job = job_create(kind=JobKind.PREANNOTATE, created_by=world.lead, project=world.project, corpus=world.corpus,
                     params={"project_model_id": model.pk, "weak_labels": False, "chunk_size": 32})
    predictions = Prediction.objects.filter(model_version=model.model_version)
    try:
        worker.start()
        run_preannotation_job.delay(job.pk)
        wait_until(lambda: predictions.count() >= 96, describe=lambda: f"{predictions.count()} predictions (want 96)",
                   processes=[worker], interval=0.05)
        worker.kill()
        done_before_restart = predictions.count()
        assert 0 < done_before_restart < total, "the worker was meant to die in the middle of the job"
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING

        assert restore_unacked_messages() == 1  # acks_late: the message the dead worker held is still there
        worker.start()
        wait_for_job(job.pk, worker)
    finally:
        worker.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message + worker.log()[-3000:]
    assert job.attempts == 2
    assert job.counts["predicted_already_done"] >= done_before_restart
    assert job.progress_done == job.progress_total == total
    assert predictions.count() == total
    assert predictions.values("utterance_id").distinct().count() == total
    assert ProjectModel.objects.filter(pk=model.pk).exists()
