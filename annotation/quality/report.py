"""The agreement report: pure computation over loaded annotation columns (no Django), calling annotation.agreement.

Per question and perspective, over human ratings only: Krippendorff's alpha at the question's level with a seeded
bootstrap interval, counts, observed agreement, kappas where they apply, alpha per label, per language, per
annotator (leave-one-out and agreement with the rest) and per annotator pair; then every model or LLM version
against the aggregated human answer, and a summary of that aggregation. See README.md for the choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from annotation.agreement import (
    AgreementInputError,
    AlphaResult,
    Metric,
    Ratings,
    alpha_by_group,
    annotator_agreement,
    classification_report,
    cohen_kappa_for_raters,
    concordance_correlation,
    fleiss_kappa,
    krippendorff_alpha,
    label_level_ratings,
    masi_matrix,
    masi_usable,
    metric_from_matrix,
    multi_label_report,
    observed_agreement,
    pairwise_alpha,
    rating_counts,
    ratings_from_long,
)
from annotation.agreement.sets import UNANSWERED, alpha_per_label
from annotation.quality.aggregate import (
    AggregationPolicy,
    QuestionAggregate,
    aggregate_question,
    aggregation_summary,
    distinct_answers,
)
from annotation.quality.columns import AnnotationColumns, QuestionRatings, question_ratings
from annotation.schema import Question

# 2: confusion between annotators, label distribution per language, alpha per week;
# 3: "none of these" answers, unanswered labels, per-label alpha by language, multi-label aggregation rules.
REPORT_VERSION = 3
RELIABILITY_MINIMA = (0.667, 0.8)  # Krippendorff's (2004) thresholds for tentative and firm conclusions

SKIP_REASONS = {
    "text": "free text has no level of measurement; agreement on rationales is not computed",
    "segments": "time segments need a unitizing alpha (u-alpha) over timelines, which is not implemented",
}
LEVELS = {"single_choice": "nominal", "multi_label": "masi", "numeric": "interval"}


@dataclass(frozen=True)
class ReportParams:
    n_resamples: int = 1000
    seed: int = 0
    confidence_level: float = 0.95
    max_pairwise_raters: int = 50
    max_pairwise_kappa_raters: int = 20
    max_annotator_breakdown: int = 200
    aggregation_method: str = "majority"
    tie_policy: str = "abstain"
    review_confidence_below: float = 0.6
    multi_label_rule: str = "share"
    share_above: float = 0.5
    intensity_threshold: float = 0.5
    intensity_inclusive: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def policy(self) -> AggregationPolicy:
        return AggregationPolicy(
            method=self.aggregation_method, tie_policy=self.tie_policy, multi_label_rule=self.multi_label_rule,
            share_above=self.share_above, intensity_threshold=self.intensity_threshold,
            intensity_inclusive=self.intensity_inclusive,
        )  # no seed: a random tie-break is the gold rule's own (seed 0), as in the gold export, not the bootstrap's


AggregatesByQuestion = dict[tuple[str, str], QuestionAggregate]


def jsonable(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, NaN and infinities to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    return value


def _alpha_dict(result: AlphaResult) -> dict[str, Any]:
    out = result.as_dict()
    out["probability_below"] = {str(m): result.probability_below(m) for m in RELIABILITY_MINIMA}
    return out


def _frame_records(frame: pd.DataFrame, index_name: str) -> list[dict[str, Any]]:
    return [
        {index_name: key, **{str(name): value for name, value in row.items()}}
        for key, row in zip(frame.index.tolist(), frame.to_dict(orient="records"))
    ]


def _pairwise(
    encoded: Ratings, level: str, metric: Metric | None, params: ReportParams, nominal: bool
) -> dict[str, Any]:
    if encoded.n_raters > params.max_pairwise_raters:
        return {"skipped": f"{encoded.n_raters} raters; the pairwise matrix is computed up to {params.max_pairwise_raters}"}
    alphas, shared = pairwise_alpha(encoded, level, metric=metric)
    raters = [str(r) for r in alphas.index]
    out: dict[str, Any] = {"raters": raters, "alpha": alphas.to_numpy(), "shared_units": shared.to_numpy()}
    if nominal and encoded.n_raters <= params.max_pairwise_kappa_raters:
        kappa = np.full((len(raters), len(raters)), np.nan)
        shared_counts = shared.to_numpy()
        for a in range(len(raters)):
            for b in range(a + 1, len(raters)):
                if shared_counts[a, b] > 0:
                    kappa[a, b] = kappa[b, a] = cohen_kappa_for_raters(encoded, alphas.index[a], alphas.index[b]).kappa
        out["cohen_kappa"] = kappa
    return out


def _annotators(encoded: Ratings, level: str, metric: Metric | None, params: ReportParams) -> Any:
    if encoded.n_raters > params.max_annotator_breakdown:
        return {"skipped": f"{encoded.n_raters} raters; per-annotator alpha is computed up to {params.max_annotator_breakdown}"}
    return _frame_records(annotator_agreement(encoded, level, metric=metric), "rater")


def _label_lists(answers: np.ndarray) -> list[list[str]]:
    """The chosen labels of each answer (levels > 0; unanswered labels are not chosen)."""
    return [sorted(str(k) for k, v in a.items() if v) if isinstance(a, Mapping) else [str(x) for x in a] for a in answers]


def _answer_key(answer: Any) -> tuple[tuple[str, float], ...]:
    """(label, level) pairs of a stored multi-label answer: level 1 for a list, the intensity for a mapping, and
    UNANSWERED for a label left unanswered (null). An empty answer ("none of these") is the empty tuple.

    Stored answers were validated (annotation.schema), so a type check per answer is all the parsing needed.
    """
    if type(answer) is dict:
        return tuple(sorted((str(label), UNANSWERED if level is None else float(level))
                            for label, level in answer.items() if level is None or level))
    return tuple(sorted((str(label), 1.0) for label in answer))


def _label_levels(levels_of_values: list[dict[str, float]], label: str, binary: bool) -> np.ndarray:
    """One label's level in each distinct answer; NaN where the answer left it unanswered."""
    levels = np.array([value.get(label, 0.0) for value in levels_of_values], dtype=np.float64)
    missing = levels == UNANSWERED
    if binary:
        levels = (levels > 0).astype(np.float64)
    levels[missing] = np.nan
    return levels


