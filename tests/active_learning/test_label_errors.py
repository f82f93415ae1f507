"""Suspected label errors: heads cross-validated on the stored embeddings flag the human labels they confidently
disagree with, and the flags land in the review queue with the reason."""

from __future__ import annotations

import pytest

from annotation.active_learning.retrain import LABEL_ERROR_NOTE, _flag_label_errors
from annotation.active_learning.services import active_learning_configure
from annotation.distribution.services import project_items_sync
from annotation.models import Flag
from annotation.quality.selectors import review_queue
from annotation.services import annotation_create
from models_zoo.registry import load_model
from tests.predictions.conftest import utterance_make

JOY = ["I am so happy today", "This is wonderful, I love it", "What a joyful day", "I feel delighted and glad",
       "Such great news, I am thrilled", "We won, I am overjoyed", "I am smiling all day", "Lovely, pure happiness",
       "This makes me so cheerful", "I am full of joy", "Best day ever, so happy", "I feel happy and grateful"]
ANGER = ["I am furious with you", "This is outrageous, I am angry", "I hate this, it makes me mad",
         "How dare you, I am livid", "I am enraged by this", "This infuriates me", "Stop it, I am so angry",
         "I am fuming with rage", "You make me furious", "I am so mad at them", "Angry, angry, angry",
         "This is infuriating and I am furious"]
PLANTED = {"What a joyful day": "anger", "I am fuming with rage": "joy"}  # wrong labels a careless rater gave


@pytest.mark.postgres("flags and the review queue use PostgreSQL JSON lookups")
def test_planted_label_errors_reach_the_review_queue(world) -> None:  # type: ignore[no-untyped-def]
    project = world.project
    planted = set()
    for texts, label in ((JOY, "joy"), (ANGER, "anger")):
        for text in texts:
            utterance = utterance_make(world.corpus, "en", text=text)
            annotation_create(utterance=utterance, schema_version=world.schema,
                              value={"emotion": PLANTED.get(text, label)}, annotator=world.annotator, project=project)
            if text in PLANTED:
                planted.add(utterance.pk)
    project_items_sync(project)
    settings = active_learning_configure(project=project, user=world.lead, data={
        "enabled": False, "question_key": "emotion"})
    settings.enabled_by = world.lead
    settings.save()
    flagged = _flag_label_errors(project, settings, load_model(settings.embedder))
    flags = list(Flag.objects.filter(project=project, note__startswith=LABEL_ERROR_NOTE).select_related("item"))
    assert flagged == len(flags) and flags
    found = {f.item.utterance_id for f in flags}
    assert planted <= found  # both planted errors are caught
    assert len(found - planted) <= 2  # and few correct labels are (the project's own small labelled set is noisy)
    note = next(f.note for f in flags if f.item.utterance_id in planted)
    assert "labelled 'anger'" in note or "labelled 'joy'" in note
    queue = review_queue(project=project, reasons=["flagged"])
    assert planted <= set(queue.values_list("pk", flat=True))
    # A second round does not flag the same items twice while their flags are open.
    assert _flag_label_errors(project, settings, load_model(settings.embedder)) == 0
    assert Flag.objects.filter(project=project, note__startswith=LABEL_ERROR_NOTE).count() == len(flags)
