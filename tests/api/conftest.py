"""A small world for API tests.

- ``curator`` created the corpus "Main"; ``lead`` leads project "Main labels" on it, with
  ``reviewer`` and ``annotator`` as members; ``outsider`` belongs to nothing there but created
  his own corpus "Private" with a project of his own. Both projects use the schema ``lead`` created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from annotation.models import Annotation, LabelSchemaVersion, Origin, Project, Role
from annotation.services import annotation_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker, Utterance


@dataclass
class World:
    curator: Any
    lead: Any
    reviewer: Any
    annotator: Any
    outsider: Any
    schema: LabelSchemaVersion
    corpus: Corpus
    project: Project
    private_corpus: Corpus
    private_project: Project
    conversation: Conversation
    speaker: Speaker
    utterances: list[Utterance]
    private_utterance: Utterance
    imported_annotation: Annotation
    project_annotation: Annotation
    private_annotation: Annotation


def make_utterance(corpus: Corpus, text: str, language: str = "mr", **fields: Any) -> Utterance:
    import hashlib

    digest = hashlib.blake2b(f"{corpus.pk}:{text}:{fields.get('external_id', '')}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(
        corpus=corpus, language=language_get_or_create(language), text=text, content_hash=digest, **fields
    )


@pytest.fixture
def world(make_user, lead, reviewer, annotator, outsider, emotion_schema) -> World:
    curator = make_user("cora_curator")
    emotion_schema.schema.created_by = lead  # the lead owns the schema; the outsider only uses it
    emotion_schema.schema.save(update_fields=["created_by"])
    corpus = Corpus.objects.create(name="Main", slug="main", license="CC-BY-4.0", created_by=curator)
    project = project_create(name="Main labels", corpus=corpus, schema_version=emotion_schema, created_by=lead)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR, languages=[language_get_or_create("mr")])
    private_corpus = Corpus.objects.create(name="Private", slug="private", license="proprietary", created_by=outsider)
    private_project = project_create(
        name="Private labels", corpus=private_corpus, schema_version=emotion_schema, created_by=outsider
    )
    conversation = Conversation.objects.create(corpus=corpus, external_id="dia1")
    speaker = Speaker.objects.create(corpus=corpus, external_id="Joey")
    utterances = [
        make_utterance(corpus, "मी खूप आनंदी आहे", external_id="u1", conversation=conversation, turn_index=0, speaker=speaker),
        make_utterance(corpus, "How you doin'?", language="en", external_id="u2", conversation=conversation, turn_index=1),
        make_utterance(corpus, "<script>alert('x')</script>", language="en", external_id="x3"),
    ]
    utterances[1].audio.save("u2.wav", ContentFile(b"RIFF fake wav"), save=True)
    private_utterance = make_utterance(private_corpus, "secret", language="en", external_id="p1")
    imported = annotation_create(
        utterance=utterances[0], schema_version=emotion_schema, value={"emotion": "joy"}, external_rater="r1"
    )
    in_project = annotation_create(
        utterance=utterances[1], schema_version=emotion_schema, value={"emotion": "anger", "emotions": {"fear": 2}},
        annotator=annotator, project=project,
    )
    private = annotation_create(
        utterance=private_utterance, schema_version=emotion_schema, value={"emotion": "sadness"},
        annotator=outsider, project=private_project,
    )
    assert imported.origin == Origin.HUMAN
    return World(
        curator=curator, lead=lead, reviewer=reviewer, annotator=annotator, outsider=outsider, schema=emotion_schema,
        corpus=corpus, project=project, private_corpus=private_corpus, private_project=private_project,
        conversation=conversation, speaker=speaker, utterances=utterances, private_utterance=private_utterance,
        imported_annotation=imported, project_annotation=in_project, private_annotation=private,
    )


@pytest.fixture
def client_for():
    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    # Personas are made per test; the real PBKDF2 work factor would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
