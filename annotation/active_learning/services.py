"""Writes of the active-learning loop that the rest of the app calls: the embedding store, the settings, and the
trigger that queues a retrain after every K new human labels.

This module imports no other capability's services (annotation submission calls ``labels_arrived``, and head
training calls ``text_embeddings``); the retrain job itself lives in ``annotation.active_learning.retrain``.

- Embeddings are stored once per (utterance, embedder version) as float32 bytes: a retrain reads them and embeds
  only texts it has never seen.
- One retrain at a time per project: the settings row is locked while a job is queued, and a new job is queued
  only when none is pending or running. The job, when done, queues the next one itself if K more labels arrived
  meanwhile (debounce: many labels arriving during a retrain make one more retrain, not many).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.db import transaction

from annotation.models import ActiveLearningSettings, Annotation, OrderingStrategy, Origin, Project, UtteranceEmbedding
from annotation.schema import SchemaError, parse_questions
from jobs.dispatch import Task, task_send_on_commit
from jobs.models import FINISHED_STATUSES, Job, JobKind
from jobs.services import job_create

EMBED_CHUNK = 256  # texts per embedder call between writes (a killed job keeps what it stored)
READ_CHUNK = 5000


class ActiveLearningSetupError(SchemaError):
    """A settings request that cannot work; ``errors`` maps the field to the reason."""


# --- the embedding store --------------------------------------------------------------------------------------------


def embedder_version(embedder: Any) -> str:
    """The store's key for an embedder: card id and the resolved weights' version (a new version re-embeds)."""
    embedder.load()
    return f"{embedder.card.id}@{embedder.version}"


def stored_embeddings(utterance_ids: Sequence[int], version: str) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    ids = list(utterance_ids)
    for start in range(0, len(ids), READ_CHUNK):
        rows = UtteranceEmbedding.objects.filter(embedder_version=version, utterance_id__in=ids[start:start + READ_CHUNK])
        for utterance_id, vector in rows.values_list("utterance_id", "vector").iterator(chunk_size=READ_CHUNK):
            found[utterance_id] = np.frombuffer(bytes(vector), dtype="<f4")
    return found


def text_embeddings(utterance_ids: Sequence[int], texts: Sequence[str], *, embedder: Any,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Rows of embeddings for the utterances (``texts`` are theirs, in order): read from the store, and the
    missing ones embedded once, in chunks, and stored (ON CONFLICT DO NOTHING: a concurrent job may store too)."""
    if len(utterance_ids) != len(texts):
        raise ValueError(f"{len(utterance_ids)} utterance ids for {len(texts)} texts")
    version = embedder_version(embedder)
    found = stored_embeddings(utterance_ids, version)
    missing = [i for i, u in enumerate(utterance_ids) if u not in found]
    total = len(utterance_ids)
    done = total - len(missing)
    if progress is not None:
        progress(done, total)
    for start in range(0, len(missing), EMBED_CHUNK):
        rows = missing[start:start + EMBED_CHUNK]
        vectors = np.asarray(embedder.embed([texts[i] for i in rows]), dtype="<f4")
        UtteranceEmbedding.objects.bulk_create(
            [UtteranceEmbedding(utterance_id=utterance_ids[i], embedder_version=version, vector=v.tobytes())
             for i, v in zip(rows, vectors)], ignore_conflicts=True, batch_size=1000)
        for i, v in zip(rows, vectors):
            found[utterance_ids[i]] = v
        done += len(rows)
        if progress is not None:
            progress(done, total)
    if not utterance_ids:
        return np.zeros((0, int(embedder.dim)), dtype=np.float32)
    return np.vstack([found[u] for u in utterance_ids]).astype(np.float32)


# --- settings and the trigger ---------------------------------------------------------------------------------------


def human_label_count(project: Project, question_key: str) -> int:
    """Human answers to the question in the project (each annotator's answer counts: it is a new label)."""
    return Annotation.objects.filter(project=project, origin=Origin.HUMAN, value__has_key=question_key).count()


