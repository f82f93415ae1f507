"""Map a model's labels onto a project's label set, explicitly, and renormalise the scores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models_zoo.outputs import LabelScores


class LabelMappingError(ValueError):
    pass


@dataclass(frozen=True)
class MappedScores:
    scores: LabelScores  # on the project's labels, renormalised to sum to 1 (single-label)
    dropped_mass: float  # share of the model's probability that went to dropped labels

    def as_json(self) -> dict[str, object]:
        return {**self.scores.as_json(), "dropped_mass": self.dropped_mass}


@dataclass(frozen=True)
class LabelMapping:
    """Each model label goes to one project label or is dropped, and both are written down.

    Several model labels may go to the same project label (their scores add up). A project label no
    model label reaches is reported by ``unreached`` and always scores 0.
    """

    source_labels: tuple[str, ...]
    target_labels: tuple[str, ...]
    mapping: Mapping[str, str]
    dropped: tuple[str, ...]

    @classmethod
    def build(cls, source_labels: Sequence[str], target_labels: Sequence[str], mapping: Mapping[str, str],
              *, drop: Iterable[str] = ()) -> LabelMapping:
        source, target, dropped = tuple(source_labels), tuple(target_labels), tuple(drop)
        problems = []
        for name, labels in (("model", source), ("project", target)):
            if len(set(labels)) != len(labels):
                problems.append(f"{name} labels repeat: {sorted({x for x in labels if labels.count(x) > 1})}")
        unknown_source = sorted((set(mapping) | set(dropped)) - set(source))
        if unknown_source:
            problems.append(f"not labels of the model: {unknown_source}")
        unknown_target = sorted(set(mapping.values()) - set(target))
        if unknown_target:
            problems.append(f"not labels of the project: {unknown_target}")
        both = sorted(set(mapping) & set(dropped))
        if both:
            problems.append(f"both mapped and dropped: {both}")
        unaccounted = [label for label in source if label not in mapping and label not in dropped]
        if unaccounted:
            problems.append(f"model labels neither mapped nor dropped: {unaccounted} (list them in drop= to discard them)")
        if problems:
            raise LabelMappingError("invalid label mapping: " + "; ".join(problems))
        return cls(source, target, dict(mapping), dropped)

    @classmethod
    def by_synonyms(cls, source_labels: Sequence[str], target_labels: Sequence[str]) -> LabelMapping:
        """Match labels by name and common synonyms (``hap`` -> ``joy``); the rest is dropped, visibly."""
        canonical_target = {_canonical(t): t for t in target_labels}
        mapping: dict[str, str] = {}
        dropped = []
        for label in source_labels:
            target = canonical_target.get(_canonical(label))
            if target is None:
                dropped.append(label)
            else:
                mapping[label] = target
        return cls.build(source_labels, target_labels, mapping, drop=dropped)

    @property
    def unreached(self) -> tuple[str, ...]:
        reached = set(self.mapping.values())
        return tuple(t for t in self.target_labels if t not in reached)

    def report(self) -> str:
        lines = [f"{s} -> {self.mapping[s]}" for s in self.source_labels if s in self.mapping]
        if self.dropped:
            lines.append("dropped: " + ", ".join(self.dropped))
        if self.unreached:
            lines.append("never predicted: " + ", ".join(self.unreached))
        return "\n".join(lines)

    def apply(self, scores: LabelScores) -> MappedScores:
        missing = [label for label in self.source_labels if label not in scores.scores]
        if missing:
            raise LabelMappingError(f"scores lack model labels {missing}")
        totals = dict.fromkeys(self.target_labels, 0.0)
        for label, target in self.mapping.items():
            totals[target] += scores.scores[label]
        dropped_mass = sum(scores.scores[label] for label in self.dropped)
        values = np.array([totals[t] for t in self.target_labels], dtype=np.float64)
        if scores.multi_label:
            # Independent probabilities: a merged label is present if any of its sources is.
            merged = dict.fromkeys(self.target_labels, 0.0)
            for label, target in self.mapping.items():
                merged[target] = 1 - (1 - merged[target]) * (1 - scores.scores[label])
            values = np.array([merged[t] for t in self.target_labels])
            mass = float(np.mean([scores.scores[label] for label in self.dropped])) if self.dropped else 0.0
            return MappedScores(LabelScores.from_probabilities(self.target_labels, values, multi_label=True), mass)
        kept = values.sum()
        if kept > 0:
            values = values / kept
        else:
            values = np.full(len(self.target_labels), 1.0 / len(self.target_labels))
        total = kept + dropped_mass
        return MappedScores(LabelScores.from_probabilities(self.target_labels, values),
                            float(dropped_mass / total) if total > 0 else 0.0)


_SYNONYMS = {
    "hap": "joy", "happy": "joy", "happiness": "joy", "joy": "joy", "exc": "joy",
    "ang": "anger", "angry": "anger", "anger": "anger",
    "sad": "sadness", "sadness": "sadness",
    "neu": "neutral", "neutral": "neutral", "calm": "neutral",
    "fea": "fear", "fear": "fear", "fearful": "fear", "afraid": "fear",
    "dis": "disgust", "disgust": "disgust", "disgusted": "disgust",
    "sur": "surprise", "surprise": "surprise", "surprised": "surprise",
}


def _canonical(label: str) -> str:
    key = label.strip().lower()
    return _SYNONYMS.get(key, key)


GOEMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
EKMAN_LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")

# The grouping published with GoEmotions (google-research/goemotions, data/ekman_mapping.json).
_GOEMOTIONS_EKMAN_GROUPS = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief", "pride",
            "admiration", "desire", "caring"),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
}


def goemotions_to_ekman(*, keep_neutral: bool = False) -> LabelMapping:
    """28 GoEmotions labels to the 6 Ekman labels (plus ``neutral`` when kept; otherwise it is dropped)."""
    mapping = {source: ekman for ekman, sources in _GOEMOTIONS_EKMAN_GROUPS.items() for source in sources}
    target = EKMAN_LABELS + ("neutral",) if keep_neutral else EKMAN_LABELS
    if keep_neutral:
        mapping["neutral"] = "neutral"
    return LabelMapping.build(GOEMOTIONS_LABELS, target, mapping, drop=() if keep_neutral else ("neutral",))
