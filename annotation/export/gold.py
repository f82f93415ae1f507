"""Gold labels: aggregate the answers of several annotations of one utterance into one answer per question.

``majority_aggregate`` is the simple rule (see README.md); it is one ``ItemAggregator`` and the streaming
``GoldBuilder`` takes any other, so a Dawid–Skene aggregator (which needs every rating before it can answer)
replaces it by building the same ``GoldTable`` from its posteriors.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotation.schema import Question

# Precedence when an item has labels of several origins: human-verified labels win over synthetic ones.
ORIGIN_PRECEDENCE = ("human", "llm", "model")
GOLD_QUESTION_TYPES = ("single_choice", "multi_label", "numeric")

# Encoded gold answers, compact enough for a million items:
#   single_choice -> label index (int); multi_label -> tuple of label indices, or of (index, intensity) pairs
#   when the question has intensities; numeric -> float. None: nobody answered.
GoldValue = int | float | tuple[int, ...] | tuple[tuple[int, int], ...] | None
ItemAggregator = Callable[[Sequence[Question], Sequence[Mapping[str, Any]]], list[GoldValue]]


def gold_questions(questions: Sequence[Question]) -> list[Question]:
    """Questions that get a gold answer; free text and time segments are not aggregated."""
    return [q for q in questions if q.type in GOLD_QUESTION_TYPES]


def majority_aggregate(questions: Sequence[Question], answers: Sequence[Mapping[str, Any]]) -> list[GoldValue]:
    """Gold per question from the answers of several annotations (each a validated value mapping).

    - single choice: the most frequent label; a tie goes to the label listed first in the schema;
    - multi-label: each label chosen by more than half of the annotations that answered the question;
      with intensities, the lower median of the intensities given to a kept label;
    - numeric: the mean.
    Annotations that left a question empty do not count for it.
    """
    gold: list[GoldValue] = []
    for q in questions:
        given = [a[q.key] for a in answers if a.get(q.key) not in (None, "", [], {})]
        if not given:
            gold.append(None)
            continue
        if q.type == "single_choice":
            if len(given) == 1:
                gold.append(q.labels.index(given[0]))
                continue
            counts = [0] * len(q.labels)
            for label in given:
                counts[q.labels.index(label)] += 1
            gold.append(counts.index(max(counts)))
        elif q.type == "multi_label":
            gold.append(_multi_label_majority(q, given))
        else:
            gold.append(float(sum(given)) / len(given))
    return gold


def _multi_label_majority(q: Question, given: list[Any]) -> GoldValue:
    half = len(given) / 2.0
    if q.intensity:
        levels: dict[int, list[int]] = {}
        for answer in given:
            for label, level in answer.items():
                levels.setdefault(q.labels.index(label), []).append(int(level))
        kept_levels: list[tuple[int, int]] = []
        for index in sorted(levels):
            chosen = levels[index]
            if len(chosen) > half:
                ordered = sorted(chosen)
                kept_levels.append((index, ordered[(len(ordered) - 1) // 2]))
        return tuple(kept_levels)
    votes = [0] * len(q.labels)
    for answer in given:
        for label in answer:
            votes[q.labels.index(label)] += 1
    return tuple(i for i, v in enumerate(votes) if v > half)


@dataclass
class OriginGold:
    """Gold answers made from one origin's annotations, columnar: row r is utterance ``utterance_ids[r]``."""

    utterance_ids: array = field(default_factory=lambda: array("q"))
    n_annotations: array = field(default_factory=lambda: array("l"))
    columns: list[list[GoldValue]] = field(default_factory=list)


@dataclass
class GoldTable:
    """Per origin, the gold of every utterance that has annotations of that origin (rows sorted by utterance)."""

    questions: list[Question]
    by_origin: dict[str, OriginGold]


class GoldBuilder:
    """Feed annotations grouped by utterance (in utterance order); collects gold per origin.

    Multi-label tuples repeat a lot, so they are interned: a million items share a few hundred tuples.
    """

    def __init__(self, questions: Sequence[Question], origins: Sequence[str],
                 aggregator: ItemAggregator = majority_aggregate) -> None:
        self.questions = gold_questions(questions)
        self.aggregator = aggregator
        self.by_origin = {o: OriginGold(columns=[[] for _ in self.questions]) for o in origins}
        self._interned: dict[Any, Any] = {}

    def add_item(self, utterance_id: int, origin: str, values: Sequence[Mapping[str, Any]]) -> None:
        table = self.by_origin.get(origin)
        if table is None or not values:
            return
        gold = self.aggregator(self.questions, values)
        if all(g is None for g in gold):
            return
        table.utterance_ids.append(utterance_id)
        table.n_annotations.append(len(values))
        for column, value in zip(table.columns, gold):
            column.append(self._interned.setdefault(value, value) if isinstance(value, tuple) else value)

    def table(self) -> GoldTable:
        return GoldTable(questions=self.questions, by_origin=self.by_origin)


def gold_decode(question: Question, value: GoldValue) -> Any:
    """The gold value in the schema's own words (label names), as the export files hold it."""
    if value is None:
        return None
    if question.type == "single_choice":
        assert isinstance(value, int)
        return question.labels[value]
    if question.type == "multi_label":
        chosen: Any = value
        if question.intensity:
            return [question.labels[i] for i, _ in chosen]
        return [question.labels[i] for i in chosen]
    return value


def gold_intensities(question: Question, value: GoldValue) -> list[int] | None:
    if value is None or question.type != "multi_label" or not question.intensity:
        return None
    chosen: Any = value
    return [level for _, level in chosen]
