"""Aggregating the human ratings of one question into one answer per unit, with a confidence and a distribution.

- single choice: majority vote with the project's tie policy (confidence = the winner's share of the votes), or
  Dawid–Skene / MACE (confidence = posterior of the chosen label); the distribution is the vote shares (soft label);
- multi-label: a label is in the answer when more than half of the unit's raters chose it; with intensities its
  level is the lower median of the levels given by those who chose it; confidence = the weakest label decision,
  min over labels of max(share, 1 - share); the distribution is the share choosing each label;
- numeric: the mean, with n, mean, median, std, sem, min and max as the distribution; no confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from annotation.agreement import (
    Ratings,
    dawid_skene,
    dimension_summary,
    mace,
    majority_vote,
    ratings_from_long,
    soft_labels,
)
from annotation.quality.columns import QuestionRatings
from annotation.schema import Question

METHODS = ("majority", "dawid_skene", "mace")


@dataclass(frozen=True)
class AggregateRow:
    unit: int
    value: Any
    confidence: float | None
    distribution: dict[str, Any]
    n_ratings: int
    method: str


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def aggregate_single_choice(
    question: Question, ratings: QuestionRatings, *, method: str, tie_policy: str, seed: int = 0,
    encoded: Ratings | None = None,
) -> list[AggregateRow]:
    """``encoded``: the same ratings already encoded with string values (saves encoding them twice)."""
    if encoded is None:
        encoded = ratings_from_long(ratings.unit, ratings.rater, ratings.answer.astype(str))
    # soft_labels, majority_vote and the EM methods all list the rated units in the same (unit index) order.
    shares = soft_labels(encoded)
    n_ratings: np.ndarray
    if method == "majority":
        seen = [str(value) for value in encoded.values.tolist()]
        label_order = list(question.labels) + sorted(set(seen) - set(question.labels))
        votes = majority_vote(encoded, tie_policy=tie_policy, label_order=label_order, seed=seed)  # type: ignore[arg-type]
        labels, confidences, n_ratings = votes["label"], votes["confidence"], votes["n_ratings"].to_numpy()
        method_name = f"majority/{tie_policy}"
    elif method in ("dawid_skene", "mace"):
        crowd = dawid_skene(encoded) if method == "dawid_skene" else mace(encoded)
        labels, confidences = crowd.labels["label"], crowd.labels["confidence"]
        n_ratings = np.bincount(encoded.unit_idx, minlength=encoded.n_units)[np.bincount(encoded.unit_idx) > 0]
        method_name = method
    else:
        raise ValueError(f"aggregation method must be one of {', '.join(METHODS)}, got {method!r}")
    share_labels = [str(label) for label in shares.columns]
    share_matrix = shares.to_numpy()
    rows_nonzero, cols_nonzero = np.nonzero(share_matrix)
    bounds = np.searchsorted(rows_nonzero, np.arange(share_matrix.shape[0] + 1))
    share_values = share_matrix[rows_nonzero, cols_nonzero].tolist()
    col_names = [share_labels[c] for c in cols_nonzero.tolist()]
    rows = []
    for row, (unit, label, confidence) in enumerate(zip(labels.index.tolist(), labels.tolist(), confidences.tolist())):
        lo, hi = bounds[row], bounds[row + 1]
        rows.append(AggregateRow(
            unit=int(unit),
            value=None if label is None else str(label),
            confidence=_finite(confidence) if confidence is not None else None,
            distribution=dict(zip(col_names[lo:hi], share_values[lo:hi])),
            n_ratings=int(n_ratings[row]),
            method=method_name,
        ))
    return rows


def _label_levels(answer: Any) -> dict[str, int]:
    if isinstance(answer, Mapping):
        return {str(label): int(level) for label, level in answer.items() if level}
    return {str(label): 1 for label in answer}


def aggregate_multi_label(question: Question, ratings: QuestionRatings) -> list[AggregateRow]:
    labels = list(question.labels)
    levels = np.zeros((ratings.size, len(labels)), dtype=np.int64)
    column = {label: i for i, label in enumerate(labels)}
    for row, answer in enumerate(ratings.answer):
        for label, level in _label_levels(answer).items():
            if label in column:
                levels[row, column[label]] = level
    units, unit_index = np.unique(ratings.unit, return_inverse=True)
    unit_index = unit_index.reshape(-1)
    n = np.bincount(unit_index, minlength=units.size).astype(np.float64)
    chosen = np.column_stack(
        [np.bincount(unit_index, weights=(levels[:, j] > 0).astype(np.float64), minlength=units.size) for j in range(len(labels))]
    ) if labels else np.zeros((units.size, 0))
    share = chosen / n[:, None]
    in_answer = share > 0.5
    confidence = np.min(np.maximum(share, 1.0 - share), axis=1) if labels else np.ones(units.size)
    order = np.lexsort((unit_index,))
    sorted_unit = unit_index[order]
    starts = np.searchsorted(sorted_unit, np.arange(units.size))
    ends = np.searchsorted(sorted_unit, np.arange(units.size), side="right")
    rows = []
    for u in range(units.size):
        if question.intensity:
            value: Any = {}
            for j in np.flatnonzero(in_answer[u]):
                given = levels[order[starts[u] : ends[u]], j]
                given = np.sort(given[given > 0])
                value[labels[j]] = int(given[(given.size - 1) // 2])  # lower median
        else:
            value = [labels[j] for j in np.flatnonzero(in_answer[u])]
        rows.append(AggregateRow(
            unit=int(units[u]), value=value, confidence=float(confidence[u]),
            distribution={labels[j]: float(share[u, j]) for j in range(len(labels)) if share[u, j] > 0},
            n_ratings=int(n[u]), method="majority_per_label",
        ))
    return rows


def aggregate_numeric(ratings: QuestionRatings) -> list[AggregateRow]:
    encoded = ratings_from_long(ratings.unit, ratings.rater, pd.Series(ratings.answer.astype(np.float64)))
    summary = dimension_summary(encoded)
    rows = []
    for unit, record in zip(summary.index.tolist(), summary.to_dict(orient="records")):
        distribution: dict[str, Any] = {str(name): _finite(float(value)) for name, value in record.items()}
        distribution["n"] = int(record["n"])
        rows.append(AggregateRow(
            unit=int(unit), value=float(record["mean"]), confidence=None, distribution=distribution,
            n_ratings=int(record["n"]), method="mean",
        ))
    return rows


def aggregate_question(
    question: Question, ratings: QuestionRatings, *, method: str = "majority", tie_policy: str = "abstain", seed: int = 0,
    encoded: Ratings | None = None,
) -> list[AggregateRow]:
    """Aggregated rows for every unit with at least one rating; questions without a gold rule give none."""
    if ratings.size == 0:
        return []
    if question.type == "single_choice":
        return aggregate_single_choice(question, ratings, method=method, tie_policy=tie_policy, seed=seed, encoded=encoded)
    if question.type == "multi_label":
        return aggregate_multi_label(question, ratings)
    if question.type == "numeric":
        return aggregate_numeric(ratings)
    return []


def aggregation_summary(rows: list[AggregateRow], review_confidence_below: float) -> dict[str, Any]:
    """What the report says about an aggregation: coverage, ties, confidence, items under the review threshold."""
    confidences = np.array([r.confidence for r in rows if r.confidence is not None], dtype=np.float64)
    open_ties = sum(1 for r in rows if r.value is None)
    below = sum(
        1 for r in rows if r.n_ratings >= 2 and (r.value is None or (r.confidence is not None and r.confidence < review_confidence_below))
    )
    counts: dict[str, int] = {}
    for r in rows:
        if isinstance(r.value, str):
            counts[r.value] = counts.get(r.value, 0) + 1
        elif isinstance(r.value, (list, dict)):
            for label in r.value:
                counts[str(label)] = counts.get(str(label), 0) + 1
    return {
        "method": rows[0].method if rows else None,
        "n_units": len(rows),
        "n_units_with_two_or_more": sum(1 for r in rows if r.n_ratings >= 2),
        "n_open_ties": open_ties,
        "mean_confidence": float(confidences.mean()) if confidences.size else None,
        "n_below_review_threshold": below,
        "review_confidence_below": review_confidence_below,
        "label_counts": dict(sorted(counts.items())),
    }
