"""Scripts sign in with a token; browser sessions need the CSRF token to write."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token, TokenProxy
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_token_sign_in_for_scripts(world):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "lena_lead", "password": "correct horse battery"}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/projects/").json()["results"][0]["id"] == world.project.pk
    # The same token comes back on a second sign-in.
    again = APIClient().post("/api/auth/token/", {"username": "lena_lead", "password": "correct horse battery"}, format="json")
    assert again.json()["token"] == token


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"username": "lena_lead", "password": "wrong"}, "non_field_errors"), ({"username": "lena_lead"}, "password")],
)
def test_bad_credentials_are_400(world, payload, field):
    response = APIClient().post("/api/auth/token/", payload, format="json")
    assert response.status_code == 400 and field in response.json()
    assert "token" not in response.json()


def test_a_wrong_token_is_refused(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = client.get("/api/corpora/")
    # 403, not 401: session authentication comes first and sends no WWW-Authenticate challenge.
    assert response.status_code == 403 and response.json()["detail"] == "Invalid token."


def test_session_writes_need_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    refused = client.post("/api/corpora/", {"name": "No token", "license": "MIT"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def _token_client(user) -> tuple[APIClient, Token]:  # type: ignore[no-untyped-def]
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, token


def test_a_deleted_token_is_refused_at_once(world):
    client, token = _token_client(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    token.delete()
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."


def test_a_deactivated_user_is_refused_at_once(world):
    client, _ = _token_client(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    world.curator.is_active = False
    world.curator.save()
    assert client.get("/api/corpora/").json()["detail"] == "User inactive or deleted."


def test_a_token_the_admin_gives_to_someone_else_is_noticed_at_once(world):
    client, token = _token_client(world.curator)
    assert client.get("/api/projects/").status_code == 200
    proxy = TokenProxy.objects.get(pk=token.key)  # what DRF's admin edits
    proxy.user = world.lead
    proxy.save()
    assert client.get("/api/projects/").json()["results"][0]["id"] == world.project.pk
