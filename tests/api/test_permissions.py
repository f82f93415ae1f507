"""Who can list, see, edit and import what: the permission matrix with named personas."""

from __future__ import annotations

import pytest

from annotation.models import LabelSchemaVersion, Role
from annotation.services import membership_set
from tests.api.conftest import ids

pytestmark = pytest.mark.django_db

PERSONAS = ["curator", "lead", "reviewer", "annotator", "outsider"]


def persona(world, name):
    return getattr(world, name)


@pytest.mark.parametrize(
    ("name", "sees_main", "sees_private"),
    [("curator", True, False), ("lead", True, False), ("reviewer", True, False), ("annotator", True, False),
     ("outsider", False, True)],
)
def test_corpus_visibility(world, client_for, name, sees_main, sees_private):
    client = client_for(persona(world, name))
    listed = ids(client.get("/api/corpora/"))
    assert (world.corpus.pk in listed) is sees_main
    assert (world.private_corpus.pk in listed) is sees_private
    assert client.get(f"/api/corpora/{world.corpus.pk}/").status_code == (200 if sees_main else 404)
    assert client.get(f"/api/corpora/{world.private_corpus.pk}/").status_code == (200 if sees_private else 404)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("curator", 200), ("lead", 200), ("reviewer", 403), ("annotator", 403), ("outsider", 404)],
)
def test_corpus_edit(world, client_for, name, expected):
    response = client_for(persona(world, name)).patch(
        f"/api/corpora/{world.corpus.pk}/", {"description": f"edited by {name}"}, format="json"
    )
    assert response.status_code == expected, response.content
    world.corpus.refresh_from_db()
    assert (world.corpus.description == f"edited by {name}") is (expected == 200)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("reviewer", 403), ("annotator", 403), ("outsider", 404)],
)
def test_corpus_import_refused_before_any_upload_is_read(world, client_for, name, expected):
    response = client_for(persona(world, name)).post(f"/api/corpora/{world.corpus.pk}/imports/", {}, format="multipart")
    assert response.status_code == expected


@pytest.mark.parametrize(
    ("name", "role"),
    [("lead", "lead"), ("reviewer", "reviewer"), ("annotator", "annotator")],
)
def test_members_see_their_project_with_their_role(world, client_for, name, role):
    client = client_for(persona(world, name))
    listed = client.get("/api/projects/").json()["results"]
    assert [(p["id"], p["my_role"]) for p in listed] == [(world.project.pk, role)]
    assert client.get(f"/api/projects/{world.project.pk}/").json()["my_role"] == role
    memberships = client.get(f"/api/projects/{world.project.pk}/memberships/").json()["results"]
    everyone = {"lena_lead": "lead", "rahul_reviewer": "reviewer", "anika_annotator": "annotator"}
    # Leads see every member; the others only themselves (user names are not for everyone to list).
    expected = everyone if role == "lead" else {persona(world, name).username: role}
    assert {m["username"]: m["role"] for m in memberships} == expected
    assert client.get(f"/api/projects/{world.private_project.pk}/").status_code == 404


@pytest.mark.parametrize("name", ["curator", "outsider"])
def test_non_members_get_404_for_a_project_and_do_not_see_it(world, client_for, name):
    client = client_for(persona(world, name))
    assert world.project.pk not in ids(client.get("/api/projects/"))
    base = f"/api/projects/{world.project.pk}/"
    assert client.get(base).status_code == 404
    assert client.get(base + "memberships/").status_code == 404
    assert client.patch(base, {"name": "mine"}, format="json").status_code == 404
    assert client.delete(base).status_code == 404
    assert client.post(base + "memberships/", {"username": name, "role": "lead"}, format="json").status_code == 404
    # The 404 for an existing project reads exactly like the one for a project that never existed.
    assert client.get(base).json() == client.get("/api/projects/999999/").json()


