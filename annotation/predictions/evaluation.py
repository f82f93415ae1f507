"""How good a trained head is on items it never saw: the numbers a model version stores about itself.

Pure computation (numpy and ``annotation.agreement``; no Django): probabilities of a head on held-out items (or
out-of-fold probabilities from k-fold cross-validation) against the items' labels. Single-label questions get
accuracy, macro-F1 (``annotation.agreement.macro_f1``: over the labels that occur in the truth or the predictions), per-label F1, UAR (unweighted
average recall over the labels in the truth) and the confusion matrix; multi-label
questions get per-label F1 on the 0.5 decision, their macro mean, exact-match accuracy, UAR as the mean per-label
balanced accuracy, and per-label counts. Both get the expected calibration error and a reliability diagram.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annotation.agreement import calibration_report, classification_report, multi_label_report

RELIABILITY_BINS = 10


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def head_quality(truth: Sequence[Any], probabilities: np.ndarray, *, labels: Sequence[str],
                 multi_label: bool) -> dict[str, Any]:
    """Quality of predicted ``probabilities`` (rows of items, columns of ``labels``) against ``truth`` (one label
    per item, or a list of labels per item when ``multi_label``). Rows with NaN (not predicted) are left out."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(truth), len(labels))
    keep = [not np.isnan(row).any() for row in p]
    p = p[np.asarray(keep, dtype=bool)]
    truth = [t for t, k in zip(truth, keep) if k]
    if not truth:
        return {"n_items": 0}
    labels = list(labels)
    if multi_label:
        return _multi_label_quality(truth, p, labels)
    predicted = [labels[i] for i in p.argmax(axis=1)]
    report = classification_report([str(t) for t in truth], predicted, labels=labels)
    per_label = report.per_label
    confidence = p.max(axis=1)
    calibration = calibration_report(confidence, np.array([a == b for a, b in zip(truth, predicted)]),
                                     bins=RELIABILITY_BINS)
    return {
        "n_items": report.n_items,
        "accuracy": _finite(report.accuracy),
        "macro_f1": _finite(report.macro_f1),
        "uar": _finite(report.uar),
        "per_label_f1": {str(label): float(f1) for label, f1 in zip(per_label.index, per_label["f1"])},
        "per_label": [{"label": str(label), "precision": float(row.precision), "recall": float(row.recall),
                       "f1": float(row.f1), "support": int(row.support)} for label, row in per_label.iterrows()],
        "confusion": {"labels": labels, "matrix": report.confusion.to_numpy().tolist()},
        "ece": _finite(calibration["ece"]),  # type: ignore[arg-type]
        "reliability": calibration["bins"],
    }


def _multi_label_quality(truth: Sequence[Any], p: np.ndarray, labels: list[str]) -> dict[str, Any]:
    y = np.array([[label in set(t) for label in labels] for t in truth], dtype=bool)
    chosen = p >= 0.5
    report = multi_label_report(y, chosen, labels)
    per_label = [{"label": str(label), "f1": float(row.f1), "support": int(row.support),
                  "balanced_accuracy": float(row.balanced_accuracy), "tp": int(row.tp), "fp": int(row.fp),
                  "fn": int(row.fn), "tn": int(row.tn)} for label, row in report.per_label.iterrows()]
    confidence = np.where(chosen, p, 1 - p).ravel()
    calibration = calibration_report(confidence, (chosen == y).ravel(), bins=RELIABILITY_BINS)
    return {
        "n_items": report.n_items,
        "accuracy": report.exact_match_accuracy,  # exact match
        "macro_f1": _finite(report.macro_f1),
        "uar": _finite(report.uar),
        "per_label_f1": {row["label"]: row["f1"] for row in per_label},
        "per_label": per_label,
        "ece": _finite(calibration["ece"]),  # type: ignore[arg-type]
        "reliability": calibration["bins"],
    }
