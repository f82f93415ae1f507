"""Aggregating the ratings of one question into one answer per unit: the single implementation of the gold rules.

The quality report stores these answers (``AggregatedLabel``) and the gold export takes its labels from the same
functions, so a label in an export is always "adjudicated" or "this rule on these ratings".

- single choice: the policy's ``method`` — majority vote (confidence = the winner's share of the votes), or
  Dawid–Skene / MACE (confidence = posterior of the chosen label); a shared top is a **tie**, settled by the
  ``tie_policy`` (``abstain`` leaves the value None so the item goes to review, ``prefer_order`` takes the label
  listed first in the schema, ``random`` a seeded choice) and always marked; distribution = the vote shares;
- multi-label: label by label with the policy's ``multi_label_rule`` (``annotation.agreement.multi_label_decide``):
  ``share`` (more than ``share_above`` of the raters who answered the label chose it; intensity = lower median of
  their levels), ``mean_intensity`` (the mean level ≥ or > ``intensity_threshold``; intensity = the mean rounded),
  or Dawid–Skene / MACE per label. An empty answer ("none of these") says no to every label; a label a rater left
  unanswered (null) counts for neither side. A label exactly on the boundary is a tie: ``abstain`` leaves the
  whole value None (to review), ``random`` draws it, ``prefer_order`` leaves the label out; marked either way.
  Confidence = the weakest label decision; distribution = the share choosing each label (``_tied``: tied labels,
  ``_unanswered``: labels no rater answered);
- numeric: the mean, with n, mean, median, std, sem, min and max as the distribution; no confidence, no ties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from annotation.agreement import (
    Ratings,
    dawid_skene,
    dimension_summary,
    mace,
    ratings_from_long,
    soft_labels,
)
from annotation.agreement.aggregation import MULTI_LABEL_RULES, multi_label_decide, tied_winners, vote_counts
from annotation.quality.columns import QuestionRatings
from annotation.schema import Question, multi_label_levels

METHODS = ("majority", "dawid_skene", "mace")
TIE_POLICIES = ("abstain", "prefer_order", "random")
# What an item's label rests on, as the export's ``label_source`` column names it.
SOURCE_SINGLE = "single_annotation"
SOURCE_AGGREGATED = "aggregated"
SOURCE_TIE_BROKEN = "tie_broken"
SOURCE_TIE_OPEN = "tie_open"
SOURCE_ADJUDICATED = "adjudicated"


@dataclass(frozen=True)
class AggregationPolicy:
    """How ratings become one answer; a project's ``ProjectQualityPolicy`` fills it (defaults otherwise)."""

    method: str = "majority"
    tie_policy: str = "abstain"
    multi_label_rule: str = "share"
    share_above: float = 0.5
    intensity_threshold: float = 0.5
    intensity_inclusive: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"aggregation method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.tie_policy not in TIE_POLICIES:
            raise ValueError(f"tie policy must be one of {', '.join(TIE_POLICIES)}, got {self.tie_policy!r}")
        if self.multi_label_rule not in MULTI_LABEL_RULES:
            raise ValueError(f"multi-label rule must be one of {', '.join(MULTI_LABEL_RULES)}")

    def describe(self, question: Question) -> str:
        """The rule in words, for the data card."""
        if question.type == "single_choice":
            return f"{self.method}, ties: {self.tie_policy}"
        if question.type == "multi_label":
            if self.multi_label_rule == "share":
                return f"a label when more than {self.share_above:g} of its raters chose it, ties: {self.tie_policy}"
            if self.multi_label_rule == "mean_intensity":
                sign = "≥" if self.intensity_inclusive else ">"
                return f"a label when its mean level {sign} {self.intensity_threshold:g}"
            return f"{self.multi_label_rule} per label, ties: {self.tie_policy}"
        return "mean"


@dataclass
class AggregateRow:
    unit: int
    value: Any
    confidence: float | None
    distribution: dict[str, Any]
    n_ratings: int
    method: str
    tied: bool = False


