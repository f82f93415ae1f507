"""Reads for the Label Studio bridge: the project an ML-backend request is for, its models and their predictions as
answers, and which utterances Label Studio's tasks are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from annotation.label_studio.parsing import ConfigMapping, task_external_id
from annotation.models import Annotation, Origin, Prediction, Project, ProjectModel
from annotation.permissions import project_can_manage
from annotation.predictions.services import META_KEY, PREDICTING_TASKS, SPEECH_DIMENSIONAL_TASK, TEXT_TASK
from annotation.schema import Question, parse_questions
from annotation.selectors import projects_visible_to
from corpora.models import Utterance


class MLBackendNotFound(Exception):
    """No such project for this user (not a member): 404."""


class MLBackendForbidden(Exception):
    """A member who is not a lead: 403."""


def ml_backend_project_get(*, project_id: int, user: Any) -> Project:
    """The project an ML-backend request is for; only its leads (and staff) may wire Label Studio to it."""
    project = projects_visible_to(user).select_related("schema_version").filter(pk=project_id).first()
    if project is None:
        raise MLBackendNotFound()
    if not project_can_manage(user, project):
        raise MLBackendForbidden("Only the project's leads can connect Label Studio to its models.")
    return project


@dataclass(frozen=True)
class MLBackendModel:
    """A registered model that predicts, with what it answers in the project's schema."""

    model: ProjectModel
    questions: tuple[Question, ...]

    @property
    def model_version(self) -> str:
        return self.model.model_version

    @property
    def question_keys(self) -> list[str]:
        return [q.key for q in self.questions]

    @property
    def runs_on_text(self) -> bool:
        return self.model.task == TEXT_TASK

    def stored(self, utterance_ids: Sequence[int]) -> dict[int, Prediction]:
        """This model's stored predictions of these utterances."""
        if not utterance_ids:
            return {}
        rows = Prediction.objects.filter(model_version=self.model_version, utterance_id__in=list(set(utterance_ids)))
        return {p.utterance_id: p for p in rows.order_by("id")}

    def answers(self, prediction: Prediction) -> tuple[dict[str, Any], float | None]:
        """(Sentio answers, Label Studio score) of one prediction of this model."""
        scores = prediction.scores if isinstance(prediction.scores, dict) else {}
        if self.model.task == SPEECH_DIMENSIONAL_TASK:
            return {q.key: scores[q.key] for q in self.questions if isinstance(scores.get(q.key), (int, float))}, None
        question = self.questions[0]
        probabilities = {label: float(value) for label, value in scores.items()
                         if label != META_KEY and label in question.labels and isinstance(value, (int, float))}
        if not probabilities:
            return {}, None
        top = prediction.label if prediction.label in probabilities else max(probabilities, key=probabilities.__getitem__)
        if question.type == "single_choice":
            answer: Any = top
        else:
            chosen = [label for label in question.labels if probabilities.get(label, 0.0) >= 0.5] or [top]
            answer = {label: 1 for label in chosen} if question.intensity else chosen
        return {question.key: answer}, round(min(max(probabilities[top], 0.0), 1.0), 6)


def ml_backend_models(project: Project) -> list[MLBackendModel]:
    """The project's predicting models, the one it prefers for suggestions first, then the newest."""
    questions = {q.key: q for q in parse_questions(project.schema_version.questions)}
    models = []
    for model in ProjectModel.objects.filter(project=project, task__in=PREDICTING_TASKS).order_by("-created_at", "-id"):
        if model.task == SPEECH_DIMENSIONAL_TASK:
            keys = list((model.label_mapping or {}).get("dimensions", {}).values())
        else:
            keys = [model.question_key]
        answered = tuple(questions[key] for key in keys if key in questions)
        if answered:
            models.append(MLBackendModel(model, answered))
    preferred = project.prediction_model_version
    return sorted(models, key=lambda m: m.model_version != preferred) if preferred else models


def task_utterances(*, corpus_id: int, tasks: Sequence[Any], mapping: ConfigMapping) -> dict[int, int]:
    """Task index -> utterance id, for the tasks that are utterances of the corpus: a task exported by Sentio by its
    ``utterance_id`` (its text must match) or ``external_id``; a task imported from Label Studio by its task id."""
    by_pk: dict[int, int] = {}
    by_external: dict[int, str] = {}
    for index, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            continue
        pk = data.get("utterance_id")
        if isinstance(pk, int) and not isinstance(pk, bool):
            by_pk[index] = pk
        external = task_external_id(task, data)
        if external:
            by_external[index] = external
    texts = dict(Utterance.objects.filter(corpus_id=corpus_id, pk__in=set(by_pk.values())).values_list("pk", "text"))
    external_ids = dict(Utterance.objects.filter(corpus_id=corpus_id, external_id__in=set(by_external.values()))
                        .values_list("external_id", "pk"))
    found: dict[int, int] = {}
    for index, task in enumerate(tasks):
        pk = by_pk.get(index)
        data = task.get("data") if isinstance(task, dict) else {}
        text = data.get(mapping.text_var) if isinstance(data, dict) and mapping.text_var else None
        if pk in texts and (not isinstance(text, str) or not text or text == texts[pk]):
            found[index] = pk
        elif by_external.get(index) in external_ids:
            found[index] = external_ids[by_external[index]]
    return found


def utterance_annotation_by_external_id(*, utterance_id: int, schema_version_id: int, external_id: str) -> Annotation | None:
    """The imported human annotation of an utterance that came from this Label Studio annotation, locked to update."""
    return (Annotation.objects.select_for_update()
            .filter(utterance_id=utterance_id, schema_version_id=schema_version_id, project__isnull=True,
                    origin=Origin.HUMAN, external_id=external_id).order_by("id").first())
