"""Jobs run by real Celery processes through real Redis: a worker, and Celery beat running the reaper."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.services import job_start
from tests.workers.conftest import (
    BeatProcess,
    WorkerProcess,
    redis_broker_url,
    run_key_prefix,
    wait_for_job,
    wait_until,
)

pytestmark = pytest.mark.postgres("the worker processes share the test database, which an in-memory SQLite is not")

ROWS = b"id,text\na,first\nb,second\n"
OPTIONS = {"mapping": {"text": "text", "external_id": "id"}, "language": "en"}


def test_import_runs_end_to_end_on_a_real_worker_and_grows_the_projects(celery_worker_process, lead, emotion_schema):
    """Upload → job enqueued on commit → worker imports through Redis → projects on the corpus get the new items."""
    from annotation.models import ProjectItem
    from annotation.services import project_create
    from corpora.importing.services import import_job_create
    from corpora.models import Utterance
    from corpora.services import corpus_create

    corpus = corpus_create(name="Worker corpus", license="CC-BY-4.0", created_by=lead)
    project = project_create(name="Grows", corpus=corpus, schema_version=emotion_schema, created_by=lead, overlap=2)
    assert not ProjectItem.objects.filter(project=project).exists()
    data = "id,text\nu1,मुझे बहुत खुशी है\nu2,I am so angry\nu3,\n".encode()
    with transaction.atomic():
        job = import_job_create(
            corpus=corpus, files=[ContentFile(data, name="rows.csv")], created_by=lead,
            options={"mapping": {"text": "text", "external_id": "id"}, "language": "hi", "mode": "skip_invalid"},
        )
    finished = wait_for_job(job.pk, celery_worker_process)
    assert finished.status == JobStatus.SUCCEEDED, finished.message
    assert finished.runner  # the task message that ran it
    assert sorted(Utterance.objects.filter(corpus=corpus).values_list("external_id", flat=True)) == ["u1", "u2"]
    # the empty text is reported (data rows are numbered from 1, header not counted), not imported
    assert list(finished.errors.values_list("file", "row", "column")) == [("rows.csv", 3, "text")]
    assert finished.progress_done == finished.progress_total > 0
    items = ProjectItem.objects.filter(project=project)
    wait_until(lambda: items.count() == 2, describe=lambda: f"{items.count()} project items (waiting for 2)",
               processes=[celery_worker_process])
    assert set(items.values_list("target_count", flat=True)) == {2}
    # The messages went through this run's own keys (its queue is <prefix>default), nobody else's.
    client = redis.Redis.from_url(redis_broker_url())
    assert client.exists(f"{run_key_prefix()}_kombu.binding.default")


def test_beat_runs_the_reaper_which_sends_dead_and_lost_jobs_again(celery_env, tmp_path, lead):
    """As production runs it: Celery beat sends the reaper to a worker on schedule. A RUNNING import whose worker
    died (its heartbeat stopped) and a PENDING import whose message was lost (a Redis restart) both complete."""
    from corpora.importing.services import import_job_create
    from corpora.models import Utterance
    from corpora.services import corpus_create

    env = {**celery_env, "SENTIO_JOB_REAP_EVERY_SECONDS": "1", "SENTIO_JOB_STALE_AFTER_SECONDS": "10",
           "SENTIO_JOB_PENDING_RESEND_SECONDS": "10"}
    orphan_corpus = corpus_create(name="Orphaned", license="CC0-1.0", created_by=lead)
    orphan = import_job_create(corpus=orphan_corpus, files=[ContentFile(ROWS, name="rows.csv")], created_by=lead,
                               options=OPTIONS, enqueue=False)
    job_start(job_id=orphan.pk)  # what the dead worker had done before it was killed
    Job.objects.filter(pk=orphan.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    lost_corpus = corpus_create(name="Lost message", license="CC0-1.0", created_by=lead)
    lost = import_job_create(corpus=lost_corpus, files=[ContentFile(ROWS, name="rows.csv")], created_by=lead,
                             options=OPTIONS, enqueue=False)  # never sent: as if Redis lost the message
    Job.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    worker = WorkerProcess(env, tmp_path / "worker.log")
    beat = BeatProcess(env, tmp_path / "beat.log")
    worker.start()
    beat.start()
    try:
        revived = wait_for_job(orphan.pk, worker, beat)
        found = wait_for_job(lost.pk, worker, beat)
    finally:
        beat.stop()
        worker.stop()
    assert revived.status == JobStatus.SUCCEEDED and revived.attempts == 2, revived.message
    assert found.status == JobStatus.SUCCEEDED and found.attempts == 1 and found.resends >= 1, found.message
    assert Utterance.objects.filter(corpus=orphan_corpus).count() == 2
    assert Utterance.objects.filter(corpus=lost_corpus).count() == 2
    assert "Sending due task reap-stuck-jobs" in beat.log()
    assert "reaper: sent" in worker.log()


def test_agreement_and_export_jobs_run_on_a_real_worker(celery_worker_process, lead):
    from django.core.files.storage import default_storage

    from annotation.export.services import export_job_create
    from annotation.models import AgreementReport
    from annotation.quality.selectors import QualitySource
    from annotation.quality.services import agreement_job_enqueue
    from tests.export.conftest import build_meld_like

    meld = build_meld_like(lead=lead, shows=4, conversations_per_show=3)
    with transaction.atomic():
        agreement = agreement_job_enqueue(
            source=QualitySource(schema_version_id=meld.schema_version.pk, project_id=meld.project.pk),
            created_by=lead, n_resamples=50)
        export = export_job_create(created_by=lead, project=meld.project, options={"formats": ["jsonl"]})

    measured = wait_for_job(agreement.pk, celery_worker_process)
    assert measured.status == JobStatus.SUCCEEDED, measured.message
    report = AgreementReport.objects.get(pk=measured.result["report_id"])
    assert report.annotation_count == measured.counts["annotations"] > 0
    assert "emotion" in str(report.result)

    exported = wait_for_job(export.pk, celery_worker_process)
    assert exported.status == JobStatus.SUCCEEDED, exported.message
    files = exported.result["files"]
    assert files and all(default_storage.exists(f["storage_name"]) for f in files), files
    assert sum(f.get("rows") or 0 for f in files if f["format"] == "jsonl") > 0
