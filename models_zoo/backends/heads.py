"""Classifier heads a project trains on its own labels: over text embeddings, or over acoustic features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from models_zoo.acoustic import FEATURE_VERSION, acoustic_feature_matrix
from models_zoo.audio import AudioClip
from models_zoo.backends.base import Backend, EmbeddingBackend
from models_zoo.cards import Availability, ModelCard, ModelSource, SourceKind, Task
from models_zoo.errors import PermanentModelError
from models_zoo.heads import HEAD_FORMAT, LinearHead, TrainingReport, train_linear_head
from models_zoo.outputs import LabelScores

EMBEDDING_FEATURE_PREFIX = "embedding:"


def _head_header(path: Path) -> dict[str, str] | str:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return f"{path} is not a file"
    try:
        with safe_open(str(path), framework="np") as handle:
            header = dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        return f"{path} is not a readable safetensors file ({exc})"
    if header.get("format") != HEAD_FORMAT:
        return f"{path} is not a Sentio classifier head"
    return header


class EmbeddingHeadBackend(Backend[str, LabelScores]):
    """Text emotion in any language the embedder knows: embeddings, then the project's trained head."""

    tasks: ClassVar = frozenset({Task.TEXT_EMOTION})
    requires: ClassVar = ("safetensors",)

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        header = _head_header(path)
        if isinstance(header, str):
            return Availability(False, header)
        feature = header.get("feature", "")
        if not feature.startswith(EMBEDDING_FEATURE_PREFIX):
            return Availability(False, f"{path} is a head over {feature!r}, not over text embeddings")
        return Availability(True)

    @classmethod
    def dependency_ids(cls, path: Path, card: ModelCard) -> tuple[str, ...]:
        header = _head_header(path)
        return (header["feature"].removeprefix(EMBEDDING_FEATURE_PREFIX),) if isinstance(header, dict) else ()

    def _load(self, path: Path) -> None:
        self._head = LinearHead.load(path)
        embedder_id = self._head.feature.removeprefix(EMBEDDING_FEATURE_PREFIX)
        embedder = self.dependencies.get(embedder_id)
        if not isinstance(embedder, EmbeddingBackend):
            raise PermanentModelError(f"head {self.card.id!r} needs its embedder {embedder_id!r}, which was not given")
        self.embedder = embedder

    @property
    def batch_items(self) -> int:
        self.load()
        return self.embedder.batch_items

    def predict_embedded(self, vectors: np.ndarray) -> list[LabelScores]:
        """Scores for texts already embedded by this head's embedder (a job embeds each text once)."""
        self.load()
        return self._head.predict(vectors)

    def probabilities_embedded(self, vectors: np.ndarray) -> np.ndarray:
        """The head's probability matrix (items x labels) for embedded texts: active learning scores a whole pool."""
        self.load()
        return self._head.predict_proba(vectors)

    @property
    def labels(self) -> tuple[str, ...]:
        self.load()
        return self._head.labels

    def _predict(self, items: Sequence[str]) -> list[LabelScores]:
        return self._head.predict(self.embedder.embed(items))


class AcousticHeadBackend(Backend[AudioClip, LabelScores]):
    """Categorical speech emotion from pitch, energy and MFCC statistics, with the project's trained head."""

    tasks: ClassVar = frozenset({Task.SPEECH_EMOTION_CATEGORICAL})
    requires: ClassVar = ("safetensors", "scipy")

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        header = _head_header(path)
        if isinstance(header, str):
            return Availability(False, header)
        if header.get("feature") != FEATURE_VERSION:
            return Availability(False, f"{path} is a head over {header.get('feature')!r}, not {FEATURE_VERSION!r}")
        return Availability(True)

    def _load(self, path: Path) -> None:
        self._head = LinearHead.load(path)

    def _predict(self, items: Sequence[AudioClip]) -> list[LabelScores]:
        return self._head.predict(acoustic_feature_matrix(list(items)))


def head_card(card_id: str, path: str | Path, *, task: Task, labels: Sequence[str], languages: Sequence[str],
              description: str = "") -> ModelCard:
    """A card for a head file a project trained (its licence is the project's own)."""
    backend = "embedding_head" if task is Task.TEXT_EMOTION else "acoustic_head"
    return ModelCard(id=card_id, task=task, backend=backend, source=ModelSource(SourceKind.LOCAL_PATH, str(path)),
                     license="project-trained", languages=tuple(languages), labels=tuple(labels),
                     description=description)


def embedding_feature(embedder: EmbeddingBackend) -> str:
    """The feature name a head over this embedder records (the registry loads that embedder for it)."""
    return EMBEDDING_FEATURE_PREFIX + embedder.card.id


def head_train_on_features(features: np.ndarray, targets: Sequence[str] | Sequence[Sequence[str]], *,
                           labels: Sequence[str], feature: str, path: str | Path, multi_label: bool = False,
                           metadata: dict[str, str] | None = None) -> tuple[LinearHead, TrainingReport]:
    """Fit a head on features computed once by the caller (who may reuse them, e.g. to evaluate), save it."""
    head, report = train_linear_head(features, targets, labels=labels, multi_label=multi_label, feature=feature,
                                     metadata=metadata)
    head.save(path)
    return head, report


def text_head_train(texts: Sequence[str], targets: Sequence[str], *, labels: Sequence[str], path: str | Path,
                    embedder: EmbeddingBackend, multi_label: bool = False) -> tuple[LinearHead, TrainingReport]:
    """Embed the labelled texts, fit a head, save it to ``path``."""
    return head_train_on_features(embedder.embed(texts), targets, labels=labels, feature=embedding_feature(embedder),
                                  path=path, multi_label=multi_label,
                                  metadata={"embedder_version": embedder.version})


def acoustic_head_train(clips: Sequence[AudioClip], targets: Sequence[str], *, labels: Sequence[str],
                        path: str | Path) -> tuple[LinearHead, TrainingReport]:
    return head_train_on_features(acoustic_feature_matrix(list(clips)), targets, labels=labels,
                                  feature=FEATURE_VERSION, path=path)
