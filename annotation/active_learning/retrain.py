"""The retrain job of the active-learning loop (``gpu`` queue): train a head on the human labels so far, re-score
the open items, write each item's priority, suggestions from the new version, and flags on suspected label errors.

Resumable like the other model jobs: the trained head is remembered in the job's params, so a retried or reaped
attempt re-scores with the very same model version; every write is an upsert or an overwrite of the same value.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef

from annotation.active_learning.services import labels_arrived, text_embeddings
from annotation.models import (
    ActiveLearningRound,
    ActiveLearningSettings,
    Annotation,
    Flag,
    Origin,
    ProjectItem,
    ProjectModel,
)
from annotation.predictions.services import (
    TrainHeadSpec,
    _backend,
    _categorical_question,
    _job_model,
    _job_project,
    _labelled,
    _labelled_items,
    _permanent,
    _predict_pass,
    _Run,
    head_train,
)
from corpora.models import Utterance
from jobs.models import Job
from jobs.services import job_fail, job_start, job_succeed

LABEL_ERROR_NOTE = "Suspected label error"  # flags the loop writes start with this (one open flag per item)
MAX_FLAGS_PER_ROUND = 200
OOF_FOLDS = 5


def _pool(project: Any) -> list[tuple[int, int, str]]:
    """Open items with text and no human label yet: (item id, utterance id, text), what a priority decides between."""
    labelled = Annotation.objects.filter(project=project, origin=Origin.HUMAN, utterance_id=OuterRef("utterance_id"))
    return list(ProjectItem.objects.filter(project=project, is_gold=False, annotation_count__lt=F("target_count"))
                .exclude(utterance__text="").exclude(Exists(labelled)).order_by("utterance_id")
                .values_list("pk", "utterance_id", "utterance__text"))


def _rescore(run: _Run, project: Any, settings: ActiveLearningSettings, model: ProjectModel,
             embedder: Any) -> tuple[int, dict[int, Any]]:
    """Priorities of the open items from the model's probabilities and the strategy; returns (scored, embeddings)."""
    from models_zoo.active_learning import priorities
    from models_zoo.backends.heads import EmbeddingHeadBackend

    pool = _pool(project)
    # Items labelled since the last retrain leave the pool: no priority, so they sink below every open item.
    ProjectItem.objects.filter(project=project, uncertainty__isnull=False).exclude(
        pk__in=[item_id for item_id, _, _ in pool]).update(uncertainty=None)
    if not pool:
        return 0, {}
    vectors = text_embeddings([u for _, u, _ in pool], [t for _, _, t in pool], embedder=embedder,
                              progress=run.stage_progress("embedding the pool"))
    backend = _backend(model)
    assert isinstance(backend, EmbeddingHeadBackend)
    probabilities = backend.probabilities_embedded(vectors)
    run.stage = "priorities"
    run.report()
    priority = priorities(probabilities, settings.strategy, batch=settings.batch_size, embeddings=vectors,
                          multi_label=bool(model.training.get("multi_label")), exploration=settings.exploration,
                          seed=int(run.job.pk))
    items = [ProjectItem(pk=item_id, uncertainty=float(value)) for (item_id, _, _), value in zip(pool, priority)]
    with transaction.atomic():
        ProjectItem.objects.bulk_update(items, ["uncertainty"], batch_size=2000)
    return len(items), {u: vectors[i] for i, (_, u, _) in enumerate(pool)}