def _per_label(
    encoded: Ratings, levels_of_values: list[dict[str, float]], labels: tuple[str, ...], level: str, binary: bool,
    resample: dict[str, Any],
) -> dict[str, Any]:
    """Alpha per label from ratings encoded once (the same numbers as ``per_label_alpha``, without re-parsing)."""
    levels = np.column_stack([_label_levels(levels_of_values, label, binary) for label in labels])
    levels = levels.reshape(encoded.n_values, len(labels))
    return {label: _alpha_dict(result) for label, result in alpha_per_label(encoded, levels, labels, level, **resample).items()}


def _alpha_by_language(
    ratings: Ratings, languages: tuple[np.ndarray, np.ndarray], level: str, metric: Metric | None = None,
    **resample: Any,
) -> list[dict[str, Any]]:
    """``alpha_by_group`` by language; ``languages`` = (code per rating, sorted names): grouping by the codes saves
    hashing every rating's language string once per call, and sorted codes keep the languages' order."""
    codes, names = languages
    table = alpha_by_group(ratings, codes, level, metric=metric, **resample)
    table.index = pd.Index([names[int(code)] for code in table.index.tolist()], name=table.index.name)
    return _frame_records(table, "language")


def _language_codes(language: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes as floats: a missing language is NaN, left out of every group as alpha_by_group leaves it."""
    codes, names = pd.factorize(pd.Series(language, dtype=object), sort=True)
    return np.where(codes < 0, np.nan, codes.astype(np.float64)), np.asarray(names, dtype=object)


def _per_label_by_language(
    encoded: Ratings, levels_of_values: list[dict[str, float]], labels: tuple[str, ...], level: str, binary: bool,
    languages: tuple[np.ndarray, np.ndarray], resample: dict[str, Any],
) -> dict[str, Any]:
    """Per label, alpha (with interval) per language of the rated utterances."""
    codes, names = languages
    out: dict[str, Any] = {}
    for label in labels:
        levels = _label_levels(levels_of_values, label, binary)
        answered = ~np.isnan(levels[encoded.value_idx])
        ratings = label_level_ratings(encoded, levels)
        if ratings.n_ratings == 0:
            out[label] = []
            continue
        out[label] = _alpha_by_language(ratings, (codes[answered], names), level, **resample)
    return out


def _rating_levels(keyed: Ratings, labels: tuple[str, ...]) -> np.ndarray:
    """Ratings × labels levels (0 absent, NaN unanswered) from ratings encoded by answer, for the aggregation."""
    levels_of_values = [dict(key) for key in keyed.values]
    distinct = np.column_stack([_label_levels(levels_of_values, label, False) for label in labels])
    return distinct.reshape(keyed.n_values, len(labels))[keyed.value_idx]


@dataclass(frozen=True)
class EncodedQuestion:
    """One question's human ratings encoded once, shared by the report and the aggregation."""

    ratings: Ratings
    level: str
    metric: Metric | None = None
    keyed: Ratings | None = None  # multi-label: one value per distinct (label, level) answer
    n_unknown_sets: int = 0  # multi-label: ratings left out of MASI because a label they left unanswered matters
    kept: np.ndarray | None = None  # multi-label: which of the question's ratings ``ratings`` holds


def _objects(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # item by item: numpy would unpack equal-length tuples into a 2-D array
        array[i] = value
    return array


def encode_question(question: Question, ratings: QuestionRatings) -> EncodedQuestion:
    if question.type == "single_choice":
        return EncodedQuestion(ratings_from_long(ratings.unit, ratings.rater, ratings.answer.astype(str)), "nominal")
    if question.type == "multi_label":
        codes, first = distinct_answers(ratings.answer)
        keys = _objects([_answer_key(ratings.answer[row]) for row in first.tolist()])[codes]
        keyed = ratings_from_long(ratings.unit, ratings.rater, pd.Series(keys, dtype=object))
        # Label sets, in the first-appearance order label_set_ratings gives them (the bootstrap depends on it).
        set_of_key = _objects([tuple(sorted({label for label, level in key if level != UNANSWERED}))
                               for key in keyed.values])
        unanswered_of_key = [frozenset(label for label, level in key if level == UNANSWERED) for key in keyed.values]
        usable = masi_usable(ratings.unit, [unanswered_of_key[v] for v in keyed.value_idx.tolist()])
        label_sets = set_of_key[keyed.value_idx]
        label_sets[~usable] = None
        sets = ratings_from_long(ratings.unit, ratings.rater, pd.Series(label_sets, dtype=object))
        metric = metric_from_matrix("masi", masi_matrix([tuple(v) for v in sets.values]))
        return EncodedQuestion(sets, "nominal", metric, keyed, n_unknown_sets=int((~usable).sum()), kept=usable)
    numbers = pd.Series(ratings.answer.astype(np.float64))
    return EncodedQuestion(ratings_from_long(ratings.unit, ratings.rater, numbers), "interval")


def annotator_confusion(encoded: Ratings, labels: tuple[str, ...]) -> dict[str, Any]:
    """How often one annotator chose label k while another chose label l on the same unit.

    ``pairs[k][l]`` counts ordered pairs of ratings by different raters of one unit (so the matrix is symmetric
    and each unordered pair is counted twice); ``coincidences`` weights each unit's pairs by 1/(m_u - 1), which is
    Krippendorff's coincidence matrix (it sums to the number of pairable values). Units rated once add nothing.
    """
    order = list(labels) + sorted({str(v) for v in encoded.values} - set(labels))
    position = {label: i for i, label in enumerate(order)}
    column_of_value = np.array([position[str(v)] for v in encoded.values], dtype=np.int64)
    size = len(order)
    per_unit = np.bincount(
        encoded.unit_idx * size + column_of_value[encoded.value_idx], minlength=encoded.n_units * size
    ).reshape(encoded.n_units, size).astype(np.float64)
    m = per_unit.sum(axis=1)
    pairs = per_unit.T @ per_unit - np.diag(per_unit.sum(axis=0))
    weights = np.where(m >= 2, 1.0 / np.maximum(m - 1.0, 1.0), 0.0)
    weighted = per_unit * weights[:, None]
    coincidences = weighted.T @ per_unit - np.diag(weighted.sum(axis=0))
    return {"labels": order, "pairs": pairs.round().astype(np.int64), "coincidences": coincidences}


def label_distribution(question: Question, ratings: QuestionRatings, keyed: Ratings | None = None) -> dict[str, Any] | None:
    """Human ratings per language and label: the chosen label (single choice) or each label chosen (multi-label).

    ``n_ratings`` per language is the denominator for shares (multi-label ratings may choose several labels);
    ``n_none`` counts the multi-label ratings that chose no label ("none of these"). ``keyed``: the multi-label
    ratings encoded by answer (``EncodedQuestion.keyed``), so answers are not parsed again.
    """
    codes: np.ndarray
    if question.type == "single_choice":
        codes, uniques = pd.factorize(pd.Series(ratings.answer.astype(str), dtype=object))
        chosen = [[str(value)] for value in uniques]
    elif question.type == "multi_label" and keyed is not None:
        codes = keyed.value_idx
        chosen = [[label for label, level in key if level != UNANSWERED] for key in keyed.values]
    elif question.type == "multi_label":
        codes, first = distinct_answers(ratings.answer)
        chosen = _label_lists(ratings.answer[first])
    else:
        return None
    order = list(question.labels) + sorted({label for labels in chosen for label in labels} - set(question.labels))
    position = {label: i for i, label in enumerate(order)}
    chooses = np.zeros((len(chosen), len(order)), dtype=np.int64)  # distinct answer × label: how often chosen
    for row, labels in enumerate(chosen):
        for label in labels:
            chooses[row, position[label]] += 1
    language_idx, languages = pd.factorize(pd.Series(ratings.language.astype(str), dtype=object), sort=True)
    per_language = np.bincount(language_idx * len(chosen) + codes, minlength=len(languages) * len(chosen))
    per_language = per_language.reshape(len(languages), len(chosen))
    none = np.array([not labels for labels in chosen], dtype=bool)
    counts = per_language @ chooses
    return {
        "labels": order,
        "languages": [
            {"language": str(language), "n_ratings": per_language[i].sum(), "n_none": per_language[i, none].sum(),
             "counts": counts[i]}
            for i, language in enumerate(languages)
        ],
    }


SECONDS_PER_DAY = 86_400


def week_starts(epoch_seconds: np.ndarray) -> np.ndarray:
    """The Monday (UTC, ISO week) of each timestamp, as days since 1970-01-01 (a Thursday)."""
    days = np.floor_divide(epoch_seconds, SECONDS_PER_DAY)
    return days - (days + 3) % 7


def alpha_over_time(
    ratings: QuestionRatings, encoded: Ratings, level: str, metric: Metric | None, resample: dict[str, Any]
) -> dict[str, Any] | None:
    """Alpha per ISO week: each unit belongs to the week of its latest human rating (the week it was completed),
    so every week's alpha is over whole units and the weeks partition the units."""
    if ratings.created_at is None or ratings.size == 0:
        return None
    frame = pd.DataFrame({"unit": ratings.unit, "week": week_starts(ratings.created_at)})
    unit_week = frame.groupby("unit")["week"].transform("max").to_numpy()
    # encoded.unit_idx follows the rating order of ``ratings`` (ratings_from_long keeps it), so weeks line up.
    table = alpha_by_group(encoded, unit_week, level, metric=metric, **resample)
    weeks = []
    for week, row in zip(table.index.tolist(), table.to_dict(orient="records")):
        weeks.append({
            "week_start": str(np.datetime64(int(week), "D")),
            "n_units": int(np.unique(ratings.unit[unit_week == week]).size),
            **row,
        })
    return {"period": "week", "rule": "units by the ISO week (UTC) of their latest human rating", "weeks": weeks}


def _human_block(
    question: Question, ratings: QuestionRatings, encoded_question: EncodedQuestion, params: ReportParams
) -> dict[str, Any]:
    resample: dict[str, Any] = {
        "n_resamples": params.n_resamples, "confidence_level": params.confidence_level, "seed": params.seed
    }
    encoded, level, metric = encoded_question.ratings, encoded_question.level, encoded_question.metric
    block: dict[str, Any] = {"level": LEVELS[question.type]}
    languages = _language_codes(ratings.language)
    alpha = krippendorff_alpha(encoded, level, metric=metric, **resample)
    if question.type == "single_choice":
        block["observed_agreement"] = observed_agreement(encoded)
        one_hot = [{str(value): 1.0} for value in encoded.values]
        block["by_label"] = _per_label(encoded, one_hot, question.labels, "nominal", True, resample)
        block["by_label_language"] = _per_label_by_language(encoded, one_hot, question.labels, "nominal", True,
                                                            languages, resample)
        fleiss = fleiss_kappa(encoded).as_dict()
        if encoded.n_raters == 2:
            cohen = cohen_kappa_for_raters(encoded, encoded.raters[0], encoded.raters[1]).as_dict()
        else:
            cohen = {"applicable": False, "reason": f"Cohen's kappa is for two raters; there are {encoded.n_raters} "
                                                    "(see the pairwise matrix)"}
        block["kappa"] = {"fleiss": fleiss, "cohen": cohen}
    elif question.type == "multi_label":
        keyed = encoded_question.keyed
        assert keyed is not None
        block["observed_agreement"] = 1.0 - alpha.observed_disagreement if alpha.n_pairable_values else None
        block["exact_match_agreement"] = observed_agreement(encoded)
        levels_of_values = [dict(key) for key in keyed.values]
        by_label: dict[str, Any] = {"binary": _per_label(keyed, levels_of_values, question.labels, "nominal", True, resample)}
        if question.intensity:
            by_label["intensity"] = _per_label(keyed, levels_of_values, question.labels, "ordinal", False, resample)
        block["by_label"] = by_label
        block["by_label_language"] = _per_label_by_language(keyed, levels_of_values, question.labels, "nominal", True,
                                                            languages, resample)
        block["kappa"] = {"applicable": False, "reason": "kappas need one category per rating; see MASI and per-label alpha"}
    else:
        block["observed_agreement"] = None
        block["kappa"] = {"applicable": False, "reason": "numeric answers: interval alpha is the agreement measure"}
    block["alpha"] = _alpha_dict(alpha)
    block["counts"] = {**rating_counts(encoded).as_dict(), "n_duplicates_dropped": ratings.n_duplicates_dropped}
    if question.type == "multi_label":
        block["counts"]["n_ratings_all"] = ratings.size
        block["counts"]["n_unknown_label_sets"] = encoded_question.n_unknown_sets
    # Per-rating columns of the ratings alpha is computed on (MASI leaves unknown label sets out).
    kept = encoded_question.kept
    alpha_ratings = ratings if kept is None else replace(
        ratings, unit=ratings.unit[kept], rater=ratings.rater[kept], answer=ratings.answer[kept],
        language=ratings.language[kept], created_at=None if ratings.created_at is None else ratings.created_at[kept])
    kept_languages = languages if kept is None else (languages[0][kept], languages[1])
    block["by_language"] = _alpha_by_language(encoded, kept_languages, level, metric=metric, **resample)
    block["annotators"] = _annotators(encoded, level, metric, params)
    block["pairwise"] = _pairwise(encoded, level, metric, params, nominal=question.type == "single_choice")
    if question.type == "single_choice":
        block["confusion"] = annotator_confusion(encoded, question.labels)
    block["label_distribution"] = label_distribution(question, ratings, encoded_question.keyed)
    block["over_time"] = alpha_over_time(alpha_ratings, encoded, level, metric, resample)
    return block


def _answers_by_unit(aggregate: QuestionAggregate | None) -> dict[Any, Any]:
    if aggregate is None:
        return {}
    return {u: v for u, v in zip(aggregate.units.tolist(), aggregate.values.tolist()) if v is not None}


def _model_block(question: Question, machine: QuestionRatings, gold: QuestionAggregate | None,
                 imported: QuestionAggregate | None = None) -> list[dict[str, Any]]:
    """Each model or LLM version against the aggregated human answer on the units both have: the project's
    annotators' where they answered, else the human labels imported with the corpus (e.g. a test split)."""
    imported_by_unit = _answers_by_unit(imported)
    project_by_unit = _answers_by_unit(gold)
    gold_by_unit = {**imported_by_unit, **project_by_unit}
    out = []
    for version in sorted(set(machine.rater.tolist())):
        mine = machine.rater == version
        units = machine.unit[mine].tolist()
        pairs = [(gold_by_unit[u], a) for u, a in zip(units, machine.answer[mine]) if u in gold_by_unit]
        entry: dict[str, Any] = {"model_version": version, "n_predictions": int(mine.sum()), "n_items": len(pairs),
                                 "reference": {"project_human": sum(u in project_by_unit for u in units),
                                               "imported_human": sum(u in imported_by_unit and u not in project_by_unit
                                                                     for u in units)}}
        if not pairs:
            entry["reason"] = "no item has both this model's answer and a human answer (the project's or imported)"
            out.append(entry)
            continue
        truth, predicted = [p[0] for p in pairs], [p[1] for p in pairs]
        if question.type == "single_choice":
            labels = list(question.labels) + sorted({str(v) for v in truth + predicted} - set(question.labels))
            entry.update(classification_report([str(t) for t in truth], [str(p) for p in predicted], labels=labels).as_dict())
        elif question.type == "multi_label":
            true_sets = _label_lists(_objects(truth))
            pred_sets = _label_lists(_objects(predicted))
            report = multi_label_report([[label in t for label in question.labels] for t in map(set, true_sets)],
                                        [[label in p for label in question.labels] for p in map(set, pred_sets)],
                                        question.labels)
            entry["exact_match_accuracy"] = float(np.mean([set(t) == set(p) for t, p in zip(true_sets, pred_sets)]))
            entry["macro_f1"] = report.macro_f1
            entry["f1_by_label"] = {str(label): float(f1) for label, f1 in report.per_label["f1"].items()}
        else:
            x, y = np.array(truth, dtype=np.float64), np.array(predicted, dtype=np.float64)
            entry["ccc"] = concordance_correlation(x, y)
            entry["mean_absolute_error"] = float(np.mean(np.abs(x - y)))
        out.append(entry)
    return out


def _question_report(
    question: Question, columns: AnnotationColumns, params: ReportParams, aggregates: AggregatesByQuestion,
    reference: AnnotationColumns | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": question.key, "type": question.type, "title": question.title}
    if question.type not in LEVELS:
        entry["skipped"] = SKIP_REASONS.get(question.type, "no agreement measure for this question type")
        return entry
    entry["level"] = LEVELS[question.type]
    perspectives = []
    for perspective in columns.perspectives_of(question.key):
        human = question_ratings(columns, question.key, perspective, human=True)
        block: dict[str, Any] = {"perspective": perspective}
        gold: QuestionAggregate | None = None
        if human.size == 0:
            block["skipped"] = "no human ratings"
        else:
            encoded: EncodedQuestion | None = None
            try:
                encoded = encode_question(question, human)
                block.update(_human_block(question, human, encoded, params))
            except AgreementInputError as exc:
                block["error"] = str(exc)
            gold = aggregate_question(
                question, human, params.policy(),
                encoded=encoded.ratings if encoded is not None and question.type != "multi_label" else None,
                levels=_rating_levels(encoded.keyed, question.labels) if encoded is not None and encoded.keyed is not None else None,
            )
            assert gold is not None
            aggregates[(question.key, perspective)] = gold
            block["aggregation"] = aggregation_summary(gold, params.review_confidence_below)
        machine = question_ratings(columns, question.key, perspective, human=False)
        imported: QuestionAggregate | None = None
        if machine.size and reference is not None and question.key in reference.answers:
            imported = aggregate_question(
                question, question_ratings(reference, question.key, perspective, human=True), params.policy())
        block["models"] = _model_block(question, machine, gold, imported) if machine.size else []
        perspectives.append(block)
    entry["perspectives"] = perspectives
    return entry


def agreement_report_build(
    columns: AnnotationColumns, questions: list[Question], params: ReportParams,
    *, on_question: Callable[[int, int], None] | None = None, reference: AnnotationColumns | None = None,
) -> tuple[dict[str, Any], AggregatesByQuestion]:
    """The report as plain JSON, and the aggregated human answers it summarised (to store as gold).

    ``on_question(done, total)`` is called after each question (job progress). ``reference``: human labels
    imported with a project's corpus; models are compared with them where the project's annotators have not
    answered (they take no part in the annotators' agreement).
    """
    aggregates: AggregatesByQuestion = {}
    reports = []
    for done, question in enumerate(questions, start=1):
        reports.append(_question_report(question, columns, params, aggregates, reference))
        if on_question is not None:
            on_question(done, len(questions))
    human = columns.is_human
    report = {
        "version": REPORT_VERSION,
        "params": params.as_dict(),
        "totals": {
            "annotations": columns.size,
            "human_annotations": int(human.sum()),
            "machine_annotations": int((~human).sum()),
            "units": int(np.unique(columns.unit).size),
            "human_raters": int(np.unique(columns.rater[human]).size),
            "model_versions": sorted(set(columns.rater[~human].tolist())),
        },
        "questions": reports,
    }
    return jsonable(report), aggregates
