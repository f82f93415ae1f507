"""Job life cycle: create, start, heartbeat, report progress and errors, finish, reap stuck jobs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.db import connections_drop_broken
from jobs.dispatch import JOB_KIND_TASKS, task_send_on_commit
from jobs.models import FINISHED_STATUSES, Job, JobError, JobStatus

logger = logging.getLogger(__name__)

MAX_STORED_ERRORS_PER_JOB = 10_000


@dataclass(frozen=True)
class RowError:
    """A rejected row or file: where it is and why, for a person to act on."""

    reason: str
    file: str = ""
    row: int | None = None
    column: str = ""

    def __str__(self) -> str:
        where = ", ".join(p for p in (
            f"file {self.file}" if self.file else "",
            f"row {self.row}" if self.row is not None else "",
            f"column {self.column!r}" if self.column else "",
        ) if p)
        return f"{where}: {self.reason}" if where else self.reason


def job_create(*, kind: str, created_by: Any = None, params: dict[str, Any] | None = None, **links: Any) -> Job:
    return Job.objects.create(kind=kind, created_by=created_by, params=params or {}, **links)


# The task message running a job in this thread (set by ``job_running``); None outside a task (command line, tests).
_runner: ContextVar[str | None] = ContextVar("job_runner", default=None)


def job_start(*, job_id: int) -> Job | None:
    """Mark a job RUNNING; None if it must not run here.

    Not for a finished job (a redelivered message must not rerun it), nor, in a Celery task, for one that a live
    worker is running under another message (the reaper sends a waiting job again when its message may be lost;
    the original may still arrive). The message that started a job may take it over again: a retry, or a
    redelivery after its worker process died. Outside a task (the command line) there is no message to compare.
    """
    runner = _runner.get()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED_STATUSES:
            return None
        now = timezone.now()
        if (job.status == JobStatus.RUNNING and job.heartbeat_at is not None and job.heartbeat_at > now - _stale_after()
                and runner is not None and job.runner != runner):
            logger.info("job %s is running under message %s; message %s leaves it alone", job.pk, job.runner, runner)
            return None
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.attempts += 1
        job.runner = runner or ""
        # A retried attempt starts over: its earlier errors described rows it will read again.
        JobError.objects.filter(job=job).delete()
        job.error_count = 0
        job.progress_done = 0
        job.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "runner", "error_count",
                                "progress_done"])
    return job


@contextmanager
def job_running(*, job_id: int, runner: str) -> Iterator[None]:
    """Around a Celery task that runs a job: names the message (``runner``, the task id, which retries and
    redeliveries keep) for ``job_start``, and keeps the job's heartbeat fresh from a thread while the task runs,
    also through long steps that report no progress. If the worker dies the heartbeat stops, and the reaper
    sees it within ``JOB_STALE_AFTER_SECONDS``."""
    token = _runner.set(runner)
    beat = _Heartbeat(job_id=job_id, runner=runner, every=_stale_after().total_seconds() / 4)
    beat.start()
    try:
        yield
    finally:
        beat.stop()
        _runner.reset(token)


class _Heartbeat(threading.Thread):
    def __init__(self, *, job_id: int, runner: str, every: float):
        super().__init__(name=f"job-heartbeat-{job_id}", daemon=True)
        self.job_id, self.runner, self.every = job_id, runner, every
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.every):
                try:
                    Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, runner=self.runner).update(
                        heartbeat_at=timezone.now())
                except DatabaseError:  # e.g. SQLite busy with the job's own write; the next beat tries again
                    logger.warning("could not record the heartbeat of job %s", self.job_id, exc_info=True)
                    connections_drop_broken()  # a dropped connection is replaced at the next beat
        finally:
            connections.close_all()  # this thread's connections only

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=60)


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)


def job_progress(*, job: Job, done: int, total: int | None = None, counts: dict[str, int] | None = None) -> None:
    """Record progress from outside the job's own transaction so readers see it while it runs."""
    job.progress_done = done if total is None else min(done, total)
    fields = ["progress_done", "heartbeat_at"]
    if total is not None:
        job.progress_total = total
        fields.append("progress_total")
    if counts is not None:
        job.counts = counts
        fields.append("counts")
    job.heartbeat_at = timezone.now()
    Job.objects.filter(pk=job.pk).update(**{f: getattr(job, f) for f in fields})


def job_record_errors(*, job: Job, errors: Iterable[RowError], total: int | None = None) -> int:
    """Store errors (up to a cap per job, the count is always exact); return how many were counted.

    ``total``: how many errors these stand for, when the caller kept only the first of them.
    """
    batch = list(errors)
    counted = len(batch) if total is None else max(total, len(batch))
    if not counted:
        return 0
    room = max(0, MAX_STORED_ERRORS_PER_JOB - job.error_count)
    JobError.objects.bulk_create(
        [JobError(job=job, file=e.file[:500], row=e.row, column=e.column[:200], reason=e.reason) for e in batch[:room]]
    )
    job.error_count += counted
    Job.objects.filter(pk=job.pk).update(error_count=F("error_count") + counted)
    return counted


