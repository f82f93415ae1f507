from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobKind, JobStatus
from jobs.services import RowError, job_create, job_record_errors, job_start, job_succeed, jobs_reap_stuck

pytestmark = pytest.mark.django_db


def test_job_life_cycle_and_errors():
    job = job_create(kind=JobKind.IMPORT, params={"x": 1})
    started = job_start(job_id=job.pk)
    assert started is not None and started.status == JobStatus.RUNNING and started.attempts == 1
    job_record_errors(job=started, errors=[RowError("bad label", file="a.csv", row=3, column="Emotion")])
    job_succeed(job=started, counts={"created": 2})
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.error_count == 1 and job.counts == {"created": 2}
    assert str(job.errors.get()) == "a.csv:3:Emotion: bad label"
    assert job_start(job_id=job.pk) is None  # a redelivered message does not rerun a finished job


def test_reaper_requeues_silent_jobs_then_fails_them_when_out_of_attempts():
    stuck = job_create(kind=JobKind.IMPORT)
    job_start(job_id=stuck.pk)
    Job.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    alive = job_create(kind=JobKind.IMPORT)
    job_start(job_id=alive.pk)

    first = jobs_reap_stuck(stale_after=timedelta(minutes=15), max_attempts=2)

    stuck.refresh_from_db()
    assert first.requeued == [stuck.pk] and first.failed == 0
    assert stuck.status == JobStatus.PENDING and "sent again (attempt 2 of 2)" in stuck.message
    assert Job.objects.get(pk=alive.pk).status == JobStatus.RUNNING

    job_start(job_id=stuck.pk)  # the second attempt goes silent too
    Job.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    second = jobs_reap_stuck(stale_after=timedelta(minutes=15), max_attempts=2)

    stuck.refresh_from_db()
    assert second.requeued == [] and second.failed == 1
    assert stuck.status == JobStatus.FAILED and "on each of 2 attempt(s)" in stuck.message
    assert stuck.finished_at is not None
    assert Job.objects.get(pk=alive.pk).status == JobStatus.RUNNING
