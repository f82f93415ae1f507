"""Job life cycle: create, start, report progress and errors, finish, reap stuck jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.dispatch import JOB_KIND_TASKS, task_send_on_commit
from jobs.models import FINISHED_STATUSES, Job, JobError, JobStatus

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


def job_start(*, job_id: int) -> Job | None:
    """Mark a job RUNNING; None if it already finished (a redelivered message must not rerun it)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED_STATUSES:
            return None
        now = timezone.now()
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.attempts += 1
        # A retried attempt starts over: its earlier errors described rows it will read again.
        JobError.objects.filter(job=job).delete()
        job.error_count = 0
        job.progress_done = 0
        job.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "error_count", "progress_done"])
    return job


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


def job_record_errors(*, job: Job, errors: Iterable[RowError]) -> int:
    """Store errors (up to a cap per job, the count is always exact); return how many were given."""
    batch = list(errors)
    if not batch:
        return 0
    room = max(0, MAX_STORED_ERRORS_PER_JOB - job.error_count)
    JobError.objects.bulk_create(
        [JobError(job=job, file=e.file[:500], row=e.row, column=e.column[:200], reason=e.reason) for e in batch[:room]]
    )
    job.error_count += len(batch)
    Job.objects.filter(pk=job.pk).update(error_count=F("error_count") + len(batch))
    return len(batch)


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
    requeued: list[int]  # job ids to send to their task again
    failed: int
    kinds: dict[int, str]  # the kind of each requeued job, which names its task


def jobs_reap_stuck(*, stale_after: timedelta | None = None, max_attempts: int | None = None) -> ReapResult:
    """Deal with RUNNING jobs whose worker stopped reporting (SIGKILL, OOM killer, lost machine): each goes back to
    its task (sent after commit) or is failed.

    Every job kind is resumable or restarts cleanly (imports and exports write in one transaction; model jobs skip
    what they already stored), so a stuck job goes back to PENDING to be sent again, until it has used
    ``max_attempts``; then it is marked failed. Without this, a killed worker's job would wait for the broker's
    visibility timeout (hours, to outlast the longest task).
    """
    age = stale_after or timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    attempts = max_attempts or settings.JOB_MAX_ATTEMPTS
    now = timezone.now()
    cutoff = now - age
    requeued: list[int] = []
    kinds: dict[int, str] = {}
    failed = 0
    with transaction.atomic():
        for job in Job.objects.select_for_update(skip_locked=True).filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
            silent = int(age.total_seconds())
            if job.attempts < attempts:
                job.status = JobStatus.PENDING
                job.message = (f"The worker stopped reporting progress for over {silent} s; "
                               f"the job was sent again (attempt {job.attempts + 1} of {attempts}).")
                job.heartbeat_at = now
                job.save(update_fields=["status", "message", "heartbeat_at"])
                requeued.append(job.pk)
                kinds[job.pk] = job.kind
                task_send_on_commit(JOB_KIND_TASKS[job.kind], job.pk)
            else:
                job.status = JobStatus.FAILED
                job.finished_at = now
                job.message = (f"The worker stopped reporting progress for over {silent} s on each of "
                               f"{job.attempts} attempt(s); the job was marked failed.")
                job.save(update_fields=["status", "finished_at", "message"])
                failed += 1
    return ReapResult(requeued=requeued, failed=failed, kinds=kinds)
