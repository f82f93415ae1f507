"""Gold labels: aggregate the answers of several annotations of one utterance into one answer per question.

``majority_aggregate`` is the simple rule (see README.md); it is one ``ItemAggregator`` and the streaming
``GoldBuilder`` takes any other, so a Dawid–Skene aggregator (which needs every rating before it can answer)
replaces it by building the same ``GoldTable`` from its posteriors. ``majority_gold_table`` applies the same
rule as ``majority_aggregate`` to whole numpy arrays, which is what the export runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotation.schema import Question

# Precedence when an item has labels of several origins: human-verified labels win over synthetic ones.
ORIGIN_PRECEDENCE = ("human", "llm", "model")
GOLD_QUESTION_TYPES = ("single_choice", "multi_label", "numeric")

# Gold answers of one item: single_choice -> label index (int); multi_label -> tuple of label indices, or of
# (index, intensity) pairs when the question has intensities; numeric -> float. None: nobody answered.
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


NO_ANSWER = -1


@dataclass
class OriginGold:
    """Gold answers made from one origin's annotations, columnar: row r is utterance ``utterance_ids[r]``.

    One numpy array per gold question: single choice -> label index; multi-label -> index into
    ``GoldTable.choices`` of that question; both NO_ANSWER when nobody answered; numeric -> the value, NaN when
    nobody answered.
    """

    utterance_ids: np.ndarray
    n_annotations: np.ndarray
    columns: list[np.ndarray]


@dataclass
class GoldTable:
    """Per origin, the gold of every utterance that has annotations of that origin (rows sorted by utterance).

    ``choices[i]`` lists the distinct multi-label answers (GoldValue tuples) of question i; a million items
    share a few hundred of them.
    """

    questions: list[Question]
    by_origin: dict[str, OriginGold]
    choices: list[list[GoldValue]]

    def value(self, origin: str, question_index: int, row: int) -> GoldValue:
        """One gold answer in GoldValue form (None: nobody answered)."""
        question = self.questions[question_index]
        encoded = self.by_origin[origin].columns[question_index][row]
        if question.type == "numeric":
            return None if np.isnan(encoded) else float(encoded)
        if encoded == NO_ANSWER:
            return None
        return int(encoded) if question.type == "single_choice" else self.choices[question_index][int(encoded)]


class _ChoiceCodes:
    """Interns multi-label gold tuples per question into small integer codes."""

    def __init__(self, n_questions: int) -> None:
        self.codes: list[dict[GoldValue, int]] = [{} for _ in range(n_questions)]

    def code(self, question_index: int, value: GoldValue) -> int:
        codes = self.codes[question_index]
        return codes.setdefault(value, len(codes))

    def choices(self) -> list[list[GoldValue]]:
        return [list(codes) for codes in self.codes]


def _encode(question: Question, values: list[GoldValue], interned: _ChoiceCodes, index: int) -> np.ndarray:
    if question.type == "numeric":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if question.type == "single_choice":
        return np.array([NO_ANSWER if v is None else v for v in values], dtype=np.int64)
    return np.array([NO_ANSWER if v is None else interned.code(index, v) for v in values], dtype=np.int64)


class GoldBuilder:
    """Feed annotations grouped by utterance (in utterance order) to any ItemAggregator; collects gold per origin.

    The export itself uses ``majority_gold_table`` (the same rule as ``majority_aggregate``, on whole arrays);
    this builder is the seam for aggregators that work item by item.
    """

    def __init__(self, questions: Sequence[Question], origins: Sequence[str],
                 aggregator: ItemAggregator = majority_aggregate) -> None:
        self.questions = gold_questions(questions)
        self.aggregator = aggregator
        self._rows: dict[str, tuple[list[int], list[int], list[list[GoldValue]]]] = {
            o: ([], [], [[] for _ in self.questions]) for o in origins}

    def add_item(self, utterance_id: int, origin: str, values: Sequence[Mapping[str, Any]]) -> None:
        rows = self._rows.get(origin)
        if rows is None or not values:
            return
        gold = self.aggregator(self.questions, values)
        if all(g is None for g in gold):
            return
        rows[0].append(utterance_id)
        rows[1].append(len(values))
        for column, value in zip(rows[2], gold):
            column.append(value)

    def table(self) -> GoldTable:
        interned = _ChoiceCodes(len(self.questions))
        by_origin = {
            origin: OriginGold(
                utterance_ids=np.array(ids, dtype=np.int64), n_annotations=np.array(counts, dtype=np.int64),
                columns=[_encode(q, column, interned, i) for i, (q, column) in enumerate(zip(self.questions, columns))],
            )
            for origin, (ids, counts, columns) in self._rows.items()
        }
        return GoldTable(questions=self.questions, by_origin=by_origin, choices=interned.choices())


def majority_gold_table(questions: Sequence[Question], origins: Sequence[str], utterance_ids: np.ndarray,
                        origin_codes: np.ndarray, answers: list[np.ndarray],
                        multi_label_answers: list[list[Any]]) -> GoldTable:
    """``majority_aggregate`` over every item at once.

    One entry per annotation, sorted by utterance: ``origin_codes`` index ``origins`` (NO_ANSWER: an origin
    that is not exported); ``answers[i]`` encodes the answers to gold question i like OriginGold columns, except
    that multi-label entries index ``multi_label_answers[i]`` (the distinct answers, as lists or label ->
    intensity mappings). Items whose annotations answer one question once (the usual case) take that answer
    without aggregation; the rest are counted with bincount (single choice, numeric) or aggregated item by
    item (multi-label).
    """
    gold_qs = gold_questions(questions)
    interned = _ChoiceCodes(len(gold_qs))
    by_origin: dict[str, OriginGold] = {}
    for code, origin in enumerate(origins):
        selected = np.flatnonzero(origin_codes == code)
        uids = utterance_ids[selected]
        if not uids.size:
            by_origin[origin] = OriginGold(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                           [_encode(q, [], interned, i) for i, q in enumerate(gold_qs)])
            continue
        starts = np.flatnonzero(np.r_[True, uids[1:] != uids[:-1]])
        item = np.cumsum(np.r_[True, uids[1:] != uids[:-1]]) - 1
        n_items = starts.size
        columns = [
            _majority_column(q, i, answers[i][selected], item, n_items, multi_label_answers[i], interned)
            for i, q in enumerate(gold_qs)
        ]
        answered = np.zeros(n_items, dtype=bool)
        for q, column in zip(gold_qs, columns):
            answered |= ~np.isnan(column) if q.type == "numeric" else column != NO_ANSWER
        n_annotations = np.diff(np.r_[starts, uids.size])
        by_origin[origin] = OriginGold(uids[starts][answered], n_annotations[answered],
                                       [column[answered] for column in columns])
    return GoldTable(questions=gold_qs, by_origin=by_origin, choices=interned.choices())


def _majority_column(q: Question, index: int, answer: np.ndarray, item: np.ndarray, n_items: int,
                     distinct: list[Any], interned: _ChoiceCodes) -> np.ndarray:
    if q.type == "numeric":
        given = ~np.isnan(answer)
        # bincount adds in annotation order, as majority_aggregate's sum() does.
        total = np.bincount(item[given], weights=answer[given], minlength=n_items)
        count = np.bincount(item[given], minlength=n_items)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    given = answer != NO_ANSWER
    count = np.bincount(item[given], minlength=n_items)
    gold = np.full(n_items, NO_ANSWER, dtype=np.int64)
    if q.type == "single_choice":
        if count.max(initial=0) <= 1:
            gold[item[given]] = answer[given]
            return gold
        n_labels = len(q.labels)
        votes = np.bincount(item[given] * n_labels + answer[given], minlength=n_items * n_labels)
        # argmax takes the first of equal counts: a tie goes to the label listed first.
        gold = np.argmax(votes.reshape(n_items, n_labels), axis=1).astype(np.int64)
        gold[count == 0] = NO_ANSWER
        return gold
    single = given & (count[item] == 1)
    alone: dict[int, int] = {}
    codes = answer[single]
    for distinct_code in np.unique(codes).tolist():
        alone[distinct_code] = interned.code(index, _multi_label_majority(q, [distinct[distinct_code]]))
    if alone:
        lookup = np.zeros(max(alone) + 1, dtype=np.int64)
        lookup[list(alone)] = list(alone.values())
        gold[item[single]] = lookup[codes]
    several = given & (count[item] > 1)
    if several.any():
        rows = np.flatnonzero(several)
        group_starts = np.flatnonzero(np.r_[True, item[rows][1:] != item[rows][:-1]])
        for group in np.split(rows, group_starts[1:]):
            value = _multi_label_majority(q, [distinct[c] for c in answer[group].tolist()])
            gold[item[group[0]]] = interned.code(index, value)
    return gold


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
