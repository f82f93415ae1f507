"""The loop end to end on a real Celery worker (gpu queue, real Redis): labels arrive through the annotate service,
the head retrains by itself, the open items' priorities change, and the next item handed out is the one the newest
model is least sure about."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from annotation.active_learning.services import active_learning_configure
from annotation.distribution.services import annotation_submit, next_item_reserve, project_items_sync
from annotation.models import (
    ActiveLearningRound,
    OrderingStrategy,
    Prediction,
    ProjectItem,
    UtteranceEmbedding,
)
from annotation.predictions.services import META_KEY
from annotation.services import annotation_create
from jobs.models import JobStatus
from tests.predictions.conftest import utterance_make
from tests.workers.conftest import WorkerProcess, wait_for_job

MORE = ["I am thrilled and grateful", "You ruined everything, I am furious", "Such a happy surprise",
        "This makes me so mad", "What a joyful party", "I am enraged by this insult"]


def _priorities(project) -> dict[int, float]:  # type: ignore[no-untyped-def]
    return dict(ProjectItem.objects.filter(project=project, uncertainty__isnull=False)
                .values_list("utterance_id", "uncertainty"))


def _least_confident(model_version: str, candidates: set[int]) -> int:
    scores = {u: s for u, s in Prediction.objects.filter(model_version=model_version, utterance_id__in=candidates)
              .values_list("utterance_id", "scores")}
    return max(scores, key=lambda u: (1 - max(v for k, v in scores[u].items() if k != META_KEY), -u))


@pytest.mark.postgres("the worker process shares the test database, which an in-memory SQLite is not")
def test_labels_retrain_the_head_and_reorder_the_queue(celery_env, tmp_path, world) -> None:  # type: ignore[no-untyped-def]
    project = world.project
    for text in MORE:  # more open items, and a held-out human split for the learning curve
        world.unlabelled.append(utterance_make(world.corpus, "en", text=text))
    for text, label in (("I love this, so happy", "joy"), ("I am so angry at you", "anger")):
        held = utterance_make(world.corpus, "en", text=text, metadata={"split": "test"})
        annotation_create(utterance=held, schema_version=world.schema, value={"emotion": label},
                          annotator=world.lead, project=project)
    project_items_sync(project)
    worker = WorkerProcess(celery_env, tmp_path / "gpu-worker.log", queues="gpu")
    try:
        worker.start()
        settings = active_learning_configure(project=project, user=world.lead, data={
            "enabled": True, "question_key": "emotion", "retrain_every": 2, "strategy": "least_confidence",
            "batch_size": 1, "exploration": 0.0})
        project.refresh_from_db()
        assert project.ordering_strategy == OrderingStrategy.UNCERTAINTY
        first_job = settings.job
        assert first_job is not None  # labels exist: switching on queues a first retrain
        wait_for_job(first_job.pk, worker)
        first_job.refresh_from_db()
        assert first_job.status == JobStatus.SUCCEEDED, first_job.message + worker.log()[-3000:]
        first = ActiveLearningRound.objects.get(job=first_job)
        before = _priorities(project)
        open_ids = {u.pk for u in world.unlabelled}
        assert set(before) == open_ids  # every open item has a priority, labelled ones none
        assert UtteranceEmbedding.objects.filter(utterance_id__in=open_ids).count() == len(open_ids)
        assert first.evaluation["method"] == "held_out" and first.evaluation["n_items"] == 2
        assert set(first.evaluation["per_label_f1"]) >= {"joy", "anger"}

        # Annotators label two items: K=2 new labels queue the next retrain by themselves.
        for _ in range(2):
            handed = next_item_reserve(project=project, user=world.annotator)
            assert handed is not None
            newest = ActiveLearningRound.objects.filter(project=project).last()
            assert newest is not None
            remaining = {u for u in open_ids if not ProjectItem.objects.filter(
                project=project, utterance_id=u, annotation_count__gt=0).exists()}
            assert handed.item.utterance_id == _least_confident(newest.model.model_version, remaining)
            annotation_submit(project=project, user=world.annotator, utterance_id=handed.item.utterance_id,
                              client_id=uuid.uuid4(), value={"emotion": "joy"})
        settings.refresh_from_db()
        second_job = settings.job
        assert second_job is not None and second_job.pk != first_job.pk
        wait_for_job(second_job.pk, worker)
        second_job.refresh_from_db()
        assert second_job.status == JobStatus.SUCCEEDED, second_job.message + worker.log()[-3000:]
    finally:
        worker.stop()
    second = ActiveLearningRound.objects.get(job=second_job)
    assert second.human_labels == first.human_labels + 2
    assert second.model.model_version != first.model.model_version
    assert second.model.training_items.count() == second.human_labels  # the version keeps the labels it learned
    after = _priorities(project)
    assert len(after) == len(before) - 2
    assert any(not np.isclose(after[u], before[u]) for u in after)  # the new model re-scored the pool
    handed = next_item_reserve(project=project, user=world.reviewer)
    assert handed is not None
    assert handed.item.utterance_id == max(after, key=lambda u: (after[u], -u))
    assert handed.item.utterance_id == _least_confident(second.model.model_version, set(after))