@pytest.mark.parametrize(
    "path",
    ["/api/annotations/?project={project}", "/api/jobs/?project={project}", "/api/projects/?corpus={corpus}",
     "/api/jobs/?corpus={corpus}", "/api/conversations/?corpus={corpus}", "/api/utterances/?corpus={corpus}"],
)
def test_filters_do_not_reveal_whether_hidden_objects_exist(world, client_for, path):
    client = client_for(world.outsider)
    hidden = client.get(path.format(project=world.project.pk, corpus=world.corpus.pk))
    missing = client.get(path.format(project=999999, corpus=999999))
    assert hidden.status_code == missing.status_code == 200
    assert hidden.json() == missing.json() and hidden.json()["results"] == []


@pytest.mark.parametrize(("name", "expected"), [("lead", 200), ("reviewer", 403), ("annotator", 403)])
def test_only_leads_change_project_settings(world, client_for, name, expected):
    response = client_for(persona(world, name)).patch(
        f"/api/projects/{world.project.pk}/", {"guidelines": "Label the speaker's emotion"}, format="json"
    )
    assert response.status_code == expected
    world.project.refresh_from_db()
    assert (world.project.guidelines == "Label the speaker's emotion") is (expected == 200)


@pytest.mark.parametrize(("name", "expected"), [("lead", 202), ("reviewer", 403), ("annotator", 403)])
def test_only_leads_invite(world, client_for, name, expected):
    response = client_for(persona(world, name)).post(
        f"/api/projects/{world.project.pk}/memberships/", {"username": "cora_curator", "role": "reviewer"}, format="json"
    )
    assert response.status_code == expected
    # An invitation, not a membership: the curator joins only by accepting it.
    assert world.project.invitations.filter(username="cora_curator").exists() is (expected == 202)
    assert not world.project.memberships.filter(user=world.curator).exists()


@pytest.mark.parametrize(("name", "expected"), [("reviewer", 403), ("annotator", 403), ("lead", 204)])
def test_only_leads_delete_a_project(world, client_for, name, expected):
    assert client_for(persona(world, name)).delete(f"/api/projects/{world.project.pk}/").status_code == expected


@pytest.mark.parametrize(
    ("name", "expected_utterances"),
    [("curator", {"u1", "u2", "x3"}), ("annotator", {"u1", "u2", "x3"}), ("outsider", {"p1"})],
)
def test_utterances_conversations_speakers_follow_the_corpus(world, client_for, name, expected_utterances):
    client = client_for(persona(world, name))
    rows = client.get("/api/utterances/").json()["results"]
    assert {u["external_id"] for u in rows} == expected_utterances
    sees_main = "u1" in expected_utterances
    assert (world.conversation.pk in ids(client.get("/api/conversations/"))) is sees_main
    assert (world.speaker.pk in ids(client.get("/api/speakers/"))) is sees_main
    assert client.get(f"/api/utterances/{world.utterances[0].pk}/").status_code == (200 if sees_main else 404)
    assert client.get(f"/api/conversations/{world.conversation.pk}/").status_code == (200 if sees_main else 404)


@pytest.mark.parametrize(
    ("name", "imported", "in_project", "private"),
    [("curator", True, False, False), ("lead", True, True, False), ("reviewer", True, True, False),
     ("annotator", False, True, False), ("outsider", False, False, True)],
)
def test_annotation_visibility(world, client_for, name, imported, in_project, private):
    client = client_for(persona(world, name))
    listed = ids(client.get("/api/annotations/"))
    assert (world.imported_annotation.pk in listed) is imported
    assert (world.project_annotation.pk in listed) is in_project
    assert (world.private_annotation.pk in listed) is private
    expected = 200 if in_project else 404
    assert client.get(f"/api/annotations/{world.project_annotation.pk}/").status_code == expected


