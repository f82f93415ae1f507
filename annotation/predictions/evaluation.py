"""How good a trained head is on items it never saw: the numbers a model version stores about itself.

Pure computation (numpy and ``annotation.agreement``; no Django): probabilities of a head on held-out items (or
out-of-fold probabilities from k-fold cross-validation) against the items' labels. Single-label questions get
accuracy, macro-F1 (over the labels that occur in the truth or the predictions), per-label F1, UAR (unweighted
average recall over the labels in the truth) and the confusion matrix; multi-label
questions get per-label F1 on the 0.5 decision, their macro mean, exact-match accuracy, UAR as the mean per-label
balanced accuracy, and per-label counts. Both get the expected calibration error and a reliability diagram.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annotation.agreement import calibration_report, classification_report

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
    # Macro-F1 over the labels that occur (in the truth or the predictions), as scikit-learn's default: a label the
    # split never has and the head never says tells nothing about the head.
    occurring = (per_label["support"].to_numpy() > 0) | (report.confusion.to_numpy().sum(axis=0) > 0)
    confidence = p.max(axis=1)
    calibration = calibration_report(confidence, np.array([a == b for a, b in zip(truth, predicted)]),
                                     bins=RELIABILITY_BINS)
    return {
        "n_items": report.n_items,
        "accuracy": _finite(report.accuracy),
        "macro_f1": float(per_label["f1"].to_numpy()[occurring].mean()),
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
    per_label = []
    for j, label in enumerate(labels):
        report = classification_report(list(y[:, j]), list(chosen[:, j]), labels=[False, True])
        f1 = float(report.per_label["f1"].to_numpy()[1])  # the "chosen" class
        tp = int((y[:, j] & chosen[:, j]).sum())
        fp = int((~y[:, j] & chosen[:, j]).sum())
        fn = int((y[:, j] & ~chosen[:, j]).sum())
        tn = int((~y[:, j] & ~chosen[:, j]).sum())
        per_label.append({"label": label, "f1": f1, "support": int(y[:, j].sum()), "balanced_accuracy": report.uar,
                          "tp": tp, "fp": fp, "fn": fn, "tn": tn})
    confidence = np.where(chosen, p, 1 - p).ravel()
    calibration = calibration_report(confidence, (chosen == y).ravel(), bins=RELIABILITY_BINS)
    return {
        "n_items": int(y.shape[0]),
        "accuracy": float((chosen == y).all(axis=1).mean()),  # exact match
        "macro_f1": float(np.mean([row["f1"] for row in per_label])),
        "uar": float(np.mean([row["balanced_accuracy"] for row in per_label])),
        "per_label_f1": {row["label"]: row["f1"] for row in per_label},
        "per_label": per_label,
        "ece": _finite(calibration["ece"]),  # type: ignore[arg-type]
        "reliability": calibration["bins"],
    }
