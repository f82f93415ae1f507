"""POST /api/corpora/{id}/imports/preview/ (the first rows, raw and as read, with their errors) and the job's errors
as a CSV download (/api/jobs/{id}/errors/csv/)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from corpora.models import Utterance
from jobs.models import Job, JobKind
from jobs.services import RowError, job_create, job_record_errors

pytestmark = pytest.mark.django_db

CSV = "id,text,lang,speaker\nn1,नमस्कार,mr,asha\nn2,,mr,ravi\nn3,Hello there,xx-nope,asha\n".encode()
OPTIONS = {"format": "csv", "mapping": {"text": "text", "external_id": "id", "language": "lang", "speaker": "speaker"}}


def preview(client, corpus, options=OPTIONS, data=CSV, name="lines.csv"):  # type: ignore[no-untyped-def]
    payload = {"file": SimpleUploadedFile(name, data, content_type="text/csv"), "options": json.dumps(options)}
    return client.post(f"/api/corpora/{corpus.pk}/imports/preview/", payload, format="multipart")


def test_the_preview_shows_rows_as_read_and_their_errors(world, client_for):
    response = preview(client_for(world.lead), world.corpus)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["header"] == ["id", "text", "lang", "speaker"] and body["role"] == "utterances"
    assert body["file_error"] is None and body["options"]["mode"] == "all_or_nothing"
    first, empty, bad_language = body["rows"]
    assert first["values"] == {"id": "n1", "text": "नमस्कार", "lang": "mr", "speaker": "asha"}
    assert (first["read"]["text"], first["read"]["language"], first["read"]["speaker"], first["errors"]) == ("नमस्कार", "mr", "asha", [])
    assert empty["read"] is None and empty["errors"][0]["row"] == 2 and empty["errors"][0]["column"] == "text"
    assert bad_language["errors"][0]["column"] == "lang" and bad_language["errors"][0]["file"] == "lines.csv"
    assert not Utterance.objects.filter(corpus=world.corpus, external_id="n1").exists()  # nothing stored
    assert not Job.objects.exists()


def test_a_file_the_import_would_refuse_is_named(world, client_for):
    mapping = {**OPTIONS["mapping"], "speaker": "Speaker"}  # no such column
    body = preview(client_for(world.lead), world.corpus, options={**OPTIONS, "mapping": mapping}).json()
    assert body["rows"] == [] and body["file_error"]["column"] == "Speaker" and "not in the header" in body["file_error"]["reason"]


def test_labels_are_read_against_the_schema(world, client_for):
    data = b"id,text,emotion\nq1,Happy,joy\nq2,Sad,sorrowful\n"
    options = {"format": "csv", "language": "en", "schema": world.schema.schema.slug,
               "mapping": {"text": "text", "external_id": "id", "labels": {"emotion": "emotion"}}}
    rows = preview(client_for(world.lead), world.corpus, options=options, data=data).json()["rows"]
    assert rows[0]["read"]["answers"] == {"emotion": "joy"}
    assert rows[1]["errors"][0]["column"] == "emotion"


@pytest.mark.parametrize(
    ("options", "field"), [({"preset": "nope"}, "preset"), ({**OPTIONS, "mode": "sometimes"}, "mode"), ({"format": "csv"}, "text")]
)
def test_bad_options_are_a_400_naming_the_field(world, client_for, options, field):
    response = preview(client_for(world.lead), world.corpus, options=options)
    assert response.status_code == 400 and any(field in key for key in response.json()), response.json()


def test_only_who_may_import_previews(world, client_for):
    assert preview(client_for(world.annotator), world.corpus).status_code == 403
    assert preview(client_for(world.outsider), world.corpus).status_code == 404
    no_file = client_for(world.lead).post(f"/api/corpora/{world.corpus.pk}/imports/preview/", {}, format="multipart")
    assert no_file.status_code == 400 and "file" in no_file.json()


def test_job_errors_download_as_csv(world, client_for):
    job = job_create(kind=JobKind.IMPORT, created_by=world.curator, corpus=world.corpus)
    job_record_errors(job=job, errors=[
        RowError("the text is empty", file="lines.csv", row=2, column="text"),
        RowError("=HYPERLINK(\"x\")", file="lines.csv", row=3, column="lang"),
        RowError("-1 is not a row count", file="audio.zip"),  # blank row and column stay blank
    ])
    response = client_for(world.curator).get(f"/api/jobs/{job.pk}/errors/csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["file", "row", "column", "reason"],
        ["lines.csv", "2", "text", "the text is empty"],
        ["lines.csv", "3", "lang", "'=HYPERLINK(\"x\")"],
        ["audio.zip", "", "", "'-1 is not a row count"],
    ]
    assert client_for(world.outsider).get(f"/api/jobs/{job.pk}/errors/csv/").status_code == 404


def test_the_header_alone_comes_back_before_any_mapping(world, client_for):
    payload = {"file": SimpleUploadedFile("lines.csv", CSV), "options": "{}", "header_only": "true"}
    body = client_for(world.lead).post(f"/api/corpora/{world.corpus.pk}/imports/preview/", payload, format="multipart").json()
    assert body["header"] == ["id", "text", "lang", "speaker"] and body["format"] == "csv" and body["rows"] == []
    odd = {"file": SimpleUploadedFile("lines.xlsx", b"PK\x03\x04"), "options": "{}", "header_only": "true"}
    refused = client_for(world.lead).post(f"/api/corpora/{world.corpus.pk}/imports/preview/", odd, format="multipart").json()
    assert refused["header"] == [] and refused["file_error"]["file"] == "lines.xlsx"
