"""What an annotator's request costs the database: the statements of next and submit are bounded, the token is read
with its user in one query, and a kept connection's health check sends nothing while the server has said nothing,
yet still replaces a connection the server dropped."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.selectors import api_token_with_user_get

pytestmark = pytest.mark.postgres("prepared statements, the SQL functions and pg_terminate_backend are PostgreSQL's")


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    """Every statement this process sends, through Django's cursors or raw psycopg ones (a health check's too)."""
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def recording(cursor, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(query if isinstance(query, str) else str(query))
        return original(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def _token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_next_and_submit_cost_two_statements_each(make_project, make_items, annotator):  # type: ignore[no-untyped-def]
    make_items(3)
    project = make_project(overlap=1, members=[annotator])
    client = _token_client(annotator)
    client.post(f"/api/projects/{project.pk}/next/")  # the process reads the project's schema version once
    with statements_sent() as sent:
        handed = client.post(f"/api/projects/{project.pk}/next/")
    assert handed.status_code == 200 and handed.json()["reservation"]["resumed"], handed.content
    assert len(sent) == 2 and "authtoken_token" in sent[0] and "sentio_next_item" in sent[1], sent

    body = {"client_id": str(uuid.uuid4()), "utterance": handed.json()["utterance"]["id"], "value": {"emotion": "joy"},
            "next": True}
    with statements_sent() as sent:
        submitted = client.post(f"/api/projects/{project.pk}/submit/", body, format="json")
    assert submitted.status_code == 201, submitted.content
    assert submitted.json()["next"]["utterance"]["id"] != body["utterance"]
    assert len(sent) == 2 and "authtoken_token" in sent[0] and "sentio_submit_and_next" in sent[1], sent


def test_the_token_comes_with_its_user_in_one_query(annotator):  # type: ignore[no-untyped-def]
    key = Token.objects.create(user=annotator).key
    with statements_sent() as sent:
        token = api_token_with_user_get(key=key)
        assert token is not None and token.user.username == annotator.username and token.user.is_active
        assert token.user.pk == annotator.pk
    assert len(sent) == 1
    assert token.created == Token.objects.get(key=key).created
    assert api_token_with_user_get(key="0" * 40) is None


def test_a_token_with_a_nul_character_is_refused_not_a_500(annotator):  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    response = client.get("/api/projects/")
    assert response.status_code == 403 and response.json()["detail"] == "Invalid token."


def _terminate(backend_pid: int) -> None:
    """PostgreSQL ends that backend, as a restart or an administrator would, from a connection of its own."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or None, port=settings["PORT"] or None, user=settings["USER"] or None,
                         password=settings["PASSWORD"] or None, dbname=settings["NAME"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


@pytest.mark.django_db(transaction=True)
def test_the_health_check_sends_nothing_to_a_quiet_connection_and_replaces_a_dropped_one(annotator):  # type: ignore[no-untyped-def]
    assert connection.health_check_enabled
    client = _token_client(annotator)
    assert client.get("/api/projects/").status_code == 200
    with statements_sent() as sent:
        assert connection.is_usable()
    assert sent == []

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        dropped_pid = cursor.fetchone()[0]
    _terminate(dropped_pid)
    deadline = time.monotonic() + 10
    while connection.is_usable() and time.monotonic() < deadline:  # the server's goodbye is on its way
        time.sleep(0.05)
    assert not connection.is_usable()

    # A new request on the kept connection: Django's health check (done once per request) replaces it before the
    # token query, which goes through the prepared-statement helper.
    connection.health_check_done = False
    assert client.get("/api/projects/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != dropped_pid
