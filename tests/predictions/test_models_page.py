"""The lead's Models page (/projects/<id>/models/): leads and staff open it, other members get 403, outsiders 404."""

from __future__ import annotations

import pytest
from django.test import Client


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_leads_open_the_models_page(world) -> None:  # type: ignore[no-untyped-def]
    response = _client(world.lead).get(f"/projects/{world.project.pk}/models/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-page="project-models"' in body and f'data-project-id="{world.project.pk}"' in body
    assert "csrftoken" in response.cookies  # the UI posts with the token from this cookie


def test_staff_open_the_models_page(world, make_user) -> None:  # type: ignore[no-untyped-def]
    staff = make_user("sam_staff", is_staff=True)
    assert _client(staff).get(f"/projects/{world.project.pk}/models/").status_code == 200


@pytest.mark.parametrize("persona, expected", [("reviewer", 403), ("annotator", 403), ("outsider", 404)])
def test_other_members_get_403_and_outsiders_404(world, persona, expected) -> None:  # type: ignore[no-untyped-def]
    assert _client(getattr(world, persona)).get(f"/projects/{world.project.pk}/models/").status_code == expected


def test_missing_project_is_404_and_anonymous_users_sign_in_first(world) -> None:  # type: ignore[no-untyped-def]
    assert _client(world.lead).get("/projects/999999/models/").status_code == 404
    response = Client().get(f"/projects/{world.project.pk}/models/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
