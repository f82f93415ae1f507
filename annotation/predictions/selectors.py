"""Reads for models at work on a project: registrations, the predictions a member may see, score distributions."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import QuerySet

from annotation.models import Prediction, Project, ProjectModel, Role, SuggestionPolicy
from annotation.predictions.services import (
    META_KEY,
    SPEECH_DIMENSIONAL_TASK,
    card_language_fit,
    project_language_codes,
    project_questions,
    project_utterances,
)

DEFAULT_BINS = 10
MAX_BINS = 100
SUMMARY_ROW_CAP = 2_000_000  # a summary reads at most this many predictions (the answer says when it stopped)


def project_models_list(*, project: Project) -> QuerySet[ProjectModel]:
    return ProjectModel.objects.filter(project=project).select_related("created_by")


FIT_ORDER = {"all": 0, "some": 1, "none": 2}


def model_catalogue(*, project: Project | None = None) -> list[dict[str, Any]]:
    """Every model card Sentio knows, whether it loads offline here (and why not) and, for a project, whether it
    knows the project's languages. Models that load and know every language come first (so an English-only
    Whisper is never the first choice for a Marathi corpus)."""
    from models_zoo.registry import catalogue

    codes = project_language_codes(project) if project is not None else []
    entries = []
    for card, availability in catalogue():
        fit = card_language_fit(card.languages, codes)
        entries.append({
            "id": card.id, "task": card.task.value, "languages": list(card.languages), "labels": list(card.labels),
            "license": card.license, "source": card.source.describe(), "description": card.description,
            "available": bool(availability), "reason": availability.reason,
            "language_fit": fit.level, "language_warning": fit.message,
        })
    # sorted() is stable: within a group the registry's own order (multilingual Whisper before tiny.en) holds.
    return sorted(entries, key=lambda e: (not e["available"], FIT_ORDER[e["language_fit"]]))


def project_model_warnings(*, project: Project, model: ProjectModel) -> list[str]:
    """What a lead should know about a model just registered (it loads, and knows some project language)."""
    from models_zoo.registry import KNOWN_CARDS

    card = KNOWN_CARDS.get(model.card_id)
    if card is None:
        return []
    fit = card_language_fit(card.languages, project_language_codes(project))
    return [fit.message] if fit.message else []


def predictions_visible(*, project: Project, user: Any, role: str | None) -> bool:
    """Leads, reviewers and staff always see the project's predictions; annotators only when the policy shows them."""
    if getattr(user, "is_staff", False) or role in (Role.LEAD, Role.REVIEWER):
        return True
    return role == Role.ANNOTATOR and project.suggestion_policy != SuggestionPolicy.HIDDEN


def project_predictions(*, project: Project, model_version: str | None = None) -> QuerySet[Prediction]:
    """Predictions of the project's registered models on the project's utterances."""
    versions = ProjectModel.objects.filter(project=project).values("model_version")
    predictions = Prediction.objects.filter(
        model_version__in=versions, utterance_id__in=project_utterances(project).values("pk")
    )
    return predictions.filter(model_version=model_version) if model_version else predictions


def predictions_summary(*, project: Project, model_version: str | None = None, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Per model version: how many predictions, histograms of each label's score (or each dimension's value),
    of the uncertainty, and how often each label came out on top."""
    bins = max(1, min(int(bins), MAX_BINS))
    questions = project_questions(project)
    models = list(project_models_list(project=project).exclude(task="asr"))
    if model_version:
        models = [m for m in models if m.model_version == model_version]
    summaries = []
    for model in models:
        if model.task == SPEECH_DIMENSIONAL_TASK:
            ranges = {key: (questions[key].minimum, questions[key].maximum)
                      for key in (model.label_mapping or {}).get("dimensions", {}).values()
                      if key in questions and questions[key].type == "numeric"}
        else:
            question = questions.get(model.question_key)
            ranges = {label: (0.0, 1.0) for label in (question.labels if question else ())}
        edges = {key: np.linspace(float(low or 0.0), float(high or 1.0), bins + 1) for key, (low, high) in ranges.items()}
        counts = {key: np.zeros(bins, dtype=np.int64) for key in ranges}
        uncertainty = np.zeros(bins, dtype=np.int64)
        top: dict[str, int] = {}
        n = 0
        rows = project_predictions(project=project, model_version=model.model_version).values_list(
            "scores", "label", "uncertainty")
        for scores, label, entropy in rows.iterator(chunk_size=5000):
            n += 1
            if n > SUMMARY_ROW_CAP:
                break
            for key, key_edges in edges.items():
                value = scores.get(key) if isinstance(scores, dict) else None
                if isinstance(value, (int, float)):
                    index = int(np.clip(np.searchsorted(key_edges, value, side="right") - 1, 0, bins - 1))
                    counts[key][index] += 1
            if entropy is not None:
                uncertainty[int(np.clip(entropy * bins, 0, bins - 1))] += 1
            if label:
                top[label] = top.get(label, 0) + 1
        summaries.append({
            "model_version": model.model_version, "task": model.task, "question": model.question_key,
            "count": min(n, SUMMARY_ROW_CAP), "truncated": n > SUMMARY_ROW_CAP,
            "histograms": {key: {"edges": [round(float(e), 6) for e in edges[key]], "counts": counts[key].tolist()}
                           for key in edges},
            "uncertainty": {"edges": [round(float(e), 6) for e in np.linspace(0, 1, bins + 1)],
                            "counts": uncertainty.tolist()},
            "top_labels": dict(sorted(top.items(), key=lambda kv: -kv[1])),
        })
    return {"project_id": project.pk, "bins": bins, "meta_key": META_KEY, "models": summaries}
