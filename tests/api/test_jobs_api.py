"""Jobs: who sees which, what a job reports, and its rejected rows page by page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobKind, JobStatus
from jobs.services import RowError, job_create, job_record_errors, job_start, job_succeed
from tests.api.conftest import ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(world):
    return {
        "corpus_import": job_create(kind=JobKind.IMPORT, created_by=world.curator, corpus=world.corpus),
        "project_export": job_create(kind=JobKind.EXPORT, created_by=world.lead, project=world.project),
        "private_import": job_create(kind=JobKind.IMPORT, created_by=world.outsider, corpus=world.private_corpus),
        "own_unlinked": job_create(kind=JobKind.AGREEMENT, created_by=world.annotator),
    }


@pytest.mark.parametrize(
    ("name", "visible"),
    [
        ("curator", {"corpus_import"}),
        ("lead", {"corpus_import", "project_export"}),
        ("reviewer", {"corpus_import", "project_export"}),  # reviewers read and download exports (issue 14)
        ("annotator", set()),  # neither the corpus's imports nor the project's exports; a job without subject: staff

        ("outsider", {"private_import"}),
    ],
)
def test_job_visibility(world, jobs, client_for, name, visible):
    client = client_for(getattr(world, name))
    assert ids(client.get("/api/jobs/")) == {jobs[k].pk for k in visible}
    for key, job in jobs.items():
        assert client.get(f"/api/jobs/{job.pk}/").status_code == (200 if key in visible else 404)
        assert client.get(f"/api/jobs/{job.pk}/errors/").status_code == (200 if key in visible else 404)


def test_job_detail_reports_progress_counts_and_timings(world, jobs, client_for):
    job = jobs["corpus_import"]
    started = job_start(job_id=job.pk)
    assert started is not None
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=90), progress_total=10)
    started.refresh_from_db()
    job_record_errors(job=started, errors=[RowError("not a known label", file="a.csv", row=2, column="Emotion")])
    job_succeed(job=started, counts={"rows": 10, "created": 9, "rejected": 1}, message="9 utterances imported")
    body = client_for(world.curator).get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == JobStatus.SUCCEEDED and body["kind"] == "import" and body["created_by"] == "cora_curator"
    assert (body["progress_done"], body["progress_total"]) == (10, 10)
    assert body["counts"] == {"rows": 10, "created": 9, "rejected": 1} and body["error_count"] == 1
    assert body["message"] == "9 utterances imported" and 89 < body["duration_s"] < 200
    assert body["finished_at"] is not None and body["corpus"] == world.corpus.pk


def test_job_errors_are_paginated_rows(world, jobs, client_for):
    job = jobs["corpus_import"]
    job_record_errors(job=job, errors=[RowError(f"bad value {i}", file="big.csv", row=i + 1, column="text") for i in range(120)])
    client = client_for(world.curator)
    first = client.get(f"/api/jobs/{job.pk}/errors/").json()
    assert first["count"] == 120 and len(first["results"]) == 50
    assert first["results"][0] == {"id": first["results"][0]["id"], "file": "big.csv", "row": 1, "column": "text", "reason": "bad value 0"}
    last = client.get(f"/api/jobs/{job.pk}/errors/?page=3").json()
    assert [r["row"] for r in last["results"]] == list(range(101, 121)) and last["next"] is None


def test_job_filters(world, jobs, client_for):
    client = client_for(world.lead)
    assert ids(client.get("/api/jobs/?kind=export")) == {jobs["project_export"].pk}
    assert ids(client.get(f"/api/jobs/?corpus={world.corpus.pk}")) == {jobs["corpus_import"].pk}
    assert ids(client.get("/api/jobs/?status=running")) == set()
    assert client.get("/api/jobs/?status=exploded").status_code == 400
