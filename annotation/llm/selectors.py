"""Reading LLM labelling: endpoints (never their keys), templates, runs, stored answers, and the evaluation of every
LLM source (an endpoint with a template version, or a published combination) against human gold.

The evaluation reuses the platform's one implementation of each figure: ``head_quality``
(annotation/predictions/evaluation.py: macro-F1, per-label F1, confusion) on one-hot answers, ``cohen_kappa`` and
``krippendorff_alpha`` / ``majority_vote`` from annotation/agreement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from annotation.agreement import (
    AgreementInputError,
    cohen_kappa,
    krippendorff_alpha,
    majority_vote,
    ratings_from_long,
)
from annotation.llm.services import project_answer_schema
from annotation.models import (
    Annotation,
    LLMCombination,
    LLMEndpoint,
    LLMLabel,
    LLMPromptTemplate,
    LLMRun,
    Origin,
    Project,
)
from annotation.predictions.evaluation import head_quality
from corpora.models import Utterance
from models_zoo.llm import LabelQuestion

# Below this many items with both a human majority and an LLM answer, figures are shown but flagged as unreliable.
MIN_RELIABLE_ITEMS = 30


def project_endpoints(project: Project) -> list[LLMEndpoint]:
    return list(LLMEndpoint.objects.filter(project=project))


def project_templates(project: Project) -> list[LLMPromptTemplate]:
    return list(LLMPromptTemplate.objects.filter(project=project))


def project_runs(project: Project) -> list[LLMRun]:
    return list(LLMRun.objects.filter(project=project).select_related("job", "endpoint", "template")[:200])


def run_labels(run: LLMRun) -> Any:
    return LLMLabel.objects.filter(endpoint=run.endpoint, template=run.template).order_by("utterance_id")


def _is_chosen(question: LabelQuestion, answer: Any) -> list[str] | str | None:
    """An answer as head_quality reads it: a label (single choice) or the labels chosen (multi-label)."""
    if answer is None:
        return None
    if question.type == "single_choice":
        return answer if answer in question.labels else None
    if isinstance(answer, dict):  # intensities: a label with level > 0 is chosen
        return [label for label, level in answer.items() if level]
    return list(answer)


def _human_gold(question: LabelQuestion, rows: list[tuple[int, str, Any]]) -> tuple[dict[int, Any], Any]:
    """The human majority per utterance (ties: no gold), and the human ratings (single choice) for alpha."""
    if question.type == "single_choice":
        kept = [(u, r, v) for u, r, v in rows if v in question.labels]
        if not kept:
            return {}, None
        ratings = ratings_from_long([u for u, _, _ in kept], [r for _, r, _ in kept], [v for _, _, v in kept],
                                    allow_duplicates=True)
        votes = majority_vote(ratings)
        return {int(str(u)): label for u, label in votes["label"].items() if label is not None}, kept
    by_unit: dict[int, list[list[str]]] = defaultdict(list)
    for u, _r, v in rows:
        chosen = _is_chosen(question, v)
        if chosen is not None:
            by_unit[u].append(list(chosen))
    gold = {}
    for u, answers in by_unit.items():  # a label is in the gold when more than half of the raters chose it
        gold[u] = [label for label in question.labels if sum(label in a for a in answers) * 2 > len(answers)]
    return gold, None


def _quality(question: LabelQuestion, truth: list[Any], predicted: list[Any]) -> dict[str, Any]:
    labels = list(question.labels)
    onehot = np.zeros((len(predicted), len(labels)))
    for row, answer in enumerate(predicted):
        for label in [answer] if isinstance(answer, str) else answer:
            onehot[row, labels.index(label)] = 1.0
    quality = head_quality(truth, onehot, labels=labels, multi_label=question.type != "single_choice")
    for key in ("ece", "reliability"):  # an LLM answer carries no probability: calibration does not apply
        quality.pop(key, None)
    return quality


def _kappa_and_alpha(question: LabelQuestion, truth: list[Any], predicted: list[Any], units: list[int],
                     human: list[tuple[int, str, Any]] | None, llm_rater: str) -> dict[str, Any]:
    if question.type != "single_choice":
        return {}
    figures: dict[str, Any] = {}
    kappa = cohen_kappa(truth, predicted, labels=list(question.labels))
    figures["kappa_with_human_majority"] = float(kappa.kappa) if kappa.applicable else None
    if human:
        on_units = set(units)
        humans = [(u, r, v) for u, r, v in human if u in on_units]
        try:
            without = krippendorff_alpha(ratings_from_long([u for u, _, _ in humans], [r for _, r, _ in humans],
                                                           [v for _, _, v in humans], allow_duplicates=True))
            with_llm = humans + [(u, llm_rater, p) for u, p in zip(units, predicted)]
            adding = krippendorff_alpha(ratings_from_long([u for u, _, _ in with_llm], [r for _, r, _ in with_llm],
                                                          [v for _, _, v in with_llm], allow_duplicates=True))
            figures["alpha_humans"] = _finite(without.alpha)
            figures["alpha_humans_and_llm"] = _finite(adding.alpha)
        except AgreementInputError as exc:
            figures["alpha_note"] = str(exc)
    return figures


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _majority_baseline(question: LabelQuestion, truth: list[Any]) -> float | None:
    """Macro-F1 of always answering the most frequent human label: what an LLM must beat to be worth anything."""
    if question.type != "single_choice" or not truth:
        return None
    values, counts = np.unique(np.asarray(truth, dtype=object).astype(str), return_counts=True)
    constant = [str(values[counts.argmax()])] * len(truth)
    return _quality(question, truth, constant)["macro_f1"]  # type: ignore[no-any-return]


def _verdict(n_items: int, macro_f1: float | None, baseline: float | None, kappa: float | None) -> str:
    if n_items == 0:
        return "No item has both a human majority and an answer from this source: nothing to compare."
    parts = []
    if n_items < MIN_RELIABLE_ITEMS:
        parts.append(f"Only {n_items} items: too few for a reliable figure.")
    if macro_f1 is not None and baseline is not None and macro_f1 <= baseline:
        parts.append("Not better than always answering the most frequent human label: do not use these labels.")
    elif kappa is not None and kappa < 0.2:
        parts.append("Agreement with the human majority is slight (kappa below 0.2): these labels are poor.")
    return " ".join(parts) or "Compare with the humans' own alpha before using these labels for training."


def llm_evaluation(project: Project) -> dict[str, Any]:
    """Every LLM source of the project against the human majority, per question, overall and per language."""
    schema = project_answer_schema(project)
    questions = [q for q in schema.questions if q.type in ("single_choice", "multi_label")]
    human_rows: dict[str, list[tuple[int, str, Any]]] = {q.key: [] for q in questions}
    humans = Annotation.objects.filter(project=project, origin=Origin.HUMAN, schema_version=project.schema_version)
    for utterance_id, annotator_id, external, value in humans.values_list(
            "utterance_id", "annotator_id", "external_rater", "value").iterator(chunk_size=5000):
        rater = f"u{annotator_id}" if annotator_id else f"x:{external}"
        for q in questions:
            if isinstance(value, dict) and value.get(q.key) is not None:
                human_rows[q.key].append((utterance_id, rater, value[q.key]))
    gold = {q.key: _human_gold(q, human_rows[q.key]) for q in questions}
    units = {u for g, _ in gold.values() for u in g}
    language_of = dict(Utterance.objects.filter(pk__in=units).values_list("pk", "language__code"))

    sources: list[dict[str, Any]] = []
    pairs = LLMLabel.objects.filter(endpoint__project=project).values_list("endpoint_id", "template_id").distinct()
    endpoints = {e.pk: e for e in LLMEndpoint.objects.filter(project=project)}
    templates = {t.pk: t for t in LLMPromptTemplate.objects.filter(project=project)}
    for endpoint_id, template_id in sorted(set(pairs)):
        endpoint, template = endpoints[endpoint_id], templates[template_id]
        answers = dict(LLMLabel.objects.filter(endpoint=endpoint, template=template, labels__isnull=False,
                                               utterance_id__in=units).values_list("utterance_id", "labels"))
        sources.append({"kind": "run", "endpoint": endpoint.pk, "endpoint_name": endpoint.name, "model": endpoint.model,
                        "template": template.pk, "template_name": template.name, "template_version": template.version,
                        "template_kind": template.kind, "answers": answers})
    for combination in LLMCombination.objects.filter(project=project):
        answers = dict(Annotation.objects.filter(project=project, origin=Origin.LLM,
                                                 model_version=combination.model_version, utterance_id__in=units)
                       .values_list("utterance_id", "value"))
        sources.append({"kind": "combination", "combination": combination.pk, "method": combination.method,
                        "model_version": combination.model_version, "answers": answers})

    for source in sources:
        answers = source.pop("answers")
        name = f"llm:{source.get('endpoint_name') or source.get('model_version')}"
        source["questions"] = {}
        for q in questions:
            q_gold, human = gold[q.key]
            common = [u for u in sorted(q_gold) if _is_chosen(q, (answers.get(u) or {}).get(q.key)) is not None]
            truth = [q_gold[u] for u in common]
            predicted = [_is_chosen(q, answers[u][q.key]) for u in common]
            overall = _measure(q, truth, predicted, common, human, name)
            per_language = {}
            for language in sorted({language_of.get(u, "") for u in common}):
                keep = [i for i, u in enumerate(common) if language_of.get(u, "") == language]
                per_language[language] = _measure(q, [truth[i] for i in keep], [predicted[i] for i in keep],
                                                  [common[i] for i in keep], human, name)
            source["questions"][q.key] = {**overall, "per_language": per_language}
    return {"questions": [q.key for q in questions], "sources": sources, "cotr_vs_direct": _side_by_side(sources),
            "note": "Against the human majority (ties left out) of the project's annotators. Alpha is "
                    "Krippendorff's (nominal) over the humans' ratings on the same items, without and with the LLM "
                    "as one more rater."}


def _measure(question: LabelQuestion, truth: list[Any], predicted: list[Any], units: list[int],
             human: list[tuple[int, str, Any]] | None, rater: str) -> dict[str, Any]:
    if not truth:
        return {"n_items": 0, "verdict": _verdict(0, None, None, None)}
    quality = _quality(question, truth, predicted)
    figures = _kappa_and_alpha(question, truth, predicted, units, human, rater)
    baseline = _majority_baseline(question, truth)
    return {**quality, **figures, "majority_baseline_macro_f1": baseline,
            "verdict": _verdict(len(truth), quality.get("macro_f1"), baseline,
                                figures.get("kappa_with_human_majority"))}


def _side_by_side(sources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per endpoint, its CoTR and direct sources' headline figures next to each other (newest version of each)."""
    rows = []
    by_endpoint: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for source in sources:
        if source["kind"] == "run" and source["template_kind"] in ("cotr", "direct"):
            kept = by_endpoint[source["endpoint"]].get(source["template_kind"])
            if kept is None or kept["template_version"] < source["template_version"]:
                by_endpoint[source["endpoint"]][source["template_kind"]] = source
    for endpoint_id, kinds in by_endpoint.items():
        if len(kinds) == 2:
            rows.append({"endpoint": endpoint_id, "endpoint_name": kinds["cotr"]["endpoint_name"],
                         **{kind: {key: {k: figures.get(k) for k in ("n_items", "macro_f1", "kappa_with_human_majority",
                                                                       "majority_baseline_macro_f1")}
                                   for key, figures in kinds[kind]["questions"].items()}
                            for kind in ("cotr", "direct")}})
    return rows
