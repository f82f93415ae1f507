"""List endpoints make the same number of queries for 5 rows as for 50 (no query per row)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.services import (
    annotation_create,
    label_schema_create,
    label_schema_version_create,
    membership_set,
    project_create,
)
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker
from jobs.models import JobKind
from jobs.services import RowError, job_create, job_record_errors
from tests.api.conftest import make_utterance

pytestmark = pytest.mark.django_db


def grow(world, make_user, listed_job, count: int, start: int) -> None:
    """Add ``count`` rows of every kind the list endpoints return, visible to the lead."""
    languages = [language_get_or_create("mr"), language_get_or_create("en")]
    for i in range(start, start + count):
        corpus = Corpus.objects.create(name=f"C{i}", slug=f"c{i}", license="MIT", created_by=world.lead)
        corpus.languages.set(languages)
        project = project_create(
            name=f"P{i}", corpus=corpus, schema_version=world.schema, created_by=world.lead, languages=languages
        )
        member = make_user(f"member{i}")
        membership_set(project=world.project, user=member, role="annotator", languages=languages)
        schema = label_schema_create(
            name=f"S{i}", slug=f"s{i}", created_by=member,
            questions=[{"key": "tag", "type": "multi_label", "labels": ["joy", "fear"]}],
        )
        label_schema_version_create(schema=schema.schema, questions=[{"key": "tag", "type": "single_choice", "labels": ["joy"]}])
        conversation = Conversation.objects.create(corpus=world.corpus, external_id=f"conv{i}")
        speaker = Speaker.objects.create(corpus=world.corpus, external_id=f"spk{i}")
        utterance = make_utterance(
            world.corpus, f"row {i}", external_id=f"row{i}", conversation=conversation, speaker=speaker, turn_index=i
        )
        utterance.audio.save(f"a{i}.wav", ContentFile(b"RIFF"), save=True)
        annotation_create(
            utterance=utterance, schema_version=world.schema, value={"emotion": "joy"}, annotator=member,
            project=world.project,
        )
        annotation_create(utterance=utterance, schema_version=schema, value={"tag": ["joy"]}, external_rater=f"r{i}")
        job = job_create(kind=JobKind.IMPORT, created_by=member, corpus=corpus, project=project)
        job_record_errors(job=job, errors=[RowError("bad", file="f.csv", row=i, column="c")])
        job_record_errors(job=listed_job, errors=[RowError("bad", file="f.csv", row=i, column="c")])


ENDPOINTS = [
    "/api/languages/", "/api/corpora/", "/api/utterances/", "/api/utterances/?label=joy&has_audio=true",
    "/api/conversations/", "/api/speakers/", "/api/schemas/", "/api/projects/", "/api/projects/{project}/memberships/",
    "/api/annotations/", "/api/jobs/", "/api/jobs/{job}/errors/",
]


def test_list_queries_do_not_grow_with_rows(world, make_user, client_for):
    first_job = job_create(kind=JobKind.IMPORT, created_by=world.lead, corpus=world.corpus)
    client = client_for(world.lead)
    urls = [e.format(project=world.project.pk, job=first_job.pk) for e in ENDPOINTS]

    def measure() -> dict[str, tuple[int, int]]:
        counts = {}
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            assert response.status_code == 200, (url, response.content)
            counts[url] = (len(queries), len(response.json()["results"]))
        return counts

    grow(world, make_user, first_job, 5, 0)
    small = measure()
    grow(world, make_user, first_job, 45, 5)
    large = measure()
    for url in urls:
        if url != "/api/languages/":
            assert large[url][1] > small[url][1], f"{url} did not grow: {small[url]} -> {large[url]}"
        assert large[url][0] == small[url][0], f"{url}: {small[url][0]} queries for {small[url][1]} rows, {large[url][0]} for {large[url][1]}"
        assert large[url][0] <= 6, f"{url} makes {large[url][0]} queries"
