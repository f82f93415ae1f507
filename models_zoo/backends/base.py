"""The small interface every model backend implements: load once, then predict a batch."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from models_zoo.cards import Availability, ModelCard, Task
from models_zoo.errors import InputError, ModelError, PermanentModelError, TransientModelError

InT = TypeVar("InT")
OutT = TypeVar("OutT")


def force_offline() -> None:
    """Make the Hugging Face libraries fail instead of reaching for the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class Backend(ABC, Generic[InT, OutT]):
    """A model that turns a batch of inputs into one output each, in the same order."""

    tasks: ClassVar[frozenset[Task]]
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules the backend needs

    def __init__(self, card: ModelCard, dependencies: Mapping[str, Backend[Any, Any]] | None = None) -> None:
        self.card = card
        self.dependencies: Mapping[str, Backend[Any, Any]] = dict(dependencies or {})
        self.version = ""
        self.path: Path | None = None
        self._loaded = False

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        """Cheap check that ``path`` holds what this backend loads; loads no weights."""
        return Availability(True)

    @classmethod
    def dependency_ids(cls, path: Path, card: ModelCard) -> tuple[str, ...]:
        """Card ids of other models this one runs on top of (the registry checks and loads them first)."""
        return ()

    @property
    def batch_items(self) -> int:
        """How many inputs one call should carry on this device (callers batch by it)."""
        return int(self.card.options.get("batch_size", 64))

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if self._loaded:
            return
        resolved = self.card.resolve()
        force_offline()
        try:
            self._load(resolved.path)
        except ModelError:
            raise
        except MemoryError as exc:
            raise TransientModelError(f"model {self.card.id!r}: out of memory while loading") from exc
        except Exception as exc:
            raise PermanentModelError(f"model {self.card.id!r} failed to load from {resolved.path}: {exc}") from exc
        self.path = resolved.path
        self.version = resolved.version
        self._loaded = True

    def predict_batch(self, items: Sequence[InT]) -> list[OutT]:
        self.load()
        if not items:
            return []
        outputs = self._predict(items)
        if len(outputs) != len(items):
            raise PermanentModelError(f"model {self.card.id!r} returned {len(outputs)} outputs for {len(items)} inputs")
        return outputs

    def predict_each(self, items: Sequence[InT]) -> list[OutT | InputError]:
        """Like ``predict_batch``, but an item the model refuses becomes its InputError and the rest go on."""
        try:
            return list(self.predict_batch(items))
        except InputError as exc:
            if len(items) == 1:
                return [exc]
        results: list[OutT | InputError] = []
        for item in items:
            try:
                results.append(self.predict_batch([item])[0])
            except InputError as exc:
                results.append(exc)
        return results

    @abstractmethod
    def _load(self, path: Path) -> None: ...

    @abstractmethod
    def _predict(self, items: Sequence[InT]) -> list[OutT]: ...


class EmbeddingBackend(Backend[str, np.ndarray]):
    """Sentence embeddings, L2-normalised, one row per text."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed(texts)

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def _embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def _predict(self, items: Sequence[str]) -> list[np.ndarray]:
        return list(self._embed(items))
