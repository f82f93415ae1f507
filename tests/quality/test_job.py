"""The AGREEMENT job: enqueued after commit (at most one per source), run by calling the task with the job id."""

from __future__ import annotations

import pytest

from annotation.models import AggregatedLabel, AgreementReport
from annotation.quality.selectors import agreement_report_state, quality_source_for_project
from annotation.quality.services import agreement_job_enqueue
from jobs import dispatch
from jobs.dispatch import task_routes
from jobs.models import Job, JobKind, JobStatus
from workers.tasks import compute_agreement

pytestmark = pytest.mark.django_db


def test_job_is_enqueued_on_commit_and_computes_the_report(quality_world, django_capture_on_commit_callbacks, monkeypatch):  # type: ignore[no-untyped-def]
    source = quality_source_for_project(quality_world.project)
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: sent.append(job_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = agreement_job_enqueue(source=source, created_by=quality_world.lead, n_resamples=50, seed=2)
        again = agreement_job_enqueue(source=source, created_by=quality_world.lead)
    assert again.pk == job.pk  # an active job is reused, not duplicated
    assert len(callbacks) == 1 and sent == []  # nothing is sent before the commit
    callbacks[0]()
    assert sent == [job.pk]
    assert job.kind == JobKind.AGREEMENT and job.status == JobStatus.PENDING
    assert job.params == {"source": {"project": quality_world.project.pk}, "n_resamples": 50, "seed": 2}
    assert task_routes()["workers.tasks.compute_agreement"] == {"queue": "default"}

    compute_agreement(job.pk)  # what the worker runs, called with the id

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    report = AgreementReport.objects.get(project=quality_world.project)
    assert job.result["report_id"] == report.pk and report.job_id == job.pk
    assert report.params["n_resamples"] == 50 and report.params["seed"] == 2
    assert job.progress_done == job.progress_total
    assert job.counts["aggregated_labels"] == AggregatedLabel.objects.filter(project=quality_world.project).count() > 0
    assert not agreement_report_state(source).stale

    computed_at = report.computed_at
    compute_agreement(job.pk)  # a redelivered message for a finished job does nothing
    report.refresh_from_db()
    assert report.computed_at == computed_at


def test_job_for_a_deleted_project_fails_with_a_reason(quality_world, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        job = agreement_job_enqueue(source=quality_source_for_project(quality_world.project), n_resamples=0)
    Job.objects.filter(pk=job.pk).update(params={"source": {"project": 999_999}, "n_resamples": 0, "seed": 0})
    compute_agreement(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "no longer exists" in job.message
