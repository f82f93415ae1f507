import threading
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


def _message(runner: str):  # type: ignore[no-untyped-def]
    """What a Celery task does around a job: run it as the message ``runner``."""
    from jobs.services import job_running

    return job_running(job_id=0, runner=runner)  # job 0: its heartbeat thread touches no row


def test_only_one_message_runs_a_job_and_its_own_redelivery_may_take_it_over(settings, monkeypatch):
    import jobs.services as services

    sent: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr(services, "task_send_on_commit", lambda task, *ids: sent.append((task, ids)))
    job = job_create(kind=JobKind.IMPORT)
    with _message("message-a"):
        first = job_start(job_id=job.pk)
    assert first is not None and first.runner == "message-a" and first.attempts == 1

    with _message("message-b"):  # a duplicate (the reaper sent the job again, the original arrived after all)
        assert job_start(job_id=job.pk) is None
    with _message("message-a"):  # a retry or redelivery of the message that runs it (its worker process died)
        again = job_start(job_id=job.pk)
    assert again is not None and again.attempts == 2

    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS + 1))
    with _message("message-b"):  # its worker went silent: another message may take it
        taken = job_start(job_id=job.pk)
    assert taken is not None and taken.runner == "message-b" and taken.attempts == 3


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_from_a_thread_until_its_task_ends(settings):
    from jobs.services import job_running

    settings.JOB_STALE_AFTER_SECONDS = 0.4  # a beat every 0.1 s
    job = job_create(kind=JobKind.EXPORT)
    with job_running(job_id=job.pk, runner="message-a"):
        job_start(job_id=job.pk)
        started = Job.objects.get(pk=job.pk).heartbeat_at
        deadline = timezone.now() + timedelta(seconds=60)
        while Job.objects.get(pk=job.pk).heartbeat_at == started and timezone.now() < deadline:
            threading.Event().wait(0.05)
        assert Job.objects.get(pk=job.pk).heartbeat_at > started  # written by the thread, committed at once
    last = Job.objects.get(pk=job.pk).heartbeat_at
    threading.Event().wait(0.5)
    assert Job.objects.get(pk=job.pk).heartbeat_at == last  # the task ended: no more beats


def test_reaper_sends_waiting_jobs_again_with_growing_gaps(monkeypatch):
    import jobs.services as services

    sent: list[int] = []
    monkeypatch.setattr(services, "task_send_on_commit", lambda task, *ids: sent.extend(ids))
    wait = timedelta(minutes=1)
    lost = job_create(kind=JobKind.EXPORT)
    Job.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    fresh = job_create(kind=JobKind.EXPORT)

    first = jobs_reap_stuck(pending_after=wait)
    assert first.resent == [lost.pk] and sent == [lost.pk] and first.requeued == []
    assert jobs_reap_stuck(pending_after=wait).resent == []  # just sent: not again at once
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=90))
    assert jobs_reap_stuck(pending_after=wait).resent == []  # the second gap is twice the first
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=150))
    assert jobs_reap_stuck(pending_after=wait).resent == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == JobStatus.PENDING and lost.resends == 2
    assert Job.objects.get(pk=fresh.pk).resends == 0
