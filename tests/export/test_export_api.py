"""The export API: leads start an export job, watch it and download its files; nobody else gets in, and only the
files the job recorded are ever served (local storage streams them, S3 redirects to a presigned link)."""

from __future__ import annotations

import csv
import io
import tracemalloc
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from annotation.export.services import export_run
from annotation.models import Role
from annotation.services import membership_set
from jobs.dispatch import Task
from jobs.models import Job, JobKind, JobStatus
from tests.test_storage_s3 import S3Server, s3_server, s3_storage  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def members(meld: Any, reviewer: Any, annotator: Any) -> dict[str, Any]:
    membership_set(project=meld.project, user=reviewer, role=Role.REVIEWER)
    membership_set(project=meld.project, user=annotator, role=Role.ANNOTATOR)
    return {"reviewer": reviewer, "annotator": annotator}


def exports_url(project_id: int) -> str:
    return f"/api/projects/{project_id}/exports/"


def start_export(client: APIClient, project_id: int, capture: Any, **options: Any) -> tuple[Any, Any]:
    """POST the options; the job is enqueued only once the transaction commits."""
    with mock.patch("jobs.dispatch.task_send") as delay, capture(execute=True):
        response = client.post(exports_url(project_id), options, format="json")
    return response, delay


def finished_export(client: APIClient, meld: Any, capture: Any, **options: Any) -> dict[str, Any]:
    response, delay = start_export(client, meld.project.pk, capture, **options)
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    delay.assert_called_once_with(Task.EXPORT, job_id)
    export_run(job_id=job_id)  # what the Celery task does
    detail = client.get(f"{exports_url(meld.project.pk)}{job_id}/")
    assert detail.status_code == 200, detail.content
    body = detail.json()
    assert body["status"] == JobStatus.SUCCEEDED, body["message"]
    return body


def downloaded(response: Any) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    # The test client closes the response (and the file) once its streaming content is consumed.
    return b"".join(response.streaming_content)


# --- starting and reading exports --------------------------------------------------------------------------------


def test_lead_starts_an_export_that_is_enqueued_on_commit(meld, lead, client_for, django_capture_on_commit_callbacks):
    response, delay = start_export(client_for(lead), meld.project.pk, django_capture_on_commit_callbacks,
                                   formats=["parquet", "csv"], splits={"train": 8, "dev": 1, "test": 1}, seed=4,
                                   grouping="conversation", provenance={"dev": ["human"], "test": ["human"]})

    assert response.status_code == 202, response.content
    body = response.json()
    delay.assert_called_once_with(Task.EXPORT, body["id"])
    job = Job.objects.get(pk=body["id"])
    assert (job.kind, job.project_id, job.created_by) == (JobKind.EXPORT, meld.project.pk, lead)
    assert body["status"] == "pending" and body["files"] == [] and body["splits"] is None
    assert body["options"]["formats"] == ["parquet", "csv"]
    assert body["options"]["splits"] == pytest.approx({"train": 0.8, "dev": 0.1, "test": 0.1})
    assert body["options"]["seed"] == 4 and body["options"]["grouping"] == "conversation"
    assert "result" not in body and "params" not in body  # storage names stay on the server


