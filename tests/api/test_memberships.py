"""Removing members and changing roles: leads only, never leaving a project without a lead, holds released."""

from __future__ import annotations

import pytest

from annotation.distribution.services import next_item_reserve, project_items_sync
from annotation.models import Annotation, Membership, ProjectItem, Reservation, ReservationStatus, Role
from annotation.services import membership_set

pytestmark = pytest.mark.django_db


def members(world) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(Membership.objects.filter(project=world.project).values_list("user__username", "role"))


@pytest.mark.parametrize(("name", "expected"), [("reviewer", 403), ("annotator", 403), ("outsider", 404)])
def test_only_leads_remove_members(world, client_for, name, expected):
    before = members(world)
    response = client_for(getattr(world, name)).delete(f"/api/projects/{world.project.pk}/memberships/{world.annotator.pk}/")
    assert response.status_code == expected
    assert members(world) == before


def test_removing_an_annotator_keeps_their_annotations_and_frees_their_item(world, client_for):
    project_items_sync(world.project)
    handed = next_item_reserve(project=world.project, user=world.annotator)
    assert handed is not None
    item = ProjectItem.objects.get(pk=handed.item.pk)
    assert item.reserved_count == 1

    response = client_for(world.lead).delete(f"/api/projects/{world.project.pk}/memberships/{world.annotator.pk}/")

    assert response.status_code == 204
    assert world.annotator.username not in members(world)
    assert Annotation.objects.filter(pk=world.project_annotation.pk).exists()
    assert Reservation.objects.get(pk=handed.reservation.pk).status == ReservationStatus.EXPIRED
    assert ProjectItem.objects.get(pk=item.pk).reserved_count == 0
    # and the former member now sees nothing of the project
    assert client_for(world.annotator).get(f"/api/projects/{world.project.pk}/").status_code == 404


def test_removing_someone_who_is_not_a_member_is_a_404(world, client_for):
    client = client_for(world.lead)
    assert client.delete(f"/api/projects/{world.project.pk}/memberships/{world.outsider.pk}/").status_code == 404
    assert client.delete(f"/api/projects/{world.project.pk}/memberships/987654321/").status_code == 404


def test_the_only_lead_can_neither_leave_nor_be_demoted(world, client_for):
    client = client_for(world.lead)
    base = f"/api/projects/{world.project.pk}/memberships/"

    left = client.delete(f"{base}{world.lead.pk}/")
    demoted = client.post(base, {"username": world.lead.username, "role": "annotator"}, format="json")

    assert left.status_code == 400 and "only lead" in left.json()["user"][0]
    assert demoted.status_code == 400 and "only lead" in demoted.json()["role"][0]
    assert members(world)[world.lead.username] == Role.LEAD


def test_a_lead_may_step_down_once_another_lead_exists(world, client_for):
    membership_set(project=world.project, user=world.reviewer, role=Role.LEAD)
    client = client_for(world.lead)

    response = client.delete(f"/api/projects/{world.project.pk}/memberships/{world.lead.pk}/")

    assert response.status_code == 204
    assert members(world) == {world.reviewer.username: Role.LEAD, world.annotator.username: Role.ANNOTATOR}


# Invitations: nobody joins a project without accepting -------------------------------------------------------------


def invite(world, client_for, username, role="annotator", languages=()):  # type: ignore[no-untyped-def]
    return client_for(world.lead).post(
        f"/api/projects/{world.project.pk}/memberships/",
        {"username": username, "role": role, "languages": list(languages)}, format="json",
    )


def test_an_invited_user_joins_only_by_accepting(world, client_for):
    invited = invite(world, client_for, world.curator.username, role="reviewer", languages=["mr"])
    assert invited.status_code == 202, invited.content
    assert invited.json()["username"] == "cora_curator" and invited.json()["role"] == "reviewer"
    assert "cora_curator" not in members(world)
    curator = client_for(world.curator)
    assert curator.get(f"/api/projects/{world.project.pk}/").status_code == 404  # not a member yet
    pending = curator.get("/api/invitations/").json()["results"]
    assert [(p["project"], p["project_name"], p["invited_by"], p["languages"]) for p in pending] == [
        (world.project.pk, "Main labels", "lena_lead", ["mr"])
    ]
    # Nobody else can see or accept it.
    for other in (world.outsider, world.annotator):
        assert client_for(other).get("/api/invitations/").json()["results"] == []
        assert client_for(other).post(f"/api/invitations/{pending[0]['id']}/accept/").status_code == 404
    accepted = curator.post(f"/api/invitations/{pending[0]['id']}/accept/")
    assert accepted.status_code == 201 and accepted.json()["role"] == "reviewer"
    assert members(world)["cora_curator"] == Role.REVIEWER
    assert list(Membership.objects.get(project=world.project, user=world.curator).languages.values_list("code", flat=True)) == ["mr"]
    assert curator.get("/api/invitations/").json()["results"] == []
    assert curator.post(f"/api/invitations/{pending[0]['id']}/accept/").status_code == 404  # used up


def test_a_declined_invitation_changes_nothing_else(world, client_for):
    invite(world, client_for, world.outsider.username)
    outsider = client_for(world.outsider)
    invitation_id = outsider.get("/api/invitations/").json()["results"][0]["id"]
    assert outsider.post(f"/api/invitations/{invitation_id}/decline/").status_code == 204
    assert "oscar_outsider" not in members(world)
    assert client_for(world.lead).get(f"/api/projects/{world.project.pk}/invitations/").json()["results"] == []


def test_inviting_does_not_tell_which_user_names_exist(world, client_for):
    real = invite(world, client_for, world.outsider.username)
    made_up = invite(world, client_for, "nobody_by_that_name")
    assert real.status_code == made_up.status_code == 202
    strip = {"id", "username", "created_at"}
    assert {k: v for k, v in real.json().items() if k not in strip} == {
        k: v for k, v in made_up.json().items() if k not in strip
    }
    pending = client_for(world.lead).get(f"/api/projects/{world.project.pk}/invitations/").json()["results"]
    assert {p["username"] for p in pending} == {"oscar_outsider", "nobody_by_that_name"}


def test_a_members_role_changes_at_once_and_leads_withdraw_invitations(world, client_for):
    changed = invite(world, client_for, world.annotator.username, role="reviewer")
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"
    assert members(world)["anika_annotator"] == Role.REVIEWER
    invitation = invite(world, client_for, world.outsider.username).json()
    base = f"/api/projects/{world.project.pk}/invitations/"
    assert client_for(world.reviewer).get(base).status_code == 403
    assert client_for(world.reviewer).delete(f"{base}{invitation['id']}/").status_code == 403
    assert client_for(world.lead).delete(f"{base}{invitation['id']}/").status_code == 204
    assert client_for(world.outsider).get("/api/invitations/").json()["results"] == []
    assert client_for(world.lead).delete(f"{base}{invitation['id']}/").status_code == 404


def test_inviting_to_a_project_deleted_meanwhile_is_a_lookup_error(world):
    # Found by the long schemathesis run: a concurrent delete turned the invitation's commit into a 500.
    from annotation.models import Project
    from annotation.services import membership_invite

    stale = Project.objects.get(pk=world.project.pk)
    Project.objects.filter(pk=stale.pk).delete()
    with pytest.raises(LookupError):
        membership_invite(project=stale, username="someone", role="annotator")
