"""Fixtures for the distribution tests: a small multilingual corpus with conversations, and a project factory."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from annotation.distribution.services import project_items_sync
from annotation.services import label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker, Utterance

SIMPLE_QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger", "neutral"], "required": True},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.5},
    {"key": "rationale", "type": "text", "max_length": 200},
]


def utterance_make(corpus: Corpus, text: str, code: str, **extra) -> Utterance:  # type: ignore[no-untyped-def]
    digest = hashlib.blake2b(f"{corpus.pk}:{text}:{code}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create(code), content_hash=digest, **extra)


def register_model(project, model_version: str, question_key: str = "emotion"):  # type: ignore[no-untyped-def]
    from annotation.models import ProjectModel

    return ProjectModel.objects.create(project=project, card_id="test-card", task="text_emotion",
                                       model_version=model_version, question_key=question_key)


@pytest.fixture
def simple_schema(db):  # type: ignore[no-untyped-def]
    return label_schema_create(name="Simple", slug="simple", questions=SIMPLE_QUESTIONS)


@pytest.fixture
def corpus(db):  # type: ignore[no-untyped-def]
    return Corpus.objects.create(name="Mixed", slug="mixed", license="CC-BY-4.0")


@pytest.fixture
def make_items(corpus):  # type: ignore[no-untyped-def]
    """Make ``count`` utterances in ``code``; returns them in creation order."""

    def make(count: int, code: str = "en", prefix: str = "line") -> list[Utterance]:
        return [utterance_make(corpus, f"{prefix} {code} {i}", code) for i in range(count)]

    return make


@pytest.fixture
def make_project(corpus, simple_schema, lead):  # type: ignore[no-untyped-def]
    def make(*, overlap: int = 1, members=(), sync: bool = True, models=(), **options):  # type: ignore[no-untyped-def]
        project = project_create(
            name="Project", corpus=corpus, schema_version=simple_schema, created_by=lead, overlap=overlap, **options
        )
        for version in models:  # models registered on the project for its emotion question
            register_model(project, version)
        for member in members:
            user, languages = member if isinstance(member, tuple) else (member, ())
            membership_set(project=project, user=user, role="annotator", languages=[language_get_or_create(c) for c in languages])
        if sync:
            project_items_sync(project)
        return project

    return make


@pytest.fixture
def conversation_corpus(corpus):  # type: ignore[no-untyped-def]
    """A three-turn Marathi/English conversation, and an Arabic line containing HTML."""
    conversation = Conversation.objects.create(corpus=corpus, external_id="dia-1")
    ravi = Speaker.objects.create(corpus=corpus, external_id="spk-r", attributes={"name": "Ravi"})
    meera = Speaker.objects.create(corpus=corpus, external_id="spk-m")
    turns = [
        utterance_make(corpus, "नमस्कार, कसे आहात?", "mr", conversation=conversation, turn_index=0, speaker=ravi),
        utterance_make(corpus, "I am fine", "en", conversation=conversation, turn_index=1, speaker=meera),
        utterance_make(corpus, "<script>alert(1)</script> & <b>bold</b>", "ar", conversation=conversation, turn_index=2, speaker=ravi),
    ]
    return turns


@pytest.fixture
def api(db):  # type: ignore[no-untyped-def]
    """A client per user (DRF's test client, authenticated as that user)."""

    def client_for(user):  # type: ignore[no-untyped-def]
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    """Personas are made in every test; the production hasher's cost would dominate the suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