def _flag_label_errors(project: Any, settings: ActiveLearningSettings, embedder: Any) -> int:
    """Out-of-fold probabilities of heads cross-validated on the stored embeddings of the human-labelled train
    items; labels the model confidently disagrees with become review flags with the reason."""
    from models_zoo.active_learning import suspected_label_errors, suspected_label_errors_multi
    from models_zoo.heads import HeadTrainingError, cross_validated_probabilities

    if settings.enabled_by_id is None:
        return 0  # a flag needs an author: the lead who switched the loop on
    question = _categorical_question(project, settings.question_key)
    multi = question.type == "multi_label"
    labelled = _labelled_items(_labelled(project, question, audio=False, splits=("train",), synthetic=False),
                               question, audio=False, limit=50_000)
    if len(labelled.utterance_ids) < 2 * OOF_FOLDS:
        return 0
    x = text_embeddings(labelled.utterance_ids, labelled.inputs, embedder=embedder)
    try:
        oof = cross_validated_probabilities(x, labelled.targets, labels=question.labels, multi_label=multi,
                                            folds=OOF_FOLDS)
    except HeadTrainingError:
        return 0
    find = suspected_label_errors_multi if multi else suspected_label_errors
    suspects = find(oof, labelled.targets, labels=question.labels)[:MAX_FLAGS_PER_ROUND]  # type: ignore[arg-type]
    if not suspects:
        return 0
    items = dict(ProjectItem.objects.filter(project=project, utterance_id__in=[labelled.utterance_ids[e.row]
                                                                               for e in suspects])
                 .values_list("utterance_id", "pk"))
    already = set(Flag.objects.filter(project=project, item_id__in=items.values(), resolved=False,
                                      note__startswith=LABEL_ERROR_NOTE).values_list("item_id", flat=True))
    flags = []
    for error in suspects:
        item_id = items.get(labelled.utterance_ids[error.row])
        if item_id is None or item_id in already:
            continue
        already.add(item_id)
        flags.append(Flag(project=project, item_id=item_id, created_by_id=settings.enabled_by_id, note=(
            f"{LABEL_ERROR_NOTE} ({settings.question_key}): labelled {error.given!r}, but heads cross-validated on "
            f"the other labels say {error.suggested!r} (probability {error.suggested_probability:.2f}, above that "
            f"label's threshold {error.threshold:.2f}; {error.given!r} only {error.given_probability:.2f}).")))
    Flag.objects.bulk_create(flags)
    return len(flags)


def active_learning_run(*, job_id: int) -> None:
    """What the Celery task calls; a redelivered message for a finished job does nothing."""
    from models_zoo.backends.base import EmbeddingBackend
    from models_zoo.registry import load_model

    job = job_start(job_id=job_id)
    if job is None:
        return
    run = _Run(job)
    project = None
    try:
        project = _job_project(job)
        settings = ActiveLearningSettings.objects.get(project=project)
        spec = TrainHeadSpec(settings.question_key, "text", settings.embedder, ("train",), False)
        if "project_model_id" not in job.params:
            trained = head_train(project=project, spec=spec, user=job.created_by,
                                 progress=run.stage_progress("training"))
            job.params = {**job.params, "project_model_id": trained.model.pk}
            Job.objects.filter(pk=job.pk).update(params=job.params)
        model = _job_model(job, project, "project_model_id")
        embedder = load_model(settings.embedder)
        assert isinstance(embedder, EmbeddingBackend)
        scored, embedded = _rescore(run, project, settings, model, embedder)
        run.add("scored", scored)
        # Suggestions on the annotate screen come from the newest version: its predictions on the open items.
        open_utterances = Utterance.objects.filter(pk__in=list(embedded))
        _predict_pass(run, project, model, open_utterances, weak_labels=False, counter="predicted", embedded=embedded)
        flagged = _flag_label_errors(project, settings, embedder) if settings.flag_label_errors else 0
        run.add("suspected_label_errors", flagged)
        evaluation = {key: model.evaluation[key] for key in ("method", "split", "n_items", "macro_f1", "per_label_f1",
                                                               "accuracy", "reason") if key in model.evaluation}
        ActiveLearningRound.objects.update_or_create(job=job, defaults={
            "project": project, "model": model, "strategy": settings.strategy,
            "human_labels": int(model.training.get("label_sources", {}).get("human", model.training.get("examples", 0))),
            "evaluation": evaluation, "scored_items": scored, "suspected_errors": flagged})
    except Exception as exc:
        message = _permanent(exc)
        if message is None:
            raise
        job_fail(job=job, message=f"Active-learning retrain stopped: {message}", counts=run.counts)
        return
    job_succeed(job=job, result={"model_version": model.model_version, "throughput": run.throughput()},
                counts=run.counts)
    labels_arrived(project=project)  # K more labels came in while this ran: queue the next retrain now


def active_learning_job_fail(*, job_id: int, message: str) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and not job.is_finished:
        job_fail(job=job, message=message)
