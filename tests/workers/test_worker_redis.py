"""Jobs run by a real Celery worker process through real Redis."""

from datetime import timedelta

from django.utils import timezone

from jobs.models import Job, JobKind, JobStatus
from jobs.services import job_create, job_start
from tests.workers.conftest import wait_for
from workers.tasks import reap_stuck_jobs


def test_reaper_task_runs_on_a_real_worker(celery_worker_process):
    stuck = job_create(kind=JobKind.IMPORT)
    job_start(job_id=stuck.pk)
    Job.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    reap_stuck_jobs.delay()
    wait_for(lambda: Job.objects.get(pk=stuck.pk).status == JobStatus.FAILED, timeout=60)
    assert "received" in celery_worker_process.log()
