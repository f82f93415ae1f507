"""A browsable project: two languages, conversations with speakers, splits, answers given through the distribution
services (so the items' counters are the real ones), a flag, a gold item, a prediction and an adjudication.

Personas from tests/conftest.py: ``lead`` leads, ``reviewer`` reviews, ``annotator`` and two more annotate,
``outsider`` belongs to nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotation.distribution.services import (
    annotation_submit,
    gold_item_set,
    item_flag,
    item_skip,
    next_item_reserve,
    project_items_sync,
)
from annotation.models import Prediction, Project, ProjectItem
from annotation.quality.services import item_adjudicate
from annotation.services import label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Conversation, Corpus, Speaker, Utterance

QUESTIONS = [
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger", "neutral"], "required": True},
    {"key": "also", "type": "multi_label", "labels": ["joy", "sadness", "anger"]},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.5},
]


def utterance_make(corpus: Corpus, text: str, code: str, **extra: Any) -> Utterance:
    digest = hashlib.blake2b(f"{corpus.pk}:{text}:{code}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(corpus=corpus, text=text, language=language_get_or_create(code), content_hash=digest, **extra)


@dataclass
class BrowseWorld:
    project: Project
    corpus: Corpus
    utterances: list[Utterance]
    raters: list[Any]
    lead: Any
    reviewer: Any
    outsider: Any
    flagged: Utterance
    gold: Utterance
    adjudicated: Utterance


def answer(user: Any, project: Project, emotion: str, also: list[str] | None = None) -> int:
    held = next_item_reserve(project=project, user=user)
    assert held is not None
    result = annotation_submit(
        project=project, user=user, utterance_id=held.item.utterance_id, client_id=uuid.uuid4(),
        value={"emotion": emotion, **({"also": also} if also else {})}, lead_time_ms=4000,
    )
    return result.annotation.utterance_id


@pytest.fixture
def browse_world(lead, reviewer, annotator, outsider, make_user) -> BrowseWorld:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Talks", slug="talks", license="CC-BY-4.0", created_by=lead)
    corpus.languages.set([language_get_or_create("en"), language_get_or_create("hi")])
    talk = Conversation.objects.create(corpus=corpus, external_id="talk-1")
    asha = Speaker.objects.create(corpus=corpus, external_id="asha")
    ravi = Speaker.objects.create(corpus=corpus, external_id="ravi")
    utterances = []
    for i in range(12):
        code = "hi" if i % 4 == 3 else "en"
        text = f"मुझे बहुत खुशी है {i}" if code == "hi" else f"Line {i} of the talk about the harbour"
        utterances.append(utterance_make(
            corpus, text, code, conversation=talk, turn_index=i, speaker=asha if i % 2 else ravi,
            metadata={"split": "test" if i >= 9 else "train"},
        ))
    schema = label_schema_create(name="Browse emotions", slug="browse-emotions", questions=QUESTIONS)
    project = project_create(name="Harbour talks", corpus=corpus, schema_version=schema, created_by=lead, overlap=2)
    membership_set(project=project, user=reviewer, role="reviewer")
    raters = [annotator, make_user("bilal_annotator"), make_user("chitra_annotator")]
    for rater in raters:
        membership_set(project=project, user=rater, role="annotator")
    project_items_sync(project)
    # Gold first, before anyone is handed the last item (gold items must be unseen).
    gold = utterances[-1]
    gold_item_set(project=project, utterance_id=gold.pk, expected={"emotion": "joy"}, created_by=lead)
    # Items 0..3 answered twice: 0 and 2 agree, 1 and 3 disagree.
    plan = [("joy", "joy"), ("joy", "anger"), ("sadness", "sadness"), ("neutral", "anger")]
    for first, second in plan:
        answer(raters[0], project, first, ["joy"] if first == "joy" else None)
        answer(raters[1], project, second)
    # Item 4: one answer and held by another rater; item 5 flagged, then skipped, by a third.
    answer(raters[2], project, "joy")
    held = next_item_reserve(project=project, user=raters[0])
    assert held is not None and held.item.utterance_id == utterances[4].pk
    skipper = next_item_reserve(project=project, user=raters[2])
    assert skipper is not None
    flagged = Utterance.objects.get(pk=skipper.item.utterance_id)
    assert flagged == utterances[5]
    item_flag(project=project, user=raters[2], utterance_id=flagged.pk, note="The audio cuts off")
    item_skip(project=project, user=raters[2], utterance_id=flagged.pk, reason="cannot tell")
    # A wrong answer to the gold item: with a gold rate of 1 the next item handed out is the gold one.
    Project.objects.filter(pk=project.pk).update(gold_rate=1.0)
    project.refresh_from_db()
    on_gold = next_item_reserve(project=project, user=raters[1])
    assert on_gold is not None and on_gold.item.utterance_id == gold.pk
    annotation_submit(project=project, user=raters[1], utterance_id=gold.pk, client_id=uuid.uuid4(), value={"emotion": "anger"})
    Project.objects.filter(pk=project.pk).update(gold_rate=0.0)
    project.refresh_from_db()
    adjudicated = utterances[1]
    item_adjudicate(project=project, utterance_id=adjudicated.pk, user=lead, value={"emotion": "joy"}, note="context says joy")
    Prediction.objects.create(utterance=utterances[3], model_version="xlm-emo@1", scores={"joy": 0.2, "anger": 0.8}, label="anger", uncertainty=0.9)
    Prediction.objects.create(utterance=utterances[7], model_version="xlm-emo@1", scores={"joy": 0.6, "anger": 0.4}, label="joy", uncertainty=0.4)
    ProjectItem.objects.filter(project=project, utterance=utterances[3]).update(uncertainty=0.9)
    ProjectItem.objects.filter(project=project, utterance=utterances[7]).update(uncertainty=0.4)
    return BrowseWorld(project, corpus, utterances, raters, lead, reviewer, outsider, flagged, gold, adjudicated)


@pytest.fixture
def client_for(db):  # type: ignore[no-untyped-def]
    def make(user: Any) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
