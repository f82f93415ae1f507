"""What models return: label scores with uncertainty, A/V/D values, transcripts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def normalised_entropy(probabilities: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy divided by log(K): 0 when certain, 1 when uniform; comparable across label sets."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size < 2:
        return 0.0
    total = p.sum()
    if total <= 0:
        return 1.0
    p = p / total
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / math.log(p.size))


def top_margin(probabilities: Sequence[float] | np.ndarray) -> float:
    """Best score minus second best: small margins are the examples worth a human's look."""
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    if p.size == 0:
        return 0.0
    return float(p[0] - p[1]) if p.size > 1 else float(p[0])


@dataclass(frozen=True)
class LabelScores:
    """Per-label scores of one item. ``multi_label``: independent probabilities, else a distribution."""

    scores: Mapping[str, float]
    entropy: float
    margin: float
    multi_label: bool = False

    @classmethod
    def from_probabilities(cls, labels: Sequence[str], probabilities: Sequence[float] | np.ndarray,
                           *, multi_label: bool = False) -> LabelScores:
        p = np.asarray(probabilities, dtype=np.float64)
        if len(labels) != p.size:
            raise ValueError(f"{p.size} scores for {len(labels)} labels")
        scores = {label: float(value) for label, value in zip(labels, p)}
        if multi_label:
            # Mean binary entropy; margin = distance of the least decided label from 0.5, scaled to [0, 1].
            clipped = np.clip(p, 1e-12, 1 - 1e-12)
            binary = -(clipped * np.log2(clipped) + (1 - clipped) * np.log2(1 - clipped))
            return cls(scores, float(binary.mean()) if p.size else 0.0,
                       float(np.min(np.abs(2 * p - 1))) if p.size else 0.0, True)
        return cls(scores, normalised_entropy(p), top_margin(p), False)

    @property
    def top(self) -> str:
        return max(self.scores, key=lambda label: self.scores[label]) if self.scores else ""

    def as_json(self) -> dict[str, Any]:
        return {"scores": dict(self.scores), "top": self.top, "entropy": self.entropy, "margin": self.margin,
                "multi_label": self.multi_label}


@dataclass(frozen=True)
class Dimensions:
    """Dimensional emotion values (e.g. arousal, valence, dominance), on the model's own scale."""

    values: Mapping[str, float]

    def as_json(self) -> dict[str, Any]:
        return {"values": dict(self.values)}


@dataclass(frozen=True)
class TranscriptSegment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class TranscriptWord:
    word: str
    start: float
    end: float
    probability: float  # Whisper's probability of the word's tokens, in [0, 1]

    def as_json(self) -> dict[str, Any]:
        return {"word": self.word, "start": self.start, "end": self.end, "probability": self.probability}


@dataclass(frozen=True)
class Transcript:
    """A transcript and its provenance: which model, which language (and where it came from), how sure."""

    text: str
    language: str
    language_probability: float  # 1.0 when the language was given (the utterance's tag, or a fixed-language model)
    confidence: float  # exp of the token-weighted mean token log-probability, in (0, 1]
    duration: float
    model_version: str
    segments: tuple[TranscriptSegment, ...] = field(default_factory=tuple)
    words: tuple[TranscriptWord, ...] = field(default_factory=tuple)
    language_source: str = "detected"  # "tag" (the utterance's language), "fixed" (an .en model) or "detected"
    model_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text, "language": self.language, "language_probability": self.language_probability,
            "language_source": self.language_source, "confidence": self.confidence, "duration": self.duration,
            "model": self.model_id, "model_version": self.model_version,
            "segments": [
                {"start": s.start, "end": s.end, "text": s.text, "avg_logprob": s.avg_logprob,
                 "no_speech_prob": s.no_speech_prob}
                for s in self.segments
            ],
            "words": [w.as_json() for w in self.words],
        }
