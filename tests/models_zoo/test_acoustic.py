"""The speech-emotion path from acoustic features, trained on labelled clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models_zoo.acoustic import FEATURE_NAMES, acoustic_features
from models_zoo.audio import load_audio
from models_zoo.backends.heads import acoustic_head_train, head_card
from models_zoo.cards import Task
from models_zoo.registry import ModelRegistry, load_model

from .conftest import Speak

# espeak-ng prosody stands in for emotional speech: "aroused" is high, fast and loud, "calm" low and slow.
STYLES = {"aroused": {"pitch": 85, "speed": 230, "amplitude": 180}, "calm": {"pitch": 15, "speed": 110, "amplitude": 60}}
TRAIN = [("I cannot believe this happened", "en"), ("Please come over here right now", "en"),
         ("We have to leave the house", "en"), ("मैं आज बाज़ार जा रहा हूँ", "hi"), ("तुम कहाँ जा रहे हो", "hi"),
         ("मी आज घरी आहे", "mr"), ("तो शाळेत गेला", "mr")]
HELD_OUT = [("The letter arrived this morning", "en"), ("यह किताब मेरी है", "hi"), ("आम्ही उद्या भेटू", "mr")]


def test_pitch_feature_follows_the_voice(speak: Speak) -> None:
    low = acoustic_features(load_audio(speak("Hello there, how are you", "en", pitch=10)))
    high = acoustic_features(load_audio(speak("Hello there, how are you", "en", pitch=90)))
    f0 = FEATURE_NAMES.index("log_f0_mean")
    assert high[f0] > low[f0] + 0.2
    assert low.shape == (len(FEATURE_NAMES),) and np.isfinite(low).all()


def test_acoustic_head_learns_speaking_styles_in_three_languages(speak: Speak, tmp_path: Path) -> None:
    clips, targets = [], []
    for text, voice in TRAIN:
        for style, prosody in STYLES.items():
            clips.append(load_audio(speak(text, voice, **prosody)))
            targets.append(style)
    path = tmp_path / "speech-head.safetensors"
    _, report = acoustic_head_train(clips, targets, labels=tuple(STYLES), path=path)
    assert report.train_accuracy == 1.0

    card = ModelRegistry().register(head_card("project-7-speech", path, task=Task.SPEECH_EMOTION_CATEGORICAL,
                                              labels=tuple(STYLES), languages=("en", "hi", "mr")))
    model = load_model(card)
    held_out, expected = [], []
    for text, voice in HELD_OUT:
        for style, prosody in STYLES.items():
            held_out.append(load_audio(speak(text, voice, **prosody)))
            expected.append(style)
    assert [p.top for p in model.predict_batch(held_out)] == expected