def test_staff_see_everything(world, client_for, make_user):
    staff = make_user("sam_staff", is_staff=True)
    client = client_for(staff)
    assert {world.corpus.pk, world.private_corpus.pk} <= ids(client.get("/api/corpora/"))
    assert {world.project.pk, world.private_project.pk} <= ids(client.get("/api/projects/"))
    assert client.patch(f"/api/projects/{world.private_project.pk}/", {"overlap": 3}, format="json").status_code == 200
    assert client.patch(f"/api/corpora/{world.private_corpus.pk}/", {"source": "x"}, format="json").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/corpora/", "/api/utterances/", "/api/projects/", "/api/schemas/", "/api/jobs/", "/api/languages/",
     "/api/annotations/"],
)
def test_anonymous_clients_are_refused(world, client_for, path):
    response = client_for(None).get(path)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_any_signed_in_user_creates_corpora_and_schemas(world, client_for):
    client = client_for(world.outsider)
    created = client.post("/api/corpora/", {"name": "Oscar's corpus", "license": "CC0-1.0"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "oscars-corpus" and created.json()["created_by"] == "oscar_outsider"
    schema = client.post(
        "/api/schemas/",
        {"name": "Sentiment", "slug": "sentiment", "questions": [{"key": "polarity", "type": "single_choice", "labels": ["pos", "neg"]}]},
        format="json",
    )
    assert schema.status_code == 201, schema.content
    assert schema.json()["created_by"] == "oscar_outsider"
    # Schemas are shared vocabulary: everyone reads them, but not who made them (user names are not for all).
    listed = client_for(world.annotator).get("/api/schemas/").json()["results"]
    assert {s["id"]: s["created_by"] for s in listed} == {schema.json()["id"]: None, world.schema.schema_id: None}
    assert client_for(world.lead).get(f"/api/schemas/{world.schema.schema_id}/").json()["created_by"] == "lena_lead"


# The outsider leads a project of his own using the lead's schema: that lets him use it, never change it.
@pytest.mark.parametrize(
    ("name", "expected"),
    [("lead", 201), ("co_lead", 201), ("staff", 201), ("outsider", 403), ("reviewer", 403), ("annotator", 403),
     ("curator", 403)],
)
def test_schema_versions_are_added_by_its_owner_the_owners_co_leads_or_staff(
    world, client_for, make_user, name, expected
):
    if name == "co_lead":
        user = make_user("colin_colead")
        membership_set(project=world.project, user=user, role=Role.LEAD)
    elif name == "staff":
        user = make_user("sam_staff", is_staff=True)
    else:
        user = persona(world, name)
    versions_before = LabelSchemaVersion.objects.filter(schema_id=world.schema.schema_id).count()
    response = client_for(user).post(
        f"/api/schemas/{world.schema.schema_id}/versions/",
        {"questions": [{"key": "emotion", "type": "single_choice", "labels": ["joy", "anger"]}]},
        format="json",
    )
    assert response.status_code == expected, response.content
    versions_after = LabelSchemaVersion.objects.filter(schema_id=world.schema.schema_id).count()
    assert versions_after == versions_before + (expected == 201)


def test_a_schema_whose_owner_is_gone_is_versioned_by_staff_only(world, client_for, make_user):
    world.schema.schema.created_by = None
    world.schema.schema.save(update_fields=["created_by"])
    body = {"questions": [{"key": "emotion", "type": "single_choice", "labels": ["joy"]}]}
    url = f"/api/schemas/{world.schema.schema_id}/versions/"
    assert client_for(world.lead).post(url, body, format="json").status_code == 403
    assert client_for(make_user("sam_staff", is_staff=True)).post(url, body, format="json").status_code == 201


@pytest.mark.parametrize(("name", "expected"), [("curator", 201), ("lead", 201), ("annotator", 400), ("outsider", 400)])
def test_who_may_start_a_project_on_a_corpus(world, client_for, name, expected):
    response = client_for(persona(world, name)).post(
        "/api/projects/", {"name": "Second pass", "corpus": world.corpus.pk, "schema_version": world.schema.pk},
        format="json",
    )
    assert response.status_code == expected, response.content
    if expected == 400:
        assert "corpus" in response.json()
    else:
        assert response.json()["my_role"] == "lead"
