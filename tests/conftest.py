"""Test-wide fixtures: named personas (healthchecks' Alice/Bob style) and a schema factory."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings

# llama.cpp's OpenAI-compatible server with the packaged Gemma 3 270M, started once per session when a test asks.
from tests.fixtures.llm_server import llama_server  # noqa: F401

# Every Redis key this test run's Celery writes (in this process and in the workers it starts) begins with this.
CELERY_KEY_PREFIX = f"sentio-test-{uuid.uuid4().hex[:12]}:"


def on_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def pytest_configure(config: pytest.Config) -> None:
    if not on_postgres() and os.environ.get("SENTIO_TEST_ALLOW_SQLITE") != "1":
        raise pytest.UsageError(
            "The test suite runs against real PostgreSQL: run ./scripts/test, or set DATABASE_URL "
            "(or SENTIO_TEST_ALLOW_SQLITE=1 for a quick local run)."
        )
    _celery_keys_of_this_run()


def _celery_keys_of_this_run() -> None:
    """Give the run its own Redis key prefix before anything connects to the broker, so test runs sharing a Redis
    database cannot take each other's messages and each deletes only its own keys (tests/workers/conftest.py)."""
    if not str(settings.CELERY_BROKER_URL).startswith("redis://"):
        return
    from config.celery import app

    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": CELERY_KEY_PREFIX}
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    app.conf.broker_transport_options = options


def pytest_unconfigure(config: pytest.Config) -> None:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix")
    if prefix != CELERY_KEY_PREFIX:
        return
    import redis

    try:
        client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:  # Redis went away: nothing of ours is left in it to delete
        pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite, tests marked ``postgres("why")`` are skipped with their reason, so the run says what it left out."""
    if on_postgres():
        return
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL: {reason}" if reason else "needs PostgreSQL"))


@pytest.fixture
def make_user(db, django_user_model):  # type: ignore[no-untyped-def]
    def make(username: str, **extra):  # type: ignore[no-untyped-def]
        return django_user_model.objects.create_user(username=username, password="correct horse battery", **extra)

    return make


@pytest.fixture
def lead(make_user):  # type: ignore[no-untyped-def]
    return make_user("lena_lead")


@pytest.fixture
def reviewer(make_user):  # type: ignore[no-untyped-def]
    return make_user("rahul_reviewer")


@pytest.fixture
def annotator(make_user):  # type: ignore[no-untyped-def]
    return make_user("anika_annotator")


@pytest.fixture
def outsider(make_user):  # type: ignore[no-untyped-def]
    return make_user("oscar_outsider")


EMOTION_QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger", "fear", "neutral"], "required": True},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "sadness", "anger", "fear"], "intensity": True},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.1},
    {"key": "rationale", "type": "text", "max_length": 500},
    {"key": "regions", "type": "segments", "labels": ["joy", "anger"]},
]


@pytest.fixture
def emotion_schema(db):  # type: ignore[no-untyped-def]
    from annotation.services import label_schema_create

    return label_schema_create(
        name="Emotions", slug="emotions", questions=EMOTION_QUESTIONS, perspectives=["writer", "reader"]
    )


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):  # type: ignore[no-untyped-def]
    """Personas are made in most tests; the production hasher's cost would dominate the suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache():  # type: ignore[no-untyped-def]
    """Throttle counts live in the shared cache (a folder in the embedded default): each test starts from none."""
    from django.core.cache import cache

    cache.clear()
    yield
