"""A small trilingual project (English, Hindi, Marathi) with human labels, text and espeak-ng speech."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation.models import LabelSchemaVersion, Origin, Project
from annotation.services import annotation_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus, Utterance
from tests.models_zoo.conftest import speak  # noqa: F401  (the espeak-ng fixture)
from tests.workers.conftest import celery_env, celery_worker_process  # noqa: F401  (a real worker on real Redis)

# Clearly joyful or angry sentences per language; the head learns them from the lead's labels.
LABELLED = {
    "en": [("I am so happy, this is wonderful and I love it", "joy"), ("What a lovely day, I feel great", "joy"),
           ("We won, I am delighted and full of joy", "joy"), ("Thank you, this makes me smile", "joy"),
           ("I am furious, this is outrageous", "anger"), ("Stop it, I hate this, I am so angry", "anger"),
           ("How dare you lie to me, I am livid", "anger"), ("This is infuriating and unacceptable", "anger")],
    "hi": [("मैं बहुत खुश हूँ, यह अद्भुत है", "joy"), ("आज का दिन बहुत सुंदर है, मुझे आनंद आ रहा है", "joy"),
           ("मुझे बहुत गुस्सा आ रहा है, यह बकवास है", "anger"), ("तुमने झूठ बोला, मैं बहुत नाराज़ हूँ", "anger")],
    "mr": [("मी खूप आनंदी आहे, हे छान आहे", "joy"), ("आजचा दिवस खूप सुंदर आहे", "joy"),
           ("मला खूप राग आला आहे, हे चुकीचे आहे", "anger"), ("तू खोटे बोललास, मी खूप संतापलो आहे", "anger")],
}
UNLABELLED = {
    "en": ["I feel wonderful and happy today", "I am angry and upset about this"],
    "hi": ["मैं आज बहुत खुश हूँ"],
    "mr": ["मला राग आला"],
}


def utterance_make(corpus: Corpus, code: str, *, text: str = "", audio: str = "", **extra: Any) -> Utterance:
    digest = hashlib.blake2b(f"{corpus.pk}:{code}:{text}:{audio}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(corpus=corpus, language=language_get_or_create(code), text=text, audio=audio,
                                    content_hash=digest, **extra)


def audio_store(path: Path | bytes, name: str) -> str:
    data = path if isinstance(path, bytes) else path.read_bytes()
    return default_storage.save(f"audio/tests/{name}", ContentFile(data))


@dataclass
class World:
    project: Project
    schema: LabelSchemaVersion
    corpus: Corpus
    lead: Any
    reviewer: Any
    annotator: Any
    outsider: Any
    labelled: list[Utterance] = field(default_factory=list)
    unlabelled: list[Utterance] = field(default_factory=list)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(emotion_schema, lead, reviewer, annotator, outsider) -> World:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Trilingual", slug="trilingual", license="CC-BY-4.0")
    project = project_create(name="Emotions", corpus=corpus, schema_version=emotion_schema, created_by=lead)
    membership_set(project=project, user=reviewer, role="reviewer")
    membership_set(project=project, user=annotator, role="annotator")
    world = World(project, emotion_schema, corpus, lead, reviewer, annotator, outsider)
    for code, rows in LABELLED.items():
        for text, label in rows:
            utterance = utterance_make(corpus, code, text=text)
            annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": label},
                              origin=Origin.HUMAN, annotator=annotator, project=project)
            world.labelled.append(utterance)
    for code, texts in UNLABELLED.items():
        world.unlabelled += [utterance_make(corpus, code, text=text) for text in texts]
    return world
