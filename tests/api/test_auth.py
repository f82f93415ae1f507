"""Scripts sign in with a token; browser sessions need the CSRF token to write."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token, TokenProxy
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from accounts import authentication

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


def test_a_change_other_processes_make_is_noticed_within_the_cache_seconds(world, settings, monkeypatch):
    settings.API_TOKEN_CACHE_SECONDS = 5
    client, token = _token_client(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    # Another process deletes the token: no signal reaches this one, so the row stays remembered...
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token WHERE key = %s", [token.key])
    assert client.get("/api/corpora/").status_code == 200
    # ...until the seconds are up.
    later = time.monotonic() + 6
    monkeypatch.setattr(authentication.time, "monotonic", lambda: later)
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."


def test_without_the_cache_every_request_reads_the_token(world, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    client, token = _token_client(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token WHERE key = %s", [token.key])
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."


def test_each_request_gets_its_own_user_object(world):
    client, _ = _token_client(world.curator)
    seen = []
    for _ in range(2):
        request = APIRequestFactory().get("/api/corpora/", HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"])
        user, _token = authentication.TokenAuthentication().authenticate(Request(request))  # type: ignore[misc]
        seen.append(user)
    assert seen[0] == seen[1] and seen[0] is not seen[1]


def test_a_token_the_admin_gives_to_someone_else_is_noticed_at_once(world):
    client, token = _token_client(world.curator)
    assert client.get("/api/projects/").status_code == 200
    proxy = TokenProxy.objects.get(pk=token.key)  # what DRF's admin edits
    proxy.user = world.lead
    proxy.save()
    # The lead sees their own project; the curator's remembered row is gone.
    assert client.get("/api/projects/").json()["results"][0]["id"] == world.project.pk


def test_a_row_read_while_a_token_changed_is_not_remembered(world, monkeypatch):
    _client, token = _token_client(world.curator)
    authentication.remembered_tokens_forget()
    real_fetch = authentication.fetchone_prepared

    def fetch_while_another_thread_deletes(sql, params):  # type: ignore[no-untyped-def]
        row = real_fetch(sql, params)
        authentication.remembered_tokens_forget()  # the other thread's signal, after our read
        return row

    monkeypatch.setattr(authentication, "fetchone_prepared", fetch_while_another_thread_deletes)
    assert authentication._user_row(token.key) is not None
    assert token.key not in authentication._REMEMBERED


def test_what_was_remembered_before_the_change_committed_is_forgotten_at_commit(world, django_capture_on_commit_callbacks):
    _client, token = _token_client(world.curator)
    with django_capture_on_commit_callbacks(execute=True):
        token.delete()
        # Another thread read the row before the delete committed, and remembered it.
        authentication._REMEMBERED[token.key] = (time.monotonic() + 5, ("stale",))
    assert token.key not in authentication._REMEMBERED