def test_defaults_apply_when_no_options_are_given(meld, lead, client_for, django_capture_on_commit_callbacks):
    response, _ = start_export(client_for(lead), meld.project.pk, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    options = response.json()["options"]
    assert options["formats"] == ["parquet", "csv", "jsonl"]
    assert options["provenance"] == {"train": ["human", "llm", "model"], "dev": ["human"], "test": ["human"]}


@pytest.mark.parametrize(("options", "field"), [
    ({"formats": ["xlsx"]}, "formats"),
    ({"formats": []}, "formats"),
    ({"formats": ["csv", "csv"]}, "formats"),
    ({"splits": {"train": 0, "dev": 0.5, "test": 0.5}}, "splits"),
    ({"splits": {"train": 0.8, "dev": 0.2}}, "splits"),
    ({"splits": {"train": "lots", "dev": 0.1, "test": 0.1}}, "splits"),
    ({"seed": -1}, "seed"),
    ({"seed": "abc"}, "seed"),
    ({"grouping": "household"}, "grouping"),
    ({"stratify_on": "rationale"}, "stratify_on"),  # a free-text question cannot stratify
    ({"stratify_on": "no_such_question"}, "stratify_on"),
    ({"stratify_language": "maybe"}, "stratify_language"),
    ({"provenance": {"dev": ["robot"]}}, "provenance"),
    ({"provenance": {"dev": []}}, "provenance.dev"),
    ({"provenance": {"holdout": ["human"]}}, "provenance"),
    ({"bootstrap_resamples": 10**6}, "bootstrap_resamples"),
    ({"perspective": "listener"}, "perspective"),  # the schema has no perspectives
    ({"shuffle": True}, "shuffle"),  # unknown options are refused, not ignored
    ({"min_annotations": 0}, "min_annotations"),
    ({"heldout_min_annotations": "all"}, "heldout_min_annotations"),
    ({"complete_only": "maybe"}, "complete_only"),
    ({"group_same_text": 3}, "group_same_text"),
])
def test_bad_options_answer_400_naming_the_field(meld, lead, client_for, django_capture_on_commit_callbacks,
                                                 options, field):
    response, delay = start_export(client_for(lead), meld.project.pk, django_capture_on_commit_callbacks, **options)

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    delay.assert_not_called()
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()


def test_non_object_body_is_refused(meld, lead, client_for):
    response = client_for(lead).post(exports_url(meld.project.pk), [1, 2], format="json")
    assert response.status_code == 400


def test_reviewers_read_and_download_exports_but_do_not_start_them(meld, members, lead, client_for,
                                                                   django_capture_on_commit_callbacks):
    body = finished_export(client_for(lead), meld, django_capture_on_commit_callbacks, formats=["csv"])
    client = client_for(members["reviewer"])
    base = exports_url(meld.project.pk)
    with mock.patch("jobs.dispatch.task_send") as delay:
        assert client.post(base, {}, format="json").status_code == 403
    delay.assert_not_called()
    assert client.get(base).json()["results"][0]["id"] == body["id"]
    assert client.get(f"{base}{body['id']}/").status_code == 200
    download = client.get(f"{base}{body['id']}/files/csv/train.csv")
    assert download.status_code == 200 and b"label_source" in b"".join(download.streaming_content)


@pytest.mark.parametrize("who", ["annotator", "outsider", "anonymous"])
def test_only_leads_and_reviewers_reach_exports(meld, members, outsider, lead, client_for,
                                                django_capture_on_commit_callbacks, who):
    expected = {"annotator": 403, "outsider": 404, "anonymous": (401, 403)}[who]
    user = {"annotator": members["annotator"], "outsider": outsider, "anonymous": None}[who]
    body = finished_export(client_for(lead), meld, django_capture_on_commit_callbacks, formats=["csv"])
    job_id = body["id"]
    client = client_for(user)
    base = exports_url(meld.project.pk)

    with mock.patch("jobs.dispatch.task_send") as delay:
        post = client.post(base, {}, format="json")
    answers = [post, client.get(base), client.get(f"{base}{job_id}/"),
               client.get(f"{base}{job_id}/files/csv/train.csv")]

    for answer in answers:
        assert answer.status_code in (expected if isinstance(expected, tuple) else (expected,)), (
            answer.status_code, getattr(answer, "content", b""))
    delay.assert_not_called()
    assert Job.objects.filter(kind=JobKind.EXPORT).count() == 1


def test_staff_may_export_any_project(meld, make_user, client_for, django_capture_on_commit_callbacks):
    admin = make_user("ada_admin", is_staff=True)
    response, _ = start_export(client_for(admin), meld.project.pk, django_capture_on_commit_callbacks)
    assert response.status_code == 202


def test_list_shows_this_projects_exports_newest_first(meld, lead, outsider, client_for,
                                                       django_capture_on_commit_callbacks):
    from annotation.services import project_create

    client = client_for(lead)
    first = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["jsonl"], seed=1)
    second, _ = start_export(client, meld.project.pk, django_capture_on_commit_callbacks, seed=2)
    other = project_create(name="Other", corpus=meld.corpus, schema_version=meld.schema_version, created_by=outsider)
    other_job, _ = start_export(client_for(outsider), other.pk, django_capture_on_commit_callbacks)

    listing = client.get(exports_url(meld.project.pk))

    assert listing.status_code == 200, listing.content
    rows = listing.json()["results"]
    assert [r["id"] for r in rows] == [second.json()["id"], first["id"]]
    assert other_job.json()["id"] not in {r["id"] for r in rows}
    done = rows[1]
    assert done["status"] == "succeeded" and done["finished_at"] and done["duration_s"] is not None
    assert done["progress_done"] == done["progress_total"] > 0
    assert done["counts"]["utterances_exported"] == sum(done["splits"][s]["utterances"] for s in ("train", "dev", "test"))
    assert {f["name"] for f in done["files"]} == {"README.md", "jsonl/train.jsonl", "jsonl/dev.jsonl", "jsonl/test.jsonl"}
    # A job of another project is not reachable through this project's URL.
    assert client.get(f"{exports_url(meld.project.pk)}{other_job.json()['id']}/").status_code == 404


