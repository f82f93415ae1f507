"""Reads for background jobs, through what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from jobs.models import Job, JobError


def jobs_visible_to(user: Any) -> QuerySet[Job]:
    """Staff see every job; others their own and those of corpora or projects they can see."""
    from annotation.selectors import project_ids_visible_to
    from corpora.selectors import corpus_ids_visible_to

    if user.is_authenticated and user.is_staff:
        return Job.objects.all()
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(
        Q(created_by=user) | Q(corpus_id__in=corpus_ids_visible_to(user)) | Q(project_id__in=project_ids_visible_to(user))
    )


def job_errors_list(*, job: Job) -> QuerySet[JobError]:
    return JobError.objects.filter(job=job).order_by("id")
