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


def jobs_reap_stuck(*, stale_after: timedelta | None = None) -> int:
    """Fail RUNNING jobs whose worker stopped reporting (killed by a hard time limit or the OOM killer)."""
    age = stale_after or timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    cutoff = timezone.now() - age
    now = timezone.now()
    return Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
        status=JobStatus.FAILED, finished_at=now,
        message=f"The worker stopped reporting progress for over {int(age.total_seconds())} s; the job was marked failed.",
    )