# --- downloads -----------------------------------------------------------------------------------------------------


def test_a_finished_export_downloads_with_the_stored_bytes(meld, lead, client_for, django_capture_on_commit_callbacks):
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["parquet", "csv"], seed=3)
    files = {f["name"]: f for f in body["files"]}
    assert files["README.md"]["format"] == "card"
    assert {"parquet/train.parquet", "csv/dev.csv", "csv/test.csv"} <= set(files)
    job = Job.objects.get(pk=body["id"])
    stored = {f["name"]: f["storage_name"] for f in [job.result["card"], *job.result["files"]]}

    for name in ("csv/train.csv", "parquet/dev.parquet", "README.md"):
        entry = files[name]
        assert entry["download_url"] == (f"http://testserver/api/projects/{meld.project.pk}/exports/{job.pk}"
                                         f"/files/{name}")
        response = client.get(entry["download_url"])
        content = downloaded(response)
        assert content == Path(default_storage.path(stored[name])).read_bytes()
        assert len(content) == entry["size"]
        disposition = response["Content-Disposition"]
        assert disposition.startswith("attachment;") and f"sentio-export-{job.pk}-" in disposition
        assert response["Cache-Control"] == "private, no-store"

    rows = list(csv.DictReader(io.StringIO(downloaded(client.get(files["csv/train.csv"]["download_url"])).decode())))
    assert len(rows) == files["csv/train.csv"]["rows"] == body["splits"]["train"]["utterances"]
    assert {r["split"] for r in rows} == {"train"}
    parquet = pq.read_table(io.BytesIO(downloaded(client.get(files["parquet/dev.parquet"]["download_url"]))))
    assert parquet.num_rows == body["splits"]["dev"]["utterances"]


def test_download_ignores_what_the_client_accepts(meld, lead, client_for, django_capture_on_commit_callbacks):
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["csv"])
    url = next(f["download_url"] for f in body["files"] if f["name"] == "csv/dev.csv")
    assert downloaded(client.get(url, HTTP_ACCEPT="application/octet-stream"))
    missing = client.get(url.replace("dev.csv", "nope.csv"), HTTP_ACCEPT="text/csv")
    assert missing.status_code == 404 and "detail" in missing.json()


@pytest.mark.parametrize("name", [
    "../../../../etc/passwd",
    "csv/../csv/train.csv",
    "csv/train.csv/../../README.md",
    "%2e%2e/%2e%2e/settings.py",
    "..%2f..%2fREADME.md",
    "/etc/passwd",
    "csv//train.csv",
    "./csv/train.csv",
    "extra.txt",  # in the job's storage folder, but not recorded by the job
    "exports/{job}/csv/train.csv",  # the storage name is not a file name of the export
    "csv/train.csv%00.txt",
])
def test_only_names_the_job_recorded_are_served(meld, lead, client_for, django_capture_on_commit_callbacks, name):
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["csv"])
    default_storage.save(f"exports/{body['id']}/extra.txt", ContentFile(b"not part of the export"))

    response = client.get(f"{exports_url(meld.project.pk)}{body['id']}/files/{name.format(job=body['id'])}")

    assert response.status_code == 404, (name, response.status_code)


