"""Scripts sign in with a token; browser sessions need the CSRF token to write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
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


def test_a_deactivated_user_is_refused_at_once_and_their_token_is_gone(world):
    client, _ = _token_client(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    world.curator.is_active = False
    world.curator.save()
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."
    assert not Token.objects.filter(user=world.curator).exists()
    # Reactivated, the old token stays dead: the user signs in for a new one.
    world.curator.is_active = True
    world.curator.save()
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."


def test_a_password_change_rotates_the_token_at_once(world):
    client, token = _token_client(world.curator)
    world.curator.last_login = timezone.now()
    world.curator.save(update_fields=["last_login"])  # what every sign-in saves: the token stays
    assert client.get("/api/corpora/").status_code == 200
    world.curator.set_password("a new and better passphrase")
    world.curator.save()
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."
    fresh = APIClient().post(
        "/api/auth/token/", {"username": "cora_curator", "password": "a new and better passphrase"}, format="json"
    )
    assert fresh.status_code == 200 and fresh.json()["token"] != token.key


def test_a_password_changed_in_the_admin_rotates_the_token(world, client, make_user):
    api_client, token = _token_client(world.curator)
    client.force_login(make_user("ada_admin", is_staff=True, is_superuser=True))
    url = f"/admin/auth/user/{world.curator.pk}/password/"
    response = client.post(url, {"password1": "Another-passphrase-42", "password2": "Another-passphrase-42"})
    assert response.status_code == 302, response.content
    assert api_client.get("/api/corpora/").json()["detail"] == "Invalid token."


def test_tokens_expire(world, settings):
    client, token = _token_client(world.curator)
    settings.TOKEN_TTL = timedelta(days=30)
    Token.objects.filter(pk=token.key).update(created=timezone.now() - timedelta(days=29))
    assert client.get("/api/corpora/").status_code == 200
    Token.objects.filter(pk=token.key).update(created=timezone.now() - timedelta(days=31))
    refused = client.get("/api/corpora/")
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]
    assert not Token.objects.filter(pk=token.key).exists()
    # Signing in again gives a new token (an expired one is never handed out again).
    again = APIClient().post("/api/auth/token/", {"username": "cora_curator", "password": "correct horse battery"}, format="json")
    assert again.status_code == 200 and again.json()["token"] != token.key


def test_a_token_the_admin_gives_to_someone_else_is_noticed_at_once(world):
    client, token = _token_client(world.curator)
    assert client.get("/api/projects/").status_code == 200
    proxy = TokenProxy.objects.get(pk=token.key)  # what DRF's admin edits
    proxy.user = world.lead
    proxy.save()
    assert client.get("/api/projects/").json()["results"][0]["id"] == world.project.pk


# The tokens page -----------------------------------------------------------------------------------------------------


def test_the_tokens_page_lists_revokes_and_makes_tokens(world, client):
    api_client, token = _token_client(world.curator)
    assert client.get("/accounts/tokens/").status_code == 302  # sign in first
    client.force_login(world.curator)
    page = client.get("/accounts/tokens/")
    html = page.content.decode()
    assert page.status_code == 200 and f"<code>{token.key[:6]}…</code>" in html and token.key not in html
    assert page["Cache-Control"] == "no-store"
    expires = (token.created + timedelta(days=30)).strftime("%Y-%m-%d")
    assert expires in html

    revoked = client.post("/accounts/tokens/", {"action": "revoke"})
    assert revoked.status_code == 200 and "You have no API token." in revoked.content.decode()
    assert api_client.get("/api/corpora/").json()["detail"] == "Invalid token."

    made = client.post("/accounts/tokens/", {"action": "create"})
    new_key = Token.objects.get(user=world.curator).key
    assert new_key in made.content.decode()  # shown once, on this answer
    assert new_key not in client.get("/accounts/tokens/").content.decode()
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert fresh.get("/api/corpora/").status_code == 200
    assert client.post("/accounts/tokens/", {"action": "steal"}).status_code == 400


def test_the_tokens_page_needs_the_csrf_token(world):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.curator)
    assert browser.post("/accounts/tokens/", {"action": "create"}).status_code == 403
    assert not Token.objects.filter(user=world.curator).exists()


def test_replacing_a_token_refuses_the_old_one_at_once(world):
    from accounts.services import api_token_replace

    client, old = _token_client(world.curator)
    assert client.get("/api/corpora/").status_code == 200
    new = api_token_replace(user=world.curator)
    assert new.key != old.key and list(Token.objects.filter(user=world.curator)) == [new]
    assert client.get("/api/corpora/").json()["detail"] == "Invalid token."
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {new.key}")
    assert fresh.get("/api/corpora/").status_code == 200


@pytest.mark.postgres("two connections replacing one user's token at once need row locks")
@pytest.mark.django_db(transaction=True)
def test_two_replacements_at_once_both_succeed_and_one_token_is_left(make_user):
    import threading

    from django.db import connection

    from accounts.services import api_token_replace

    user = make_user("twin_tabs")
    Token.objects.create(user=user)
    barrier, keys, errors = threading.Barrier(2), [], []

    def replace() -> None:
        try:
            barrier.wait(timeout=10)
            keys.append(api_token_replace(user=user).key)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=replace) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(keys) == 2
    assert list(Token.objects.filter(user=user).values_list("key", flat=True)) in ([keys[0]], [keys[1]])
