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
from annotation.quality.columns import QuestionRatings, keyed_answers
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
    starts, counts = bounds.tolist(), np.asarray(n_ratings, dtype=np.int64).tolist()
    rows = []
    for row, (unit, label, confidence) in enumerate(zip(labels.index.tolist(), labels.tolist(), confidences.tolist())):
        lo, hi = starts[row], starts[row + 1]
        rows.append(AggregateRow(
            int(unit),
            None if label is None else str(label),
            None if confidence is None or not math.isfinite(confidence) else float(confidence),
            dict(zip(col_names[lo:hi], share_values[lo:hi])),
            counts[row],
            method_name,
        ))
    return rows


def aggregate_multi_label(question: Question, ratings: QuestionRatings, keyed: Ratings | None = None) -> list[AggregateRow]:
    """``keyed``: the same ratings encoded by distinct (label, level) answer (``keyed_answers``), made when not given."""
    keyed = keyed if keyed is not None else keyed_answers(ratings)
    labels = list(question.labels)
    level_of_key = np.array(
        [[dict(key).get(label, 0.0) for label in labels] for key in keyed.values], dtype=np.float64
    ).reshape(keyed.n_values, len(labels))
    levels = level_of_key[keyed.value_idx]  # ratings × labels
    n = np.bincount(keyed.unit_idx, minlength=keyed.n_units).astype(np.float64)
    chosen = np.column_stack(
        [np.bincount(keyed.unit_idx, weights=(levels[:, j] > 0).astype(np.float64), minlength=keyed.n_units)
         for j in range(len(labels))]
    ) if labels else np.zeros((keyed.n_units, 0))
    share = chosen / n[:, None]
    in_answer = share > 0.5
    confidence = np.min(np.maximum(share, 1.0 - share), axis=1) if labels else np.ones(keyed.n_units)
    median = np.zeros((keyed.n_units, len(labels)), dtype=np.int64)
    if question.intensity:
        for j in range(len(labels)):  # lower median of the levels given by those who chose the label
            choosers = np.flatnonzero(levels[:, j] > 0)
            order = np.lexsort((levels[choosers, j], keyed.unit_idx[choosers]))
            given = levels[choosers[order], j]
            starts = np.concatenate([[0], np.cumsum(chosen[:, j].astype(np.int64))[:-1]])
            has = chosen[:, j] > 0
            median[has, j] = given[starts[has] + (chosen[has, j].astype(np.int64) - 1) // 2]
    order = np.argsort(keyed.units, kind="stable")  # rows by utterance id
    names = np.array(labels, dtype=object)
    # Only the non-zero entries become Python objects: the labels in each answer and the shares above zero.
    share_unit, share_label = np.nonzero(share[order])
    share_values, share_names = share[order][share_unit, share_label].tolist(), names[share_label].tolist()
    share_bounds = np.searchsorted(share_unit, np.arange(order.size + 1)).tolist()
    picked_unit, picked_label = np.nonzero(in_answer[order])
    picked_names, picked_levels = names[picked_label].tolist(), median[order][picked_unit, picked_label].tolist()
    picked_bounds = np.searchsorted(picked_unit, np.arange(order.size + 1)).tolist()
    units, confidences, counts = keyed.units[order].tolist(), confidence[order].tolist(), n[order].astype(np.int64).tolist()
    rows = []
    for row in range(order.size):
        lo, hi = picked_bounds[row], picked_bounds[row + 1]
        value: Any = dict(zip(picked_names[lo:hi], picked_levels[lo:hi])) if question.intensity else picked_names[lo:hi]
        distribution = dict(zip(share_names[share_bounds[row] : share_bounds[row + 1]],
                                share_values[share_bounds[row] : share_bounds[row + 1]]))
        rows.append(AggregateRow(int(units[row]), value, confidences[row], distribution, counts[row], "majority_per_label"))
    return rows


def aggregate_numeric(ratings: QuestionRatings, encoded: Ratings | None = None) -> list[AggregateRow]:
    """``encoded``: the same ratings already encoded with their numbers as values."""
    if encoded is None:
        encoded = ratings_from_long(ratings.unit, ratings.rater, pd.Series(ratings.answer.astype(np.float64)))
    summary = dimension_summary(encoded)
    names = [str(name) for name in summary.columns]
    columns = [summary[name].to_numpy(dtype=np.float64).tolist() for name in summary.columns]
    rows = []
    for unit, record in zip(summary.index.tolist(), zip(*columns)):
        distribution: dict[str, Any] = dict(zip(names, record))
        n = distribution["n"] = int(distribution["n"])
        if n < 2:  # one rating: no spread (NaN in the summary)
            distribution["std"] = distribution["sem"] = None
        rows.append(AggregateRow(int(unit), distribution["mean"], None, distribution, n, "mean"))
    return rows


def aggregate_question(
    question: Question, ratings: QuestionRatings, *, method: str = "majority", tie_policy: str = "abstain", seed: int = 0,
    encoded: Ratings | None = None,
) -> list[AggregateRow]:
    """Aggregated rows for every unit with at least one rating; questions without a gold rule give none.

    ``encoded``: the ratings already encoded (as the report encodes them: labels for single choice, distinct
    (label, level) answers for multi-label, numbers for numeric), which saves encoding them again.
    """
    if ratings.size == 0:
        return []
    if question.type == "single_choice":
        return aggregate_single_choice(question, ratings, method=method, tie_policy=tie_policy, seed=seed, encoded=encoded)
    if question.type == "multi_label":
        return aggregate_multi_label(question, ratings, encoded)
    if question.type == "numeric":
        return aggregate_numeric(ratings, encoded)
    return []


def aggregation_summary(rows: list[AggregateRow], review_confidence_below: float) -> dict[str, Any]:
    """What the report says about an aggregation: coverage, ties, confidence, items under the review threshold."""
    confidence_sum, n_confident, open_ties, below, two_or_more = 0.0, 0, 0, 0, 0
    counts: dict[str, int] = {}
    for r in rows:
        value, confidence = r.value, r.confidence
        if confidence is not None:
            confidence_sum += confidence
            n_confident += 1
        if r.n_ratings >= 2:
            two_or_more += 1
            if value is None or (confidence is not None and confidence < review_confidence_below):
                below += 1
        if value is None:
            open_ties += 1
        elif isinstance(value, str):
            counts[value] = counts.get(value, 0) + 1
        elif isinstance(value, (list, dict)):
            for label in value:
                counts[str(label)] = counts.get(str(label), 0) + 1
    return {
        "method": rows[0].method if rows else None,
        "n_units": len(rows),
        "n_units_with_two_or_more": two_or_more,
        "n_open_ties": open_ties,
        "mean_confidence": confidence_sum / n_confident if n_confident else None,
        "n_below_review_threshold": below,
        "review_confidence_below": review_confidence_below,
        "label_counts": dict(sorted(counts.items())),
    }