def test_an_unfinished_export_has_nothing_to_download(meld, lead, client_for, django_capture_on_commit_callbacks):
    client = client_for(lead)
    response, _ = start_export(client, meld.project.pk, django_capture_on_commit_callbacks, formats=["csv"])
    job_id = response.json()["id"]
    assert client.get(f"{exports_url(meld.project.pk)}{job_id}/files/csv/train.csv").status_code == 404
    assert client.get(f"{exports_url(meld.project.pk)}{job_id + 1000}/").status_code == 404


def test_a_file_gone_from_storage_answers_404(meld, lead, client_for, django_capture_on_commit_callbacks):
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["csv"])
    job = Job.objects.get(pk=body["id"])
    default_storage.delete(next(f["storage_name"] for f in job.result["files"] if f["name"] == "csv/test.csv"))

    response = client.get(f"{exports_url(meld.project.pk)}{job.pk}/files/csv/test.csv")

    assert response.status_code == 404


@pytest.mark.services
def test_on_s3_a_download_redirects_to_a_short_lived_presigned_url(
        s3_storage: S3Server, meld, lead, client_for, django_capture_on_commit_callbacks):  # noqa: F811
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["csv"], seed=9)
    entry = next(f for f in body["files"] if f["name"] == "csv/train.csv")
    assert any(key.endswith("csv/train.csv") for key in s3_storage.keys(f"exports/{body['id']}/"))

    response = client.get(entry["download_url"])

    assert response.status_code == 302, response.content
    link = response["Location"]
    assert link.startswith(f"{s3_storage.endpoint_url}/{s3_storage.bucket}/exports/{body['id']}/csv/train")
    query = parse_qs(urlsplit(link).query)
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
    assert query["response-content-disposition"][0].startswith("attachment;")
    with urllib.request.urlopen(link, timeout=10) as fetched:
        content = fetched.read()
    job = Job.objects.get(pk=body["id"])
    stored = next(f["storage_name"] for f in job.result["files"] if f["name"] == "csv/train.csv")
    with default_storage.open(stored) as fh:
        assert content == fh.read()
    assert len(content) == entry["size"]
    assert len(list(csv.DictReader(io.StringIO(content.decode())))) == entry["rows"]


# --- the whole export in one zip ------------------------------------------------------------------------------------


def test_download_all_streams_one_zip_of_every_file(meld, lead, client_for, django_capture_on_commit_callbacks):
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["parquet", "csv", "hf"], seed=3)
    job = Job.objects.get(pk=body["id"])
    assert body["archive_url"] == f"http://testserver/api/projects/{meld.project.pk}/exports/{job.pk}/archive/"

    response = client.get(body["archive_url"])

    assert response.streaming and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="sentio-export-{job.pk}.zip"'
    assert response["Cache-Control"] == "private, no-store"
    archive = zipfile.ZipFile(io.BytesIO(downloaded(response)))
    assert archive.testzip() is None
    stored = {f["name"]: f["storage_name"] for f in [job.result["card"], *job.result["files"]]}
    assert archive.namelist() == [f"sentio-export-{job.pk}/{f['name']}" for f in body["files"]]
    for name, storage_name in stored.items():
        assert archive.read(f"sentio-export-{job.pk}/{name}") == Path(default_storage.path(storage_name)).read_bytes()
    kinds = {i.filename.split("/", 1)[1]: i.compress_type for i in archive.infolist()}
    assert kinds["csv/train.csv"] == zipfile.ZIP_DEFLATED and kinds["parquet/train.parquet"] == zipfile.ZIP_STORED


