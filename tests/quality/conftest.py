"""A small multi-rater world: one project on a two-language corpus, four annotators with seeded answers, a model.

Personas come from tests/conftest.py: ``lead`` created the project, ``reviewer`` reviews, ``annotator`` annotates
(and is one of the four raters), ``outsider`` belongs to nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotation.models import Annotation, LabelSchemaVersion, Origin, Project
from annotation.services import annotation_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus, Utterance

EMOTIONS = ["joy", "sadness", "anger", "fear", "neutral"]
MULTI = ["joy", "sadness", "anger", "fear"]


def utterance_make(corpus: Corpus, text: str, code: str) -> Utterance:
    digest = hashlib.blake2b(f"{corpus.pk}:{text}:{code}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create(code), content_hash=digest)


def answers_make(rng: np.random.Generator, truth: int, accuracy: float) -> dict[str, Any]:
    """A rater's answer: right with probability ``accuracy``; intensities and valence near the truth."""
    emotion = EMOTIONS[truth] if rng.random() < accuracy else EMOTIONS[int(rng.integers(0, len(EMOTIONS)))]
    chosen = {MULTI[truth % 4]: int(rng.integers(1, 4))}
    if rng.random() < 0.3:
        chosen[MULTI[(truth + 1) % 4]] = int(rng.integers(1, 4))
    valence = float(np.clip(round((1 + truth + rng.normal(0, 0.6)) * 2) / 2, 1, 5))
    return {"emotion": emotion, "emotions": chosen, "valence": valence, "rationale": "because"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    """The personas' passwords are never checked here; PBKDF2 would spend seconds per user on this machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class QualityWorld:
    project: Project
    schema: LabelSchemaVersion
    corpus: Corpus
    utterances: list[Utterance]
    raters: list[Any]
    lead: Any
    reviewer: Any
    annotator: Any
    outsider: Any


@pytest.fixture
def quality_world(lead, reviewer, annotator, outsider, make_user, emotion_schema) -> QualityWorld:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Multi", slug="multi", license="CC-BY-4.0")
    utterances = [utterance_make(corpus, f"line {i}", "en" if i % 3 else "mr") for i in range(24)]
    project = project_create(name="Quality", corpus=corpus, schema_version=emotion_schema, created_by=lead, overlap=4)
    membership_set(project=project, user=reviewer, role="reviewer")
    raters = [annotator, make_user("bela"), make_user("chen"), make_user("dora")]
    for rater in raters:
        membership_set(project=project, user=rater, role="annotator")
    rng = np.random.default_rng(7)
    accuracy = [0.9, 0.8, 0.7, 0.5]
    for index, utterance in enumerate(utterances):
        truth = index % 5
        for rater, acc in zip(raters, accuracy):
            if rng.random() < 0.15:  # missing ratings
                continue
            annotation_create(
                utterance=utterance, schema_version=emotion_schema, project=project, annotator=rater,
                value=answers_make(rng, truth, acc),
            )
        if index % 2 == 0:
            annotation_create(
                utterance=utterance, schema_version=emotion_schema, project=project, origin=Origin.MODEL,
                model_version="distilroberta@1", value=answers_make(rng, truth, 0.8),
            )
    return QualityWorld(project, emotion_schema, corpus, utterances, raters, lead, reviewer, annotator, outsider)


def human_rows(project: Project) -> list[tuple[int, str, dict[str, Any], str]]:
    """(utterance, rater key, value, language) of the project's human annotations, in id order."""
    return [
        (uid, f"user:{annotator_id}", value, code)
        for uid, annotator_id, value, code in Annotation.objects.filter(project=project, origin=Origin.HUMAN)
        .order_by("id").values_list("utterance_id", "annotator_id", "value", "utterance__language__code")
    ]


@pytest.fixture
def api(db):  # type: ignore[no-untyped-def]
    def client_for(user) -> APIClient:  # type: ignore[no-untyped-def]
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for