def job_succeed(*, job: Job, result: dict[str, Any] | None = None, counts: dict[str, int] | None = None, message: str = "") -> None:
    _finish(job, JobStatus.SUCCEEDED, message=message, result=result, counts=counts)


def job_fail(*, job: Job, message: str, counts: dict[str, int] | None = None) -> None:
    _finish(job, JobStatus.FAILED, message=message, counts=counts)


def _finish(job: Job, status: str, *, message: str, result: dict[str, Any] | None = None,
            counts: dict[str, int] | None = None) -> None:
    now = timezone.now()
    updates: dict[str, Any] = {"status": status, "finished_at": now, "heartbeat_at": now, "message": message}
    if result is not None:
        updates["result"] = result
    if counts is not None:
        updates["counts"] = counts
    if job.progress_total is not None and status == JobStatus.SUCCEEDED:
        updates["progress_done"] = job.progress_total
    Job.objects.filter(pk=job.pk).update(**updates)
    for key, value in updates.items():
        setattr(job, key, value)


@dataclass(frozen=True)
class ReapResult:
    requeued: list[int]  # silent RUNNING jobs sent to their task again
    failed: int  # silent RUNNING jobs out of attempts, marked failed
    kinds: dict[int, str]  # the kind of each job sent again, which names its task
    resent: list[int] = field(default_factory=list)  # PENDING jobs sent again: their message may be lost


def jobs_reap_stuck(*, stale_after: timedelta | None = None, max_attempts: int | None = None,
                    pending_after: timedelta | None = None) -> ReapResult:
    """Deal with jobs no worker is doing anything about; Celery beat runs this every ``JOB_REAP_EVERY_SECONDS``.

    RUNNING jobs whose heartbeat stopped (SIGKILL, OOM killer, lost machine) go back to PENDING and to their task
    (sent after commit), until they used ``max_attempts``; then they are marked failed. Every job kind is resumable
    or restarts cleanly (imports and exports write in one transaction; model jobs skip what they already stored).
    Without this, a killed worker's job would wait for the broker's visibility timeout (hours, to outlast the
    longest task).

    PENDING jobs that waited longer than ``pending_after`` are sent again, then after twice as long, and so on up
    to an hour: their message may be gone (a broker restarted without persistence). If it was not, the job runs
    once all the same: ``job_start`` lets only one message run it.
    """
    age = stale_after or _stale_after()
    attempts = max_attempts or settings.JOB_MAX_ATTEMPTS
    wait = pending_after or timedelta(seconds=settings.JOB_PENDING_RESEND_SECONDS)
    now = timezone.now()
    requeued: list[int] = []
    resent: list[int] = []
    kinds: dict[int, str] = {}
    failed = 0
    with transaction.atomic():
        for job in Job.objects.select_for_update(skip_locked=True).filter(status=JobStatus.RUNNING,
                                                                          heartbeat_at__lt=now - age):
            silent = int(age.total_seconds())
            task = JOB_KIND_TASKS.get(job.kind)
            if task is not None and job.attempts < attempts:
                job.status = JobStatus.PENDING
                job.message = (f"The worker stopped reporting progress for over {silent} s; "
                               f"the job was sent again (attempt {job.attempts + 1} of {attempts}).")
                job.heartbeat_at = now
                job.resends = 0
                job.save(update_fields=["status", "message", "heartbeat_at", "resends"])
                requeued.append(job.pk)
                kinds[job.pk] = job.kind
                task_send_on_commit(task, job.pk)
            else:
                job.status = JobStatus.FAILED
                job.finished_at = now
                job.message = (f"The worker stopped reporting progress for over {silent} s on each of "
                               f"{job.attempts} attempt(s); the job was marked failed.")
                job.save(update_fields=["status", "finished_at", "message"])
                failed += 1
        # A waiting job's clock: when it was last sent (heartbeat_at), else when it was created.
        waiting = Job.objects.select_for_update(skip_locked=True).filter(status=JobStatus.PENDING).filter(
            Q(heartbeat_at__lt=now - wait) | Q(heartbeat_at__isnull=True, created_at__lt=now - wait))
        for job in waiting:
            task = JOB_KIND_TASKS.get(job.kind)
            sent_at = job.heartbeat_at or job.created_at
            if task is None or now - sent_at < min(wait * 2 ** job.resends, timedelta(hours=1)):
                continue
            job.heartbeat_at = now
            job.resends += 1
            job.save(update_fields=["heartbeat_at", "resends"])
            resent.append(job.pk)
            kinds[job.pk] = job.kind
            task_send_on_commit(task, job.pk)
    if requeued or resent or failed:
        logger.warning("reaper: sent %s silent job(s) again %s, failed %s, sent %s waiting job(s) again %s",
                       len(requeued), requeued, failed, len(resent), resent)
    return ReapResult(requeued=requeued, failed=failed, kinds=kinds, resent=resent)
