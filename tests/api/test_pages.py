"""The server-rendered shells of the reviewer's and lead's screens: who may open them, the styled 403/404 pages (JSON
under /api/), and the "New project" link shown only to who can start a project."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def page_for(client, user, url):  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client.get(url)


@pytest.mark.parametrize("screen", ["review", "items"])
@pytest.mark.parametrize(("who", "status"), [("outsider", 404), ("annotator", 403), ("reviewer", 200), ("lead", 200)])
def test_review_and_item_screens_are_for_reviewers_and_leads(world, client, screen, who, status):
    response = page_for(client, getattr(world, who), f"/projects/{world.project.pk}/{screen}/")
    assert response.status_code == status
    if status == 200:
        assert f'data-project-id="{world.project.pk}"' in response.content.decode()


@pytest.mark.parametrize(("who", "status"), [("outsider", 404), ("annotator", 403), ("reviewer", 403), ("lead", 200)])
def test_the_import_screen_is_for_leads(world, client, who, status):
    response = page_for(client, getattr(world, who), f"/projects/{world.project.pk}/import/")
    assert response.status_code == status
    if status == 200:
        assert f'data-corpus-id="{world.corpus.pk}"' in response.content.decode()


def test_error_pages_use_the_layout_and_say_why(world, client):
    forbidden = page_for(client, world.annotator, f"/projects/{world.project.pk}/import/")
    html = forbidden.content.decode()
    assert forbidden.status_code == 403 and '<header class="site-header">' in html and 'class="error-code">403' in html
    assert "Only the project&#x27;s leads can import" in html
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404 and 'class="error-code">404' in missing.content.decode()
    assert "Content-Security-Policy" in missing
    api = client.get("/api/no-such-endpoint/")
    assert api.status_code == 404 and api.json() == {"detail": "This page does not exist, or you cannot see it."}


@pytest.mark.parametrize(("who", "offered"), [("annotator", False), ("reviewer", False), ("lead", True), ("curator", True)])
def test_new_project_is_offered_only_to_who_can_start_one(world, client, who, offered):
    html = page_for(client, getattr(world, who), "/projects/").content.decode()
    assert ('href="/projects/new/"' in html) is offered
    assert client.get("/projects/new/").status_code == (200 if offered else 403)
