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
