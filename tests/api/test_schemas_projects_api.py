"""Label schemas and versions, projects, memberships and annotations through the API."""

from __future__ import annotations

import pytest

from annotation.models import LabelSchemaVersion, Origin, Role
from annotation.services import annotation_create
from tests.api.conftest import ids

pytestmark = pytest.mark.django_db

SENTIMENT = [{"key": "polarity", "type": "single_choice", "labels": ["pos", "neg"]}]


def test_schema_create_makes_version_1(world, client_for):
    response = client_for(world.annotator).post(
        "/api/schemas/", {"name": "Sentiment", "slug": "sentiment", "questions": SENTIMENT, "perspectives": ["reader"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created_by"] == "anika_annotator"
    assert [(v["version"], v["questions"], v["perspectives"]) for v in body["versions"]] == [(1, SENTIMENT, ["reader"])]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"questions": []}, "questions"),
        ({"questions": [{"key": "Bad Key", "type": "single_choice", "labels": ["a"]}]}, "questions[0].key"),
        ({"questions": [{"key": "e", "type": "single_choice", "labels": []}]}, "questions[0].labels"),
        ({"questions": [{"key": "e", "type": "colour"}]}, "questions[0].type"),
        ({"questions": [{"key": "v", "type": "numeric", "min": 5, "max": 1}]}, "questions[0].min"),
        ({"questions": SENTIMENT, "perspectives": ["Reader!"]}, "perspectives"),
        ({"questions": SENTIMENT, "slug": "emotions"}, "slug"),
        ({"questions": SENTIMENT, "slug": "no spaces"}, "slug"),
        ({"name": ""}, "name"),
        ({"questions": None}, "questions"),
        ({"questions": "emotion"}, "questions"),
    ],
)
def test_schema_errors_are_400_naming_the_field(world, client_for, payload, field):
    body = {"name": "S", "slug": "s-1", "questions": SENTIMENT, **payload}
    response = client_for(world.lead).post("/api/schemas/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not LabelSchemaVersion.objects.filter(schema__slug="s-1").exists()


def test_versions_number_on_and_errors_name_the_field(world, client_for):
    client = client_for(world.lead)
    url = f"/api/schemas/{world.schema.schema_id}/versions/"
    created = client.post(url, {"questions": SENTIMENT}, format="json")
    assert created.status_code == 201 and created.json()["version"] == 2
    bad = client.post(url, {"questions": [{"key": "polarity", "type": "multi_label", "labels": ["a", "a"]}]}, format="json")
    assert bad.status_code == 400 and "questions[0].labels" in bad.json()
    missing = client.post(url, {}, format="json")
    assert missing.status_code == 400 and "questions" in missing.json()
    assert client.post("/api/schemas/999999/versions/", {"questions": SENTIMENT}, format="json").status_code == 404
    listed = client.get(f"/api/schemas/{world.schema.schema_id}/").json()
    assert [v["version"] for v in listed["versions"]] == [2, 1]


def test_project_create_makes_the_creator_lead(world, client_for):
    client = client_for(world.curator)
    response = client.post(
        "/api/projects/",
        {"name": "Marathi pass", "corpus": world.corpus.pk, "schema_version": world.schema.pk, "languages": ["mr"],
         "overlap": 3, "ordering_strategy": "random"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["my_role"], body["languages"], body["overlap"], body["created_by"]) == ("lead", ["mr"], 3, "cora_curator")
    members = client.get(f"/api/projects/{body['id']}/memberships/").json()["results"]
    assert [(m["username"], m["role"]) for m in members] == [("cora_curator", "lead")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"overlap": 0}, "overlap"),
        ({"overlap": 51}, "overlap"),
        ({"gold_rate": 1.5}, "gold_rate"),
        ({"reservation_seconds": 5}, "reservation_seconds"),
        ({"ordering_strategy": "alphabetical"}, "ordering_strategy"),
        ({"suggestion_policy": "always"}, "suggestion_policy"),
        ({"languages": ["zz"]}, "languages"),
        ({"name": ""}, "name"),
        ({"overlap": "many"}, "overlap"),
    ],
)
def test_project_setting_errors_are_400_naming_the_field(world, client_for, change, field):
    response = client_for(world.lead).patch(f"/api/projects/{world.project.pk}/", change, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_project_corpus_and_schema_are_fixed_and_hidden_corpora_do_not_exist(world, client_for):
    client = client_for(world.lead)
    client.patch(f"/api/projects/{world.project.pk}/", {"corpus": world.private_corpus.pk}, format="json")
    world.project.refresh_from_db()
    assert world.project.corpus_id == world.corpus.pk
    hidden = client.post(
        "/api/projects/", {"name": "Steal", "corpus": world.private_corpus.pk, "schema_version": world.schema.pk},
        format="json",
    )
    assert hidden.status_code == 400 and "corpus" in hidden.json()
    no_version = client.post(
        "/api/projects/", {"name": "X", "corpus": world.corpus.pk, "schema_version": 999999}, format="json"
    )
    assert no_version.status_code == 400 and "schema_version" in no_version.json()


def test_membership_invite_and_role_change(world, client_for):
    client = client_for(world.lead)
    url = f"/api/projects/{world.project.pk}/memberships/"
    invited = client.post(url, {"username": "cora_curator", "role": "annotator", "languages": ["mr", "en"]}, format="json")
    assert invited.status_code == 202, invited.content
    assert invited.json()["username"] == "cora_curator" and sorted(invited.json()["languages"]) == ["en", "mr"]
    curator = client_for(world.curator)
    invitation = curator.get("/api/invitations/").json()["results"][0]
    joined = curator.post(f"/api/invitations/{invitation['id']}/accept/")
    assert joined.status_code == 201 and sorted(joined.json()["languages"]) == ["en", "mr"]
    promoted = client.post(url, {"username": "cora_curator", "role": "reviewer"}, format="json")
    assert promoted.json()["role"] == "reviewer"
    assert world.project.memberships.get(user=world.curator).role == Role.REVIEWER
    # The new member now sees the project.
    assert world.project.pk in ids(client_for(world.curator).get("/api/projects/"))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "", "role": "annotator"}, "username"),
        ({"username": "cora_curator", "role": "boss"}, "role"),
        ({"username": "cora_curator", "languages": ["zz"]}, "languages"),
        ({"role": "annotator"}, "username"),
    ],
)
def test_membership_errors_are_400_naming_the_field(world, client_for, payload, field):
    response = client_for(world.lead).post(f"/api/projects/{world.project.pk}/memberships/", payload, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not world.project.memberships.filter(user=world.curator).exists()


def test_annotation_filters(world, client_for):
    model_made = annotation_create(
        utterance=world.utterances[0], schema_version=world.schema, value={"emotion": "neutral"}, origin=Origin.MODEL,
        model_version="xlm-emo-t@1", project=world.project,
    )
    client = client_for(world.reviewer)
    assert ids(client.get(f"/api/annotations/?project={world.project.pk}")) == {world.project_annotation.pk, model_made.pk}
    assert ids(client.get("/api/annotations/?origin=model")) == {model_made.pk}
    assert ids(client.get(f"/api/annotations/?utterance={world.utterances[0].pk}")) == {
        world.imported_annotation.pk, model_made.pk
    }
    # Filtering on someone else's project shows nothing of it.
    assert ids(client.get(f"/api/annotations/?project={world.private_project.pk}")) == set()
    assert client.get("/api/annotations/?origin=alien").status_code == 400
    assert ids(client.get("/api/annotations/?imported=true")) == {world.imported_annotation.pk}
    assert client.get("/api/annotations/?imported=perhaps").status_code == 400
    body = client.get(f"/api/annotations/{world.project_annotation.pk}/").json()
    # The project hides names from reviewers (the default quality policy); its leads see them.
    assert body["annotator"] is None and body["value"] == {"emotion": "anger", "emotions": {"fear": 2}}
    lead_view = client_for(world.lead).get(f"/api/annotations/{world.project_annotation.pk}/").json()
    assert lead_view["annotator"] == "anika_annotator"
