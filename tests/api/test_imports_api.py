"""POST /api/corpora/{id}/imports/: files and options in, a 202 with the job out, field errors as 400."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

CSV = "id,text\nn1,नमस्कार\nn2,<b>धन्यवाद</b>\n".encode()
OPTIONS = {"format": "csv", "mapping": {"text": "text", "external_id": "id"}, "language": "mr"}


def upload(client, corpus, options=OPTIONS, files=None):
    payload = {"files": files if files is not None else [SimpleUploadedFile("lines.csv", CSV, content_type="text/csv")]}
    if options is not None:
        payload["options"] = options if isinstance(options, str) else json.dumps(options)
    return client.post(f"/api/corpora/{corpus.pk}/imports/", payload, format="multipart")


@pytest.mark.parametrize("name", ["curator", "lead"])
def test_creator_and_leads_start_an_import(world, client_for, name, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(client_for(getattr(world, name)), world.corpus)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["kind"] == "import" and body["status"] == JobStatus.PENDING and body["corpus"] == world.corpus.pk
    job = Job.objects.get(pk=body["id"])
    assert job.created_by == getattr(world, name)
    stored = job.params["files"]
    assert [f["original"] for f in stored] == ["lines.csv"]
    assert default_storage.open(stored[0]["name"]).read() == CSV
    assert len(callbacks) == 1  # the worker is asked only after the job is committed
    assert body["id"] in {j["id"] for j in client_for(getattr(world, name)).get("/api/jobs/").json()["results"]}


def test_the_import_job_runs_and_reports(world, client_for, django_capture_on_commit_callbacks):
    from corpora.importing.services import import_run

    client = client_for(world.curator)
    with django_capture_on_commit_callbacks(execute=False):
        job_id = upload(client, world.corpus).json()["id"]
    import_run(job_id=job_id)
    job = client.get(f"/api/jobs/{job_id}/").json()
    assert job["status"] == JobStatus.SUCCEEDED, job["message"]
    imported = client.get(f"/api/utterances/?corpus={world.corpus.pk}&search=n").json()["results"]
    assert {(u["external_id"], u["text"]) for u in imported} == {("n1", "नमस्कार"), ("n2", "<b>धन्यवाद</b>")}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"preset": "no-such-preset"}, "preset"),
        ({**OPTIONS, "mode": "sometimes"}, "mode"),
        ({**OPTIONS, "language": "xx-not-a-language"}, "language"),
        ({**OPTIONS, "encoding": "latin-9"}, "encoding"),
        ("{not json", "options"),
        ('["a list"]', "options"),
    ],
)
def test_bad_options_are_400_naming_the_field_and_change_nothing(world, client_for, options, field):
    response = upload(client_for(world.curator), world.corpus, options=options)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Job.objects.exists()


def test_files_are_required(world, client_for):
    response = upload(client_for(world.curator), world.corpus, files=[])
    assert response.status_code == 400 and "files" in response.json()
    empty = upload(client_for(world.curator), world.corpus, files=[SimpleUploadedFile("e.csv", b"")])
    assert empty.status_code == 400 and "files" in empty.json()
    assert not Job.objects.exists()


def test_json_body_is_refused_with_415(world, client_for):
    response = client_for(world.curator).post(f"/api/corpora/{world.corpus.pk}/imports/", {"options": {}}, format="json")
    assert response.status_code == 415 and "detail" in response.json()


def test_same_named_files_from_two_folders_through_the_api(world, client_for, django_capture_on_commit_callbacks):
    """Browsers send bare file names: the paths option names each file's folder, which also says its split."""
    from corpora.importing.services import import_run
    from corpora.models import Utterance

    files = [SimpleUploadedFile("mar.csv", "id,text\nt1,एक\n".encode(), content_type="text/csv"),
             SimpleUploadedFile("mar.csv", "id,text\nd1,दोन\n".encode(), content_type="text/csv")]
    client = client_for(world.curator)
    refused = upload(client, world.corpus, files=files)
    assert refused.status_code == 400 and "paths" in refused.json()["files"][0]
    files = [SimpleUploadedFile(f.name, f.file.getvalue(), content_type="text/csv") for f in files]
    with django_capture_on_commit_callbacks(execute=False):
        response = upload(client, world.corpus, files=files,
                          options={**OPTIONS, "paths": ["train/mar.csv", "dev/mar.csv"]})
    assert response.status_code == 202, response.content
    import_run(job_id=response.json()["id"])
    splits = dict(Utterance.objects.filter(corpus=world.corpus, external_id__in=["t1", "d1"])
                  .values_list("external_id", "metadata__split"))
    assert splits == {"t1": "train", "d1": "dev"}
