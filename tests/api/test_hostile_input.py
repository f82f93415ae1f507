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


# -- hostile JSON: each kind is a 400 naming the field, and nothing is written -------------------------------------

BEYOND_FLOAT = "9" * 400  # an integer no float can hold
BEYOND_BIGINT = "9" * 20
DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's json module can parse
NESTED_40 = "[" * 40 + "]" * 40  # parses, but deeper than the API takes
CLIENT_ID = "6f1c0c52-2a4e-4d8e-8b65-1c1a3a0f1d1"


def _submit(value: str, utterance: str = "{u}", n: int = 0) -> str:
    return '{"client_id": "%s%d", "utterance": %s, "value": %s}' % (CLIENT_ID, n, utterance, value)  # noqa: UP031


HOSTILE_JSON = [
    # integers beyond float range (OverflowError when compared with a float scale)
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy", "valence": %s}' % BEYOND_FLOAT), "value.valence"),  # noqa: UP031
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy", "regions": [{"start": 0, "end": %s, "label": "joy"}]}'  # noqa: UP031
                                          % BEYOND_FLOAT, n=1), "value.regions[0].end"),
    ("/api/projects/{p}/gold/", '{"utterance": {u}, "expected": {"emotion": "joy", "valence": %s}}' % BEYOND_FLOAT,  # noqa: UP031
     "expected.valence"),
    ("/api/schemas/", '{"name": "S", "slug": "s", "questions": [{"key": "v", "type": "numeric", "min": 1, "max": %s}]}'  # noqa: UP031
     % BEYOND_FLOAT, "questions[0].max"),
    ("/api/projects/{p}/review-queue/{u}/adjudicate/", '{"value": {"emotion": "joy", "valence": %s}}' % BEYOND_FLOAT,  # noqa: UP031
     "value.valence"),
    # numbers no float holds
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy", "valence": 1e400}', n=2), "value.valence"),
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy", "valence": NaN}', n=3), "value.valence"),
    # a numeric step that makes the scale overflow
    ("/api/schemas/", '{"name": "S", "slug": "s", "questions": [{"key": "v", "type": "numeric", "min": 1, "max": 5, '
                      '"step": 1e-300}]}', "questions[0].step"),
    ("/api/schemas/", '{"name": "S", "slug": "s", "questions": [{"key": "v", "type": "numeric", "min": -1e308, '
                      '"max": 1e308}]}', "questions[0].min"),
    # NUL characters bound for jsonb or text
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy", "rationale": "a\\u0000b"}', n=4), "value.rationale"),
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy", "x\\u0000": 1}', n=5), "value"),
    ("/api/schemas/", '{"name": "S", "slug": "s", "questions": [{"key": "e", "type": "single_choice", '
                      '"labels": ["a\\u0000"]}]}', "questions[0].labels[0]"),
    ("/api/projects/{p}/exports/", '{"splits": {"train\\u0000": 1.0}}', "splits"),
    # ids beyond bigint
    ("/api/projects/{p}/submit/", _submit('{"emotion": "joy"}', utterance=BEYOND_BIGINT, n=6), "utterance"),
    ("/api/projects/{p}/skip/", '{"utterance": %s, "reason": "x"}' % BEYOND_BIGINT, "utterance"),  # noqa: UP031
    ("/api/projects/{p}/gold/", '{"utterance": %s, "expected": {"emotion": "joy"}}' % BEYOND_BIGINT, "utterance"),  # noqa: UP031
    ("/api/projects/", '{"name": "P", "corpus": %s, "schema_version": 1}' % BEYOND_BIGINT, "corpus"),  # noqa: UP031
    ("/api/projects/{p}/preannotate/", '{"model": %s}' % BEYOND_BIGINT, "model"),  # noqa: UP031
    # deep nesting
    ("/api/projects/{p}/submit/", _submit(DEEP, n=8), "value"),
    ("/api/projects/{p}/submit/", _submit(NESTED_40, n=9), "value"),
    ("/api/schemas/", '{"name": "S", "slug": "s", "questions": %s}' % DEEP, "questions"),  # noqa: UP031
    ("/api/projects/{p}/", DEEP, "non_field_errors"),
]


@pytest.mark.parametrize(("url", "body", "field"), HOSTILE_JSON)
def test_hostile_json_is_a_400_naming_the_field_and_writes_nothing(world, client_for, url, body, field):
    from annotation.models import Annotation, LabelSchema, Project
    from jobs.models import Job

    utterance = world.utterances[0].pk
    url = url.replace("{p}", str(world.project.pk)).replace("{u}", str(utterance))
    before = (Annotation.objects.count(), LabelSchema.objects.count(), Project.objects.count(), Job.objects.count())
    method = "patch" if url.endswith(f"/projects/{world.project.pk}/") else "post"
    response = getattr(client_for(world.lead), method)(url, data=body.replace("{u}", str(utterance)),
                                                       content_type="application/json")
    assert response.status_code == 400, (url, response.status_code, response.content[:300])
    assert field in response.json(), response.json()
    assert (Annotation.objects.count(), LabelSchema.objects.count(), Project.objects.count(),
            Job.objects.count()) == before


def test_import_options_in_a_form_get_the_same_checks(world, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobs.models import Job

    for options, field in [('{"language": "en\\u0000"}', "language"), ('{"mapping": %s}' % NESTED_40, "mapping")]:  # noqa: UP031
        upload = SimpleUploadedFile("rows.csv", b"text\nhello\n", content_type="text/csv")
        response = client_for(world.curator).post(f"/api/corpora/{world.corpus.pk}/imports/",
                                                  {"files": [upload], "options": options}, format="multipart")
        assert response.status_code == 400, response.content
        assert field in response.json()["options"], response.json()
    assert not Job.objects.exists()


def test_json_bodies_only(world, client_for):
    """The JSON API reads JSON; a form-encoded body (whose numbers and nesting no JSON check sees) is refused."""
    response = client_for(world.lead).post("/api/corpora/", {"name": "Form", "license": "MIT"}, format="multipart")
    assert response.status_code == 415
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
        assert response.status_code == 400 and any(key.startswith("languages") for key in response.json()), response.content


@pytest.mark.parametrize("url", [f"/api/projects/{BEYOND_BIGINT}/submit/", f"/api/projects/{BEYOND_BIGINT}/next/",
                                 f"/api/projects/{{p}}/review-queue/{BEYOND_BIGINT}/adjudicate/"])
def test_path_ids_beyond_bigint_name_nothing_404_not_500(world, client_for, url):
    url = url.replace("{p}", str(world.project.pk))
    response = client_for(world.lead).post(url, data="{}", content_type="application/json")
    assert response.status_code == 404, (url, response.content[:300])