@dataclass
class QuestionAggregate:
    """One question's aggregated answers, column-wise, units sorted by id.

    ``values[i]`` is the answer in the schema's own form (None: a tie left open); ``tied[i]`` says the decision
    sat on a tie (open, or settled by the tie policy). ``distribution(i)`` builds the i-th distribution lazily.
    """

    units: np.ndarray
    values: np.ndarray
    confidence: np.ndarray
    n_ratings: np.ndarray
    tied: np.ndarray
    method: str
    distribution: Callable[[int], dict[str, Any]] = field(repr=False)
    spread: np.ndarray | None = None  # numeric: the standard deviation (n - 1) within each unit, NaN for one rating

    @property
    def size(self) -> int:
        return int(self.units.size)

    def sources(self) -> np.ndarray:
        """Per unit: single_annotation, aggregated, tie_broken or tie_open."""
        out = np.full(self.size, SOURCE_AGGREGATED, dtype=object)
        out[self.n_ratings == 1] = SOURCE_SINGLE
        out[self.tied] = SOURCE_TIE_BROKEN
        out[self.tied & self.missing()] = SOURCE_TIE_OPEN
        return out

    def missing(self) -> np.ndarray:
        """Which units have no value (a tie left open)."""
        return np.asarray(pd.isna(self.values), dtype=bool) if self.size else np.zeros(0, dtype=bool)

    def rows(self) -> list[AggregateRow]:
        return [
            AggregateRow(unit=int(unit), value=value, confidence=_finite(confidence), distribution=self.distribution(i),
                         n_ratings=int(n), method=self.method, tied=bool(tied))
            for i, (unit, value, confidence, n, tied) in enumerate(zip(
                self.units.tolist(), self.values.tolist(), self.confidence.tolist(), self.n_ratings.tolist(),
                self.tied.tolist()))
        ]


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _objects(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _sorted(aggregate: QuestionAggregate) -> QuestionAggregate:
    order = np.argsort(aggregate.units, kind="stable")
    if (order == np.arange(order.size)).all():
        return aggregate
    inner = aggregate.distribution
    return QuestionAggregate(
        units=aggregate.units[order], values=aggregate.values[order], confidence=aggregate.confidence[order],
        n_ratings=aggregate.n_ratings[order], tied=aggregate.tied[order], method=aggregate.method,
        distribution=lambda i: inner(int(order[i])), spread=None if aggregate.spread is None else aggregate.spread[order],
    )


def aggregate_single_choice(question: Question, ratings: QuestionRatings, policy: AggregationPolicy, *,
                            encoded: Ratings | None = None) -> QuestionAggregate:
    """``encoded``: the same ratings already encoded with string values (saves encoding them twice)."""
    if encoded is None:
        encoded = ratings_from_long(ratings.unit, ratings.rater, ratings.answer.astype(str))
    values = [str(v) for v in encoded.values.tolist()]
    order = list(question.labels) + sorted(set(values) - set(question.labels))
    preference = -np.array([order.index(v) for v in values], dtype=np.float64)
    rated, counts = vote_counts(encoded)
    n_ratings = counts.sum(axis=1).astype(np.int64)
    if policy.method == "majority":
        scores = counts
        confidence_of = counts / n_ratings[:, None]
        method = f"majority/{policy.tie_policy}"
    else:
        crowd = dawid_skene(encoded) if policy.method == "dawid_skene" else mace(encoded)
        scores = confidence_of = crowd.posteriors.to_numpy()
        method = policy.method
    winner, tied = tied_winners(scores, tie_policy=policy.tie_policy, preference=preference,  # type: ignore[arg-type]
                                seed=policy.seed)
    labels = np.asarray(encoded.values, dtype=object)[winner].astype(object)
    confidence = confidence_of[np.arange(winner.size), winner].astype(np.float64)
    if policy.tie_policy == "abstain":
        labels[tied] = None
        confidence[tied] = np.nan
    shares: list[np.ndarray] = []  # the vote shares, made when a distribution is first asked for (the export never)

    def distribution(i: int) -> dict[str, Any]:
        if not shares:
            shares.append(soft_labels(encoded).to_numpy())
        row = shares[0][i]
        return {values[j]: float(row[j]) for j in np.flatnonzero(row)}

    return _sorted(QuestionAggregate(
        units=np.asarray(encoded.units[rated], dtype=np.int64), values=labels,
        confidence=confidence, n_ratings=n_ratings, tied=tied, method=method, distribution=distribution,
    ))


def distinct_answers(answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code of each answer, the first row of each code): answers that print alike share a code, so each distinct
    answer is parsed once (a million ratings hold a few hundred answers). The same answer written with its labels in
    another order may get a second code; parsing it twice costs nothing more."""
    codes, uniques = pd.factorize(pd.Series([repr(a) for a in answers.tolist()], dtype=object))
    first = np.full(len(uniques), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
    return codes.astype(np.int64), first


def _levels_matrix(question: Question, answers: np.ndarray) -> np.ndarray:
    """Ratings × labels: the level given (0 absent), NaN where the rating left the label unanswered."""
    column = {label: j for j, label in enumerate(question.labels)}
    codes, first = distinct_answers(answers)
    distinct = np.zeros((first.size, len(question.labels)), dtype=np.float64)
    for code, row in enumerate(first.tolist()):
        chosen, unanswered = multi_label_levels(answers[row])
        for label, level in chosen.items():
            if label in column:
                distinct[code, column[label]] = level
        for label in unanswered:
            if label in column:
                distinct[code, column[label]] = np.nan
    return distinct[codes]


def aggregate_multi_label(question: Question, ratings: QuestionRatings, policy: AggregationPolicy, *,
                          levels: np.ndarray | None = None) -> QuestionAggregate:
    """``levels``: the ratings × labels matrix ``_levels_matrix`` gives, when the caller has parsed the answers."""
    labels = list(question.labels)
    units, unit_idx = np.unique(ratings.unit, return_inverse=True)
    unit_idx = unit_idx.reshape(-1).astype(np.int64)
    _, rater_idx = np.unique(ratings.rater.astype(str), return_inverse=True)
    if levels is None:
        levels = _levels_matrix(question, ratings.answer)
    decision = multi_label_decide(
        unit_idx, rater_idx.reshape(-1).astype(np.int64), levels, units.size, rule=policy.multi_label_rule,
        share_above=policy.share_above, threshold=policy.intensity_threshold, inclusive=policy.intensity_inclusive,
    )
    present = decision.present.copy()
    tied_cells = decision.tied
    if policy.tie_policy == "random" and tied_cells.any():
        draw = np.random.default_rng(policy.seed).random(tied_cells.shape) < 0.5
        present |= tied_cells & draw
    tied = np.asarray(tied_cells.any(axis=1) if labels else np.zeros(units.size, dtype=bool), dtype=bool)
    intensity = np.where(present, np.maximum(decision.intensity, 1), 0) if question.intensity else present.astype(np.int64)
    # Units with the same answer share one value object (a million units hold a few hundred answers).
    distinct, inverse = np.unique(intensity, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)

    def value_of(row: np.ndarray) -> Any:
        if question.intensity:
            return {labels[j]: int(row[j]) for j in np.flatnonzero(row)}
        return [labels[j] for j in np.flatnonzero(row)]

    shared = [value_of(row) for row in distinct]
    values = _objects([shared[k] for k in inverse.tolist()])
    if policy.tie_policy == "abstain":
        values[tied] = None
    n_ratings = np.bincount(unit_idx, minlength=units.size).astype(np.int64)
    share = decision.share
    method = {"share": f"share>{policy.share_above:g}",
              "mean_intensity": f"mean{'>=' if policy.intensity_inclusive else '>'}{policy.intensity_threshold:g}",
              }.get(policy.multi_label_rule, f"{policy.multi_label_rule}_per_label")

    def distribution(i: int) -> dict[str, Any]:
        out: dict[str, Any] = {labels[j]: float(share[i, j]) for j in range(len(labels))
                               if not np.isnan(share[i, j]) and share[i, j] > 0}
        if tied_cells[i].any():
            out["_tied"] = [labels[j] for j in np.flatnonzero(tied_cells[i])]
        unanswered = [labels[j] for j in np.flatnonzero(decision.answered[i] == 0)]
        if unanswered:
            out["_unanswered"] = unanswered
        return out

    return QuestionAggregate(units=units.astype(np.int64), values=values, confidence=decision.confidence,
                             n_ratings=n_ratings, tied=tied, method=method, distribution=distribution)


def aggregate_numeric(ratings: QuestionRatings, *, encoded: Ratings | None = None) -> QuestionAggregate:
    """``encoded``: the same ratings already encoded as numbers."""
    if encoded is None:
        encoded = ratings_from_long(ratings.unit, ratings.rater, pd.Series(ratings.answer.astype(np.float64)))
    summary = dimension_summary(encoded)
    records = summary.to_dict(orient="records")

    def distribution(i: int) -> dict[str, Any]:
        out: dict[str, Any] = {str(name): _finite(float(value)) for name, value in records[i].items()}
        out["n"] = int(records[i]["n"])
        return out

    return _sorted(QuestionAggregate(
        units=np.asarray(summary.index, dtype=np.int64), values=_objects(summary["mean"].astype(float).tolist()),
        confidence=np.full(len(summary), np.nan), n_ratings=summary["n"].to_numpy(dtype=np.int64),
        tied=np.zeros(len(summary), dtype=bool), method="mean", distribution=distribution,
        spread=summary["std"].to_numpy(dtype=np.float64),
    ))


def aggregate_question(question: Question, ratings: QuestionRatings, policy: AggregationPolicy | None = None, *,
                       encoded: Ratings | None = None, levels: np.ndarray | None = None) -> QuestionAggregate | None:
    """The aggregated answers of every unit with at least one rating; None for questions without a gold rule.

    ``encoded`` (single choice: string values; numeric: numbers) and ``levels`` (multi-label): the ratings already
    parsed by the caller."""
    policy = policy or AggregationPolicy()
    if question.type == "single_choice":
        if ratings.size == 0:
            return _empty("majority")
        return aggregate_single_choice(question, ratings, policy, encoded=encoded)
    if question.type == "multi_label":
        return aggregate_multi_label(question, ratings, policy, levels=levels) if ratings.size else _empty(policy.multi_label_rule)
    if question.type == "numeric":
        return aggregate_numeric(ratings, encoded=encoded) if ratings.size else _empty("mean")
    return None


def _empty(method: str) -> QuestionAggregate:
    return QuestionAggregate(units=np.zeros(0, np.int64), values=_objects([]), confidence=np.zeros(0),
                             n_ratings=np.zeros(0, np.int64), tied=np.zeros(0, bool), method=method,
                             distribution=lambda i: {})


def _from_rows(rows: Sequence[AggregateRow]) -> QuestionAggregate:
    return QuestionAggregate(
        units=np.array([r.unit for r in rows], dtype=np.int64), values=_objects([r.value for r in rows]),
        confidence=np.array([np.nan if r.confidence is None else r.confidence for r in rows], dtype=np.float64),
        n_ratings=np.array([r.n_ratings for r in rows], dtype=np.int64), tied=np.array([r.tied for r in rows], bool),
        method=rows[0].method if rows else "", distribution=lambda i: rows[i].distribution,
    )


def aggregation_summary(aggregate: QuestionAggregate | Sequence[AggregateRow], review_confidence_below: float
                        ) -> dict[str, Any]:
    """What the report says about an aggregation: coverage, ties, confidence, items under the review threshold.

    Read from the aggregate's columns (no per-unit rows are built); numeric aggregates add the mean within-unit
    standard deviation."""
    if not isinstance(aggregate, QuestionAggregate):
        aggregate = _from_rows(aggregate)
    values = aggregate.values.tolist()
    missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    confidence = aggregate.confidence.astype(np.float64)
    finite = np.isfinite(confidence)
    several = aggregate.n_ratings >= 2
    counts: dict[str, int] = {}
    empty = 0
    for value in values:
        if isinstance(value, str):
            counts[value] = counts.get(value, 0) + 1
        elif isinstance(value, (list, dict)):
            empty += not value
            for label in value:
                counts[str(label)] = counts.get(str(label), 0) + 1
    summary: dict[str, Any] = {
        "method": aggregate.method if aggregate.size else None,
        "n_units": aggregate.size,
        "n_units_with_two_or_more": int(several.sum()),
        "n_open_ties": int(missing.sum()),
        "n_broken_ties": int((aggregate.tied & ~missing).sum()),
        "n_none_of_these": empty,
        "mean_confidence": float(confidence[finite].mean()) if finite.any() else None,
        "n_below_review_threshold": int((several & (missing | (finite & (confidence < review_confidence_below)))).sum()),
        "review_confidence_below": review_confidence_below,
        "label_counts": dict(sorted(counts.items())),
    }
    if aggregate.spread is not None:
        spread = aggregate.spread[np.isfinite(aggregate.spread)]
        summary["mean_within_unit_std"] = float(spread.mean()) if spread.size else None
    return summary
