"""A MELD-shaped corpus built in the test: conversations whose speakers recur across conversations of the same
"show", two languages, skewed emotion labels, 1-3 human raters per utterance and LLM labels on others."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import pytest

EMOTIONS = ["joy", "sadness", "anger", "fear", "neutral"]
WEIGHTS = [0.25, 0.15, 0.1, 0.05, 0.45]
EXPORT_QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "labels": EMOTIONS, "required": True},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "sadness", "anger", "fear"]},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.5},
    {"key": "rationale", "type": "text", "max_length": 500},
]


@dataclass
class MeldFixture:
    corpus: Any
    schema_version: Any
    project: Any
    human_only_utterances: set[int]
    llm_only_utterances: set[int]


def build_meld_like(*, lead: Any, shows: int = 12, conversations_per_show: int = 5, seed: int = 7,
                    formula_texts: bool = False) -> MeldFixture:
    from annotation.models import Annotation, Origin
    from annotation.services import label_schema_create, project_create
    from corpora.models import Conversation, Corpus, Language, Speaker, Utterance

    rng = random.Random(seed)
    english = Language.objects.get_or_create(code="en", defaults={"name": "English", "script": "Latn"})[0]
    hindi = Language.objects.get_or_create(code="hi", defaults={"name": "Hindi", "script": "Deva"})[0]
    corpus = Corpus.objects.create(name="Friends-like", slug="friends-like", license="GPL-3.0",
                                   source="https://example.org/meld-like (built in the test)")
    version = label_schema_create(name="Export emotions", slug="export-emotions", questions=EXPORT_QUESTIONS)
    project = project_create(name="Gold", corpus=corpus, schema_version=version, created_by=lead, overlap=3)
    raters = [f"r{i}" for i in range(6)]
    human_only: set[int] = set()
    llm_only: set[int] = set()
    annotations: list[Annotation] = []
    for show in range(shows):
        language = english if show % 3 else hindi
        speakers = [Speaker.objects.create(corpus=corpus, external_id=f"show{show}-spk{k}") for k in range(3)]
        synthetic_show = show % 4 == 3  # like MahaEmotions' train: only LLM labels
        for c in range(conversations_per_show):
            conversation = Conversation.objects.create(corpus=corpus, external_id=f"dia{show}_{c}")
            for turn in range(rng.randint(4, 8)):
                emotion = rng.choices(EMOTIONS, WEIGHTS)[0]
                text = f"show {show} dialogue {c} turn {turn}: {emotion}"
                if formula_texts and turn == 0:
                    text = f"=HYPERLINK(\"http://evil.example/{show}\") {text}"
                utterance = Utterance.objects.create(
                    corpus=corpus, external_id=f"dia{show}_utt{c}_{turn}", conversation=conversation, turn_index=turn,
                    speaker=rng.choice(speakers), language=language, text=text,
                    content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
                )
                value = {"emotion": emotion, "emotions": [] if emotion == "neutral" else [emotion],
                         "valence": 4.0 if emotion == "joy" else 2.0, "rationale": "said so"}
                if synthetic_show:
                    llm_only.add(utterance.pk)
                    annotations.append(Annotation(utterance=utterance, project=project, schema_version=version,
                                                  value=value, origin=Origin.LLM, model_version="gemma-cot"))
                    continue
                human_only.add(utterance.pk)
                for rater in rng.sample(raters, rng.randint(1, 3)):
                    answer = dict(value)
                    if rng.random() < 0.15:
                        answer["emotion"] = rng.choice(EMOTIONS)
                    annotations.append(Annotation(utterance=utterance, project=project, schema_version=version,
                                                  value=answer, origin=Origin.HUMAN, external_rater=rater))
    Annotation.objects.bulk_create(annotations)
    return MeldFixture(corpus, version, project, human_only, llm_only)


@pytest.fixture
def export_media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def meld(db, lead, export_media):  # type: ignore[no-untyped-def]
    return build_meld_like(lead=lead)
