"""Reads of the active-learning loop: its settings and state, and the learning curve of its retrains."""

from __future__ import annotations

import json
from typing import Any

from django.core.files.storage import default_storage

from annotation.active_learning.services import human_label_count, retrain_busy
from annotation.models import ActiveLearningRound, ActiveLearningSettings, Project

SIMULATION_NAME = "active_learning/simulations/project-{project_id}.json"  # written by the simulation benchmark


def active_learning_state(*, project: Project) -> dict[str, Any]:
    """The settings (defaults when never set) and where the loop stands: labels so far and since the last retrain,
    the newest retrain job."""
    settings = ActiveLearningSettings.objects.filter(project=project).select_related("job").first()
    if settings is None:
        settings = ActiveLearningSettings(project=project, question_key="")
    labels = human_label_count(project, settings.question_key) if settings.question_key else 0
    job = settings.job
    return {
        "enabled": settings.enabled, "question_key": settings.question_key, "retrain_every": settings.retrain_every,
        "strategy": settings.strategy, "batch_size": settings.batch_size, "exploration": settings.exploration,
        "flag_label_errors": settings.flag_label_errors, "human_labels": labels,
        "labels_since_retrain": max(labels - settings.labels_at_last_retrain, 0) if settings.pk else labels,
        "retrain_running": bool(settings.pk) and retrain_busy(settings),
        "job": None if job is None else {"id": job.pk, "status": job.status, "message": job.message},
    }


def learning_curve(*, project: Project) -> dict[str, Any]:
    """Macro-F1 and per-label F1 on the held-out human split after each retrain, by human labels trained on; with
    the random-sampling curve of an oracle simulation on this project's labels, when one was stored."""
    rounds = ActiveLearningRound.objects.filter(project=project).select_related("model").order_by("created_at", "id")
    points = [{
        "human_labels": r.human_labels, "macro_f1": r.evaluation.get("macro_f1"),
        "per_label_f1": r.evaluation.get("per_label_f1", {}), "method": r.evaluation.get("method"),
        "split": r.evaluation.get("split"), "n_items": r.evaluation.get("n_items", 0), "strategy": r.strategy,
        "model_version": r.model.model_version, "suspected_errors": r.suspected_errors,
        "created_at": r.created_at.isoformat(),
    } for r in rounds]
    simulation = None
    name = SIMULATION_NAME.format(project_id=project.pk)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            try:
                simulation = json.loads(handle.read())
            except ValueError:
                simulation = None
    return {"points": points, "simulation": simulation}
