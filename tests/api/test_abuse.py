"""Password guessing: lockouts on every sign-in door, a throttle on the token API, both keyed by the client address
that only a trusted proxy may state (X-Forwarded-For / X-Forwarded-Proto from anyone else are ignored)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle

pytestmark = pytest.mark.django_db

WRONG = "not the password"
PROXY = "10.9.8.7"


@pytest.fixture(autouse=True)
def limits(settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 10
    settings.SENTIO_TRUSTED_PROXIES = [PROXY]


def sign_in(door: str, username: str, password: str, **meta: str) -> int:
    client = Client(**meta)
    if door == "token":
        return APIClient(**meta).post("/api/auth/token/", {"username": username, "password": password}).status_code
    return client.post(door, {"username": username, "password": password}).status_code


@pytest.mark.parametrize("door", ["/accounts/login/", "/admin/login/", "token"])
def test_ten_wrong_passwords_lock_the_user_name_out_for_that_address(world, door):
    refused = 400 if door == "token" else 200  # the token API's 400, or the form shown again
    answers = [sign_in(door, "lena_lead", WRONG) for _ in range(10)]
    assert answers == [refused] * 9 + [429]  # the tenth wrong password locks the user name out for this address
    # Now even the right password is refused, from every door, with 429 and no password check.
    for any_door in ("/accounts/login/", "/admin/login/", "token"):
        assert sign_in(any_door, "lena_lead", "correct horse battery") == 429
    # Changing X-Forwarded-For from a client that is no trusted proxy changes nothing.
    assert sign_in(door, "lena_lead", "correct horse battery", HTTP_X_FORWARDED_FOR="203.0.113.9") == 429
    # Another address, or another user name, is not locked out.
    assert sign_in("token", "lena_lead", "correct horse battery", REMOTE_ADDR="198.51.100.4") == 200
    assert sign_in("token", "oscar_outsider", "correct horse battery") == 200


def test_behind_the_trusted_proxy_each_client_address_counts_on_its_own(world):
    via_proxy = {"REMOTE_ADDR": PROXY}
    for _ in range(10):
        assert sign_in("token", "lena_lead", WRONG, HTTP_X_FORWARDED_FOR="203.0.113.9", **via_proxy) in (400, 429)
    assert sign_in("token", "lena_lead", "correct horse battery", HTTP_X_FORWARDED_FOR="203.0.113.9", **via_proxy) == 429
    assert sign_in("token", "lena_lead", "correct horse battery", HTTP_X_FORWARDED_FOR="198.51.100.4", **via_proxy) == 200
    # The proxy appends the peer it saw: the right-most address that is not a trusted proxy is the client.
    spoofed = "203.0.113.9, 198.51.100.5"
    assert sign_in("token", "lena_lead", "correct horse battery", HTTP_X_FORWARDED_FOR=spoofed, **via_proxy) == 200


def test_the_token_api_throttle_ignores_forwarded_for_from_clients(world, monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    answers = [
        APIClient(HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").post("/api/auth/token/", {"username": "x", "password": "y"})
        .status_code
        for i in range(5)
    ]
    assert answers == [400, 400, 400, 429, 429]
    # Behind the trusted proxy the forwarded client address is what counts.
    other = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert other.post("/api/auth/token/", {"username": "x", "password": "y"}).status_code == 400


def test_forwarded_proto_is_believed_from_the_trusted_proxy_only(world, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    assert Client(HTTP_X_FORWARDED_PROTO="https").get("/").status_code == 301  # a client's claim: redirected
    assert Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https").get("/").status_code == 200
    assert Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="http").get("/").status_code == 301


def test_an_over_long_user_name_is_a_400_before_any_password_check(world):
    # Found by the production fuzz run: django-axes stores the user name of a failed sign-in in 255 characters.
    response = APIClient().post("/api/auth/token/", {"username": "u" * 300, "password": "x"}, format="multipart")
    assert response.status_code == 400 and "username" in response.json()
