"""A model or LLM against human labels: accuracy, macro-F1 and a confusion matrix; CCC for dimensions.

Macro-F1 (one definition, for the quality report's model comparison and a trained head's evaluation) is the
unweighted mean of per-label F1 over the labels that occur in the truth or the predictions, as scikit-learn's
default: a label listed but never said by either side tells nothing about the model. Multi-label answers are
scored label by label (F1 of "chosen"), and macro-F1 averages the labels chosen on either side. Lin's (1989)
concordance correlation coefficient uses population (1/n) moments:
CCC = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.agreement.ratings import AgreementInputError


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    macro_f1: float
    n_items: int
    per_label: pd.DataFrame  # precision, recall, f1, support per label
    confusion: pd.DataFrame  # rows: true (human) label, columns: predicted label

    @property
    def uar(self) -> float:
        """Unweighted average recall: the mean recall over the labels that occur in the truth."""
        present = self.per_label["support"].to_numpy() > 0
        return float(self.per_label["recall"].to_numpy()[present].mean()) if present.any() else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "uar": self.uar,
            "n_items": self.n_items,
            "per_label": self.per_label.reset_index().to_dict(orient="records"),
            "confusion": {
                "labels": [str(label) for label in self.confusion.index],
                "matrix": self.confusion.to_numpy().tolist(),
            },
        }


def classification_report(
    truth: Sequence[Hashable] | pd.Series,
    predicted: Sequence[Hashable] | pd.Series,
    *,
    labels: Sequence[Hashable] | None = None,
) -> ClassificationReport:
    """Compare predicted labels with true (human, e.g. aggregated) labels item by item; None/NaN pairs are skipped."""
    true_col, pred_col = pd.Series(list(truth), dtype=object), pd.Series(list(predicted), dtype=object)
    if len(true_col) != len(pred_col):
        raise AgreementInputError(f"true and predicted labels differ in length: {len(true_col)} and {len(pred_col)}")
    both = (true_col.notna() & pred_col.notna()).to_numpy()
    true_col, pred_col = true_col[both], pred_col[both]
    if labels is None:
        labels = sorted(set(true_col) | set(pred_col), key=str)
    position = {label: i for i, label in enumerate(labels)}
    unknown = (set(true_col) | set(pred_col)) - set(position)
    if unknown:
        raise AgreementInputError(f"labels {sorted(map(str, unknown))} are not among the given labels")
    size = len(labels)
    rows = np.fromiter((position[v] for v in true_col), dtype=np.int64, count=len(true_col))
    cols = np.fromiter((position[v] for v in pred_col), dtype=np.int64, count=len(pred_col))
    confusion = np.bincount(rows * size + cols, minlength=size * size).reshape(size, size)
    correct = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted_count = confusion.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted_count > 0, correct / predicted_count, 0.0)
        recall = np.where(support > 0, correct / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    n_items = int(confusion.sum())
    index = pd.Index(list(labels), name="label")
    return ClassificationReport(
        accuracy=float(correct.sum() / n_items) if n_items else float("nan"),
        macro_f1=macro_f1(f1, (support > 0) | (predicted_count > 0)),
        n_items=n_items,
        per_label=pd.DataFrame(
            {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}, index=index
        ),
        confusion=pd.DataFrame(confusion, index=index, columns=pd.Index(list(labels), name="predicted")),
    )


def macro_f1(f1: npt.ArrayLike, occurring: npt.ArrayLike) -> float:
    """The mean F1 over the labels that occur in the truth or the predictions (NaN when none does)."""
    scores, seen = np.asarray(f1, dtype=np.float64), np.asarray(occurring, dtype=bool)
    return float(scores[seen].mean()) if seen.any() else float("nan")


@dataclass(frozen=True)
class MultiLabelReport:
    macro_f1: float
    exact_match_accuracy: float
    n_items: int
    per_label: pd.DataFrame  # f1 (of "chosen"), support, balanced_accuracy, tp, fp, fn, tn per label

    @property
    def uar(self) -> float:
        """The mean per-label balanced accuracy."""
        return float(self.per_label["balanced_accuracy"].mean()) if len(self.per_label) else float("nan")


def multi_label_report(truth: npt.ArrayLike, predicted: npt.ArrayLike, labels: Sequence[Hashable]) -> MultiLabelReport:
    """Items × labels booleans (a label chosen or not) against the truth: each label as a binary classification."""
    y, chosen = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    if y.shape != chosen.shape or y.ndim != 2 or y.shape[1] != len(labels):
        raise AgreementInputError(f"truth and predictions must both be items × {len(labels)} labels, got {y.shape} "
                                  f"and {chosen.shape}")
    rows = []
    for j, label in enumerate(labels):
        report = classification_report(list(y[:, j]), list(chosen[:, j]), labels=[False, True])
        rows.append({"label": label, "f1": float(report.per_label["f1"].to_numpy()[1]),  # the "chosen" class
                     "support": int(y[:, j].sum()), "balanced_accuracy": report.uar,
                     "tp": int((y[:, j] & chosen[:, j]).sum()), "fp": int((~y[:, j] & chosen[:, j]).sum()),
                     "fn": int((y[:, j] & ~chosen[:, j]).sum()), "tn": int((~y[:, j] & ~chosen[:, j]).sum())})
    per_label = pd.DataFrame(rows, columns=["label", "f1", "support", "balanced_accuracy", "tp", "fp", "fn", "tn"])
    return MultiLabelReport(
        macro_f1=macro_f1(per_label["f1"], (y | chosen).any(axis=0)),
        exact_match_accuracy=float((y == chosen).all(axis=1).mean()) if y.shape[0] else float("nan"),
        n_items=int(y.shape[0]),
        per_label=per_label.set_index("label"),
    )


def calibration_report(confidence: npt.ArrayLike, correct: npt.ArrayLike, *, bins: int = 10) -> dict[str, object]:
    """Expected calibration error and the reliability diagram's bins (Guo et al. 2017).

    ``confidence``: the probability a model gave its answer; ``correct``: whether the answer was right.
    Equal-width bins over [0, 1]; ECE = sum over bins of (share of items) * |accuracy - mean confidence|.
    """
    p = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if p.shape != right.shape or p.ndim != 1:
        raise AgreementInputError(f"confidence and correctness differ in shape: {p.shape} and {right.shape}")
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
        raise AgreementInputError("confidences must lie in [0, 1]")
    which = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        mean_confidence = float(p[inside].mean()) if count else None
        accuracy = float(right[inside].mean()) if count else None
        if count:
            ece += count / p.size * abs(float(accuracy) - float(mean_confidence))  # type: ignore[arg-type]
        rows.append({"lower": b / bins, "upper": (b + 1) / bins, "count": count,
                     "mean_confidence": mean_confidence, "accuracy": accuracy})
    return {"ece": ece if p.size else float("nan"), "n_items": int(p.size), "bins": rows}


def concordance_correlation(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Lin's concordance correlation coefficient of two paired numeric series (NaN pairs skipped)."""
    x, y = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise AgreementInputError(f"CCC needs two 1-D series of the same length, got shapes {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2:
        return float("nan")
    mean_x, mean_y = x.mean(), y.mean()
    covariance = float(np.mean((x - mean_x) * (y - mean_y)))
    denominator = float(x.var() + y.var() + (mean_x - mean_y) ** 2)
    return 2.0 * covariance / denominator if denominator > 0 else float("nan")
