"""The transformers loaders, run on tiny randomly initialised models saved to a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models_zoo.audio import TARGET_SAMPLE_RATE, AudioClip
from models_zoo.backends.transformers_hf import dimensional_model_class
from models_zoo.cards import ModelCard, ModelSource, SourceKind, Task
from models_zoo.errors import ModelUnavailableError
from models_zoo.outputs import Dimensions, LabelScores
from models_zoo.registry import ModelRegistry, load_model, unload_models

LABELS = {0: "anger", 1: "joy", 2: "sadness"}


def _card(card_id: str, task: Task, backend: str, path: Path, **options: Any) -> ModelCard:
    return ModelCard(id=card_id, task=task, backend=backend, source=ModelSource(SourceKind.LOCAL_PATH, str(path)),
                     license="MIT", languages=("en",), options=options)


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    yield
    unload_models()


@pytest.fixture
def text_model_dir(tmp_path: Path) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "so", "happy", "sad", "angry", "today", "very"]
    vocab.write_text("\n".join(words))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    folder = tmp_path / "text-model"
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    return folder


def _tiny_wav2vec2_config(**extra: Any) -> Any:
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
                          num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True,
                          **extra)


def _save_extractor(folder: Path) -> None:
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(sampling_rate=TARGET_SAMPLE_RATE, return_attention_mask=True, do_normalize=True) \
        .save_pretrained(folder)


def _clips() -> list[AudioClip]:
    rng = np.random.default_rng(0)
    return [AudioClip(rng.normal(0, 0.1, int(seconds * TARGET_SAMPLE_RATE)).astype(np.float32), name=f"c{i}")
            for i, seconds in enumerate((1.2, 0.4, 0.8, 0.3))]


def test_text_classifier_from_local_folder_batches_by_length(text_model_dir: Path) -> None:
    card = ModelRegistry().register(_card("tiny-text", Task.TEXT_EMOTION, "transformers_text", text_model_dir,
                                          max_batch_tokens=16))
    model = load_model(card)
    texts = ["i am so very very happy today", "sad", "i am angry", "happy today"]
    batched = model.predict_batch(texts)
    single = [model.predict_batch([t])[0] for t in texts]
    assert all(isinstance(p, LabelScores) and tuple(p.scores) == ("anger", "joy", "sadness") for p in batched)
    for together, alone in zip(batched, single):
        assert together.scores == pytest.approx(alone.scores, abs=1e-5)
        assert sum(together.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_audio_classifier_from_local_folder(tmp_path: Path) -> None:
    from transformers import Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    folder = tmp_path / "audio-model"
    config = _tiny_wav2vec2_config(id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                                   classifier_proj_size=8)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    _save_extractor(folder)
    model = load_model(ModelRegistry().register(_card("tiny-ser", Task.SPEECH_EMOTION_CATEGORICAL,
                                                      "transformers_audio", folder, max_batch_seconds=1.0)))
    clips = _clips()
    predictions = model.predict_batch(clips)
    assert [tuple(p.scores) for p in predictions] == [("anger", "joy", "sadness")] * 4
    assert all(0 <= p.entropy <= 1 for p in predictions)


def test_dimensional_regressor_padding_does_not_change_values(tmp_path: Path) -> None:
    torch.manual_seed(0)
    folder = tmp_path / "avd-model"
    config = _tiny_wav2vec2_config(id2label={0: "arousal", 1: "dominance", 2: "valence"},
                                   label2id={"arousal": 0, "dominance": 1, "valence": 2})
    dimensional_model_class()(config).save_pretrained(folder, safe_serialization=True)
    _save_extractor(folder)
    card = ModelRegistry().register(_card("tiny-avd", Task.SPEECH_EMOTION_DIMENSIONAL, "wav2vec2_dimensional",
                                          folder, max_batch_seconds=10.0))
    model = load_model(card)
    clips = _clips()
    together = model.predict_batch(clips)
    alone = [model.predict_batch([clip])[0] for clip in clips]
    assert all(isinstance(d, Dimensions) and tuple(d.values) == ("arousal", "dominance", "valence") for d in together)
    for batched, single in zip(together, alone):
        assert batched.values == pytest.approx(single.values, abs=1e-4)


def test_pickle_checkpoints_are_refused(tmp_path: Path, text_model_dir: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(text_model_dir, folder)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")  # the pickle format Sentio will not load
    weights.unlink()
    with pytest.raises(ModelUnavailableError, match=r"has no .safetensors weights \(found: pytorch_model.bin\)"):
        ModelRegistry().register(_card("pickled", Task.TEXT_EMOTION, "transformers_text", folder))
