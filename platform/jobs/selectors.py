"""Reads for background jobs, through what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from jobs.models import Job, JobError, JobKind


def jobs_visible_to(user: Any) -> QuerySet[Job]:
    """A job is readable by whoever may read its subject (having started it is not enough):

    - imports: the corpus's curators (who also read its imported labels);
    - exports: the project's leads (who alone may start one) and reviewers (who read and download them);
    - agreement, pre-annotation, transcription of a project: its leads and reviewers;
    - agreement of a corpus's imported labels: the corpus's curators;
    - staff: every job.
    """
    from annotation.models import Role
    from annotation.selectors import project_ids_with_role
    from corpora.selectors import corpus_ids_curated_by, user_is_staff

    if user_is_staff(user):
        return Job.objects.all()
    if not user.is_authenticated:
        return Job.objects.none()
    curated = corpus_ids_curated_by(user)
    reviewed = project_ids_with_role(user, Role.LEAD, Role.REVIEWER)
    return Job.objects.filter(
        Q(kind=JobKind.IMPORT, corpus_id__in=curated)
        | Q(kind__in=(JobKind.EXPORT, JobKind.AGREEMENT, JobKind.PREANNOTATE, JobKind.TRANSCRIBE),
            project_id__in=reviewed)
        | Q(kind=JobKind.AGREEMENT, project__isnull=True, corpus_id__in=curated)
    )


def job_errors_list(*, job: Job) -> QuerySet[JobError]:
    return JobError.objects.filter(job=job).order_by("id")
