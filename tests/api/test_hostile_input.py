"""Odd and hostile query values are a 400 or 404 with a JSON body, never a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


@pytest.mark.parametrize(
    "url",
    [
        f"/api/corpora/{HUGE}/", "/api/corpora/abc/", f"/api/projects/{HUGE}/memberships/", f"/api/jobs/{HUGE}/errors/",
        f"/api/utterances/?corpus={HUGE}", "/api/utterances/?speaker=1e400", "/api/utterances/?conversation=-1",
        "/api/utterances/?page=abc", "/api/utterances/?page=0", f"/api/utterances/?page={HUGE}",
        "/api/utterances/?label=" + "x" * 5000, "/api/utterances/?label=%00", "/api/utterances/?search=%25_%5C",
        "/api/utterances/?language=%27%3B--", f"/api/annotations/?project={HUGE}", "/api/jobs/?corpus=NaN",
        f"/api/languages/{'a' * 300}/", "/api/corpora/?slug=%00",
    ],
)
def test_hostile_queries_are_client_errors_or_empty(world, client_for, url):
    response = client_for(world.lead).get(url)
    assert response.status_code in (200, 400, 404), (url, response.status_code)
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code == 200:
        # Nothing matches: e.g. "%_\" in a prefix search is literal text, not LIKE wildcards.
        assert body["results"] == []


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/api/corpora/", {"name": "x" * 500, "license": "MIT"}),
        ("/api/corpora/", {"name": ["a"], "license": {"b": 1}}),
        ("/api/corpora/", []),
        ("/api/schemas/", {"name": "S", "slug": "s", "questions": [{"key": "k", "type": "numeric", "min": 1, "max": "NaN"}]}),
        ("/api/schemas/", {"name": "S", "slug": "s", "questions": [[], 1, None]}),
        ("/api/projects/", {"name": "P", "corpus": HUGE, "schema_version": HUGE}),
        ("/api/projects/", {"name": "P", "corpus": "abc", "schema_version": [1]}),
        ("/api/projects/{project}/memberships/", {"username": {"$ne": ""}, "role": ["lead"]}),
        ("/api/projects/{project}/memberships/", {"username": "x" * 1000}),
    ],
)
def test_hostile_bodies_are_400(world, client_for, url, payload):
    response = client_for(world.lead).post(url.format(project=world.project.pk), payload, format="json")
    assert response.status_code == 400, (url, response.status_code, response.content)
    assert isinstance(response.json(), dict) and response.json()


def test_hostile_project_settings_are_400(world, client_for):
    client = client_for(world.lead)
    for change in ({"overlap": HUGE}, {"gold_rate": "NaN"}, {"gold_rate": "Infinity"}, {"reservation_seconds": HUGE},
                   {"languages": "mr"}, {"name": "n" * 201}):
        response = client.patch(f"/api/projects/{world.project.pk}/", change, format="json")
        assert response.status_code == 400, (change, response.content)


# Resource limits on every input (issue 18.5) ----------------------------------------------------------------------


def test_error_bodies_are_capped_in_size(world, client_for):
    from annotation.distribution.services import next_item_reserve, project_items_sync

    project_items_sync(world.project)
    handed = next_item_reserve(project=world.project, user=world.annotator)
    assert handed is not None
    unknown = {f"k{i}": 1 for i in range(300_000)}
    response = client_for(world.annotator).post(
        f"/api/projects/{world.project.pk}/submit/",
        {"client_id": "6b1e0c8e-4c1a-4d43-9b8e-5f0d9c1d2a11", "utterance": handed.item.utterance_id,
         "value": {"emotion": "joy", **unknown}},
        format="json",
    )
    assert response.status_code == 400
    assert len(response.content) < 20_000
    value_errors = response.json()["value"]
    assert len(value_errors) == 101 and value_errors["more_errors"] == "299900 more errors not shown"


def test_long_reasons_are_cut(world, client_for):
    response = client_for(world.lead).post(
        "/api/schemas/", {"name": "S", "slug": "x" * 5000, "questions": [{"key": "a", "type": "text"}]}, format="json"
    )
    assert response.status_code == 400 and all(len(reason) <= 1001 for reason in response.json()["slug"])


@pytest.mark.parametrize(
    ("questions", "reason"),
    [
        ([{"key": f"q{i}", "type": "text"} for i in range(101)], "101 questions; at most 100"),
        ([{"key": "e", "type": "single_choice", "labels": [f"l{i}" for i in range(501)]}], "501 labels; at most 500"),
        ([{"key": "e", "type": "text", "title": "t" * 501}], "at most 500 characters"),
        ([{"key": "e", "type": "text", "notes": "n" * 300_000}], "bytes as JSON; at most 262,144"),
    ],
)
def test_schemas_have_a_size_limit(world, client_for, questions, reason):
    response = client_for(world.lead).post(
        "/api/schemas/", {"name": "Huge", "slug": "huge", "questions": questions}, format="json"
    )
    assert response.status_code == 400
    assert any(reason in message for messages in response.json().values() for message in messages), response.json()
    versions = client_for(world.lead).post(
        f"/api/schemas/{world.schema.schema_id}/versions/", {"questions": questions}, format="json"
    )
    assert versions.status_code == 400


@pytest.mark.parametrize("code", ["\x00Z", "mr\x00", "a" * 36, "हिन्दी"])
def test_language_codes_that_cannot_exist_are_400_not_500(world, client_for, code):
    # Found by the long schemathesis run: a NUL byte reached PostgreSQL in the language lookup.
    lead = client_for(world.lead)
    project = lead.patch(f"/api/projects/{world.project.pk}/", {"languages": [code]}, format="json")
    invite = lead.post(f"/api/projects/{world.project.pk}/memberships/",
                       {"username": "someone", "languages": [code]}, format="json")
    corpus = client_for(world.curator).patch(f"/api/corpora/{world.corpus.pk}/", {"languages": [code]}, format="json")
    for response in (project, invite, corpus):
        assert response.status_code == 400 and "languages" in response.json(), response.content
