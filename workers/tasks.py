"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from workers.queues import CeleryQueue


@shared_task(name="workers.tasks.reap_stuck_jobs", queue=CeleryQueue.DEFAULT.value)
def reap_stuck_jobs() -> int:
    from jobs.services import jobs_reap_stuck

    return jobs_reap_stuck()


IMPORT_MAX_RETRIES = 3


@shared_task(
    bind=True, name="workers.tasks.run_import_job", queue=CeleryQueue.DEFAULT.value, acks_late=True,
    reject_on_worker_lost=True, max_retries=IMPORT_MAX_RETRIES,
)
def run_import_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Run one import job; a lost database connection is retried with backoff (nothing was written)."""
    from django.db import OperationalError

    from corpora.importing.services import import_job_fail, import_run

    try:
        import_run(job_id=job_id)
    except OperationalError as exc:
        if self.request.retries >= IMPORT_MAX_RETRIES:
            import_job_fail(job_id=job_id, message=f"The database stayed unreachable after {IMPORT_MAX_RETRIES} "
                                                   f"retries ({exc}); nothing was written.")
            return
        raise self.retry(exc=exc, countdown=min(300, 10 * 2 ** self.request.retries)) from exc


@shared_task(name="workers.tasks.run_export_job", queue=CeleryQueue.DEFAULT.value, acks_late=True,
             reject_on_worker_lost=True)
def run_export_job(job_id: int) -> None:
    """Run one gold-split export job (a redelivered message for a finished job does nothing)."""
    from annotation.export.services import export_run

    export_run(job_id=job_id)


@shared_task(name="workers.tasks.compute_agreement", queue=CeleryQueue.DEFAULT.value, acks_late=True,
             reject_on_worker_lost=True)
def compute_agreement(job_id: int) -> None:
    """Compute and cache one agreement report and its aggregated labels (a redelivered finished job does nothing)."""
    from annotation.quality.services import agreement_job_run

    agreement_job_run(job_id=job_id)