def test_download_all_is_permission_checked_like_one_file(meld, members, outsider, lead, client_for,
                                                          django_capture_on_commit_callbacks):
    body = finished_export(client_for(lead), meld, django_capture_on_commit_callbacks, formats=["csv"])
    url = f"{exports_url(meld.project.pk)}{body['id']}/archive/"
    assert zipfile.ZipFile(io.BytesIO(downloaded(client_for(members["reviewer"]).get(url)))).namelist()
    assert client_for(members["annotator"]).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(None).get(url).status_code in (401, 403)
    other = exports_url(meld.project.pk).replace(f"/{meld.project.pk}/", f"/{meld.project.pk + 1}/")
    assert client_for(lead).get(f"{other}{body['id']}/archive/").status_code == 404


def test_download_all_of_an_unfinished_or_damaged_export_answers_404(meld, lead, client_for,
                                                                     django_capture_on_commit_callbacks):
    client = client_for(lead)
    pending, _ = start_export(client, meld.project.pk, django_capture_on_commit_callbacks, formats=["csv"])
    assert pending.json()["archive_url"] is None
    assert client.get(f"{exports_url(meld.project.pk)}{pending.json()['id']}/archive/").status_code == 404
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["csv"])
    job = Job.objects.get(pk=body["id"])
    default_storage.delete(next(f["storage_name"] for f in job.result["files"] if f["name"] == "csv/test.csv"))
    gone = client.get(body["archive_url"], HTTP_ACCEPT="application/zip")
    assert gone.status_code == 404 and "csv/test.csv" in gone.json()["detail"]  # said before any byte is sent


def test_download_all_keeps_memory_flat(meld, lead, client_for, django_capture_on_commit_callbacks):
    """A 24 MB file goes through the zip stream with a few MB of peak memory: it is read and sent in pieces."""
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["parquet"])
    job = Job.objects.get(pk=body["id"])
    big = job.result["files"][0]
    with default_storage.open(big["storage_name"], "wb") as fh:
        for _ in range(24):
            fh.write(bytes(range(256)) * 4096)
    response = client.get(body["archive_url"])
    tracemalloc.start()
    total = sum(len(chunk) for chunk in response.streaming_content)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total > 24 * 2**20 and peak < 8 * 2**20, (total, peak)


@pytest.mark.services
def test_download_all_reads_the_files_from_s3(s3_storage: S3Server, meld, lead, client_for,  # noqa: F811
                                              django_capture_on_commit_callbacks):
    client = client_for(lead)
    body = finished_export(client, meld, django_capture_on_commit_callbacks, formats=["csv"], seed=9)
    archive = zipfile.ZipFile(io.BytesIO(downloaded(client.get(body["archive_url"]))))
    job = Job.objects.get(pk=body["id"])
    for entry in [job.result["card"], *job.result["files"]]:
        with default_storage.open(entry["storage_name"]) as fh:
            assert archive.read(f"sentio-export-{job.pk}/{entry['name']}") == fh.read()


# --- documentation -------------------------------------------------------------------------------------------------


def test_the_export_endpoints_are_documented_under_exports():
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    base = "/api/projects/{project_id}/exports/"
    operations = {
        (base, "get"): {"200", "403", "404"},
        (base, "post"): {"202", "400", "403", "404"},
        (base + "{job_id}/", "get"): {"200", "403", "404"},
        (base + "{job_id}/files/{name}", "get"): {"200", "302", "403", "404"},
        (base + "{job_id}/archive/", "get"): {"200", "403", "404"},
    }
    for (route, method), codes in operations.items():
        operation = spec["paths"][route][method]
        assert operation["tags"] == ["exports"], route
        assert codes <= set(operation["responses"]), (route, method, operation["responses"].keys())
    request = spec["components"]["schemas"]["ExportOptionsInRequest"]["properties"]
    assert {"formats", "splits", "seed", "grouping", "stratify_on", "stratify_language", "provenance",
            "bootstrap_resamples", "perspective"} <= set(request)
    assert "download_url" in spec["components"]["schemas"]["ExportFile"]["properties"]
