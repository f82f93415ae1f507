"""Test-wide fixtures: named personas (healthchecks' Alice/Bob style) and a schema factory."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

# llama.cpp's OpenAI-compatible server with the packaged Gemma 3 270M, started once per session when a test asks.
from tests.fixtures.llm_server import llama_server  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine and os.environ.get("SENTIO_TEST_ALLOW_SQLITE") != "1":
        raise pytest.UsageError(
            "The test suite runs against real PostgreSQL: run ./scripts/test, or set DATABASE_URL "
            "(or SENTIO_TEST_ALLOW_SQLITE=1 for a quick local run)."
        )


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