def active_learning_configure(*, project: Project, user: Any, data: dict[str, Any]) -> ActiveLearningSettings:
    """Switch the loop on or off and set K, the strategy, batch and exploration share; validated field by field.
    Switching it on orders the project's items by priority and queues a first retrain when labels exist."""
    from models_zoo.active_learning import STRATEGIES

    errors: dict[str, str] = {}
    current = ActiveLearningSettings.objects.filter(project=project).first()
    categorical = sorted(q.key for q in parse_questions(project.schema_version.questions)
                         if q.type in ("single_choice", "multi_label"))
    question_key = data.get("question_key", current.question_key if current else None)
    if not isinstance(question_key, str) or question_key not in categorical:
        errors["question_key"] = (f"must be a single-choice or multi-label question of the project's schema "
                                  f"(those are: {', '.join(categorical) or 'none'})")
    values: dict[str, Any] = {}
    for field, kind, low, high in (("retrain_every", int, 1, 100_000), ("batch_size", int, 1, 1000),
                                   ("exploration", float, 0.0, 0.5)):
        if field not in data:
            continue
        raw = data[field]
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (kind is int and not float(raw).is_integer()):
            errors[field] = f"must be a {'whole ' if kind is int else ''}number from {low} to {high}"
        elif not low <= raw <= high:
            errors[field] = f"must be from {low} to {high}, got {raw}"
        else:
            values[field] = kind(raw)
    if "strategy" in data:
        if data["strategy"] not in STRATEGIES:
            errors["strategy"] = f"must be one of {', '.join(STRATEGIES)}"
        else:
            values["strategy"] = data["strategy"]
    for field in ("enabled", "flag_label_errors"):
        if field in data:
            if not isinstance(data[field], bool):
                errors[field] = "must be true or false"
            else:
                values[field] = data[field]
    if errors:
        raise ActiveLearningSetupError(errors)
    assert isinstance(question_key, str)
    with transaction.atomic():
        settings, _ = ActiveLearningSettings.objects.select_for_update().get_or_create(
            project=project, defaults={"question_key": question_key})
        settings.question_key = question_key
        for field, value in values.items():
            setattr(settings, field, value)
        if values.get("enabled"):
            settings.enabled_by = user if getattr(user, "is_authenticated", False) else settings.enabled_by
            if project.ordering_strategy != OrderingStrategy.UNCERTAINTY:
                project.ordering_strategy = OrderingStrategy.UNCERTAINTY
                project.save(update_fields=["ordering_strategy"])
        settings.save()
        if settings.enabled and human_label_count(project, settings.question_key):
            _queue_retrain(settings, project, force=values.get("enabled", False))
    return settings


def labels_arrived(*, project: Project) -> Job | None:
    """Called after a human label is saved: queue a retrain when K new labels arrived since the last one and no
    retrain is waiting or running. Cheap when nothing is due (one count); the lock is taken only then."""
    settings = ActiveLearningSettings.objects.filter(project=project, enabled=True).first()
    if settings is None:
        return None
    if human_label_count(project, settings.question_key) - settings.labels_at_last_retrain < settings.retrain_every:
        return None
    with transaction.atomic():
        locked = ActiveLearningSettings.objects.select_for_update().get(pk=settings.pk)
        return _queue_retrain(locked, project, force=False)


def retrain_busy(settings: ActiveLearningSettings) -> bool:
    return settings.job_id is not None and Job.objects.filter(pk=settings.job_id).exclude(
        status__in=FINISHED_STATUSES).exists()


def _queue_retrain(settings: ActiveLearningSettings, project: Project, *, force: bool) -> Job | None:
    """Under the settings row lock: one retrain at a time; ``force`` skips the K check (switching on)."""
    if not settings.enabled or retrain_busy(settings):
        return None
    count = human_label_count(project, settings.question_key)
    if not force and count - settings.labels_at_last_retrain < settings.retrain_every:
        return None
    job = job_create(kind=JobKind.ACTIVE_LEARNING, created_by=settings.enabled_by, project=project,
                     params={"labels_at_queue": count})
    settings.job = job
    settings.labels_at_last_retrain = count
    settings.save(update_fields=["job", "labels_at_last_retrain", "updated_at"])
    task_send_on_commit(Task.ACTIVE_LEARNING, job.pk)
    return job
