"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from workers.queues import CeleryQueue


@shared_task(name="workers.tasks.reap_stuck_jobs", queue=CeleryQueue.DEFAULT.value)
def reap_stuck_jobs() -> int:
    from jobs.services import jobs_reap_stuck

    return jobs_reap_stuck()
