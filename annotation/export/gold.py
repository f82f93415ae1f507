"""Gold labels for the export, from the one source of truth: an adjudication overrides, then the aggregation rule.

The rule is the quality package's (``annotation.quality.aggregate``), with the project's policy: the export never
aggregates on its own. Per origin (human, llm, model) every item gets one answer per gold question, and a source
saying what that answer rests on: ``adjudicated`` (a reviewer's decision), ``single_annotation``, ``aggregated``
or ``tie_broken`` (a tie settled by the tie policy; a tie left open gives no answer). ``gold_table_build`` does
this on whole numpy arrays (one entry per annotation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from annotation.quality.aggregate import (
    SOURCE_ADJUDICATED,
    SOURCE_AGGREGATED,
    SOURCE_SINGLE,
    SOURCE_TIE_BROKEN,
    SOURCE_TIE_OPEN,
    AggregationPolicy,
    QuestionAggregate,
    aggregate_question,
)
from annotation.quality.columns import QuestionRatings
from annotation.schema import Question, multi_label_levels

# Precedence when an item has labels of several origins: human-verified labels win over synthetic ones.
ORIGIN_PRECEDENCE = ("human", "llm", "model")
GOLD_QUESTION_TYPES = ("single_choice", "multi_label", "numeric")
LABEL_SOURCES = (SOURCE_ADJUDICATED, SOURCE_TIE_BROKEN, SOURCE_AGGREGATED, SOURCE_SINGLE)

# Gold answers of one item: single_choice -> label index (int); multi_label -> tuple of label indices, or of
# (index, intensity) pairs when the question has intensities; numeric -> float. None: nobody answered.
GoldValue = int | float | tuple[int, ...] | tuple[tuple[int, int], ...] | None


def gold_questions(questions: Sequence[Question]) -> list[Question]:
    """Questions that get a gold answer; free text and time segments are not aggregated."""
    return [q for q in questions if q.type in GOLD_QUESTION_TYPES]


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
    sources: np.ndarray | None = None  # per row: index into LABEL_SOURCES


@dataclass
class GoldTable:
    """Per origin, the gold of every utterance that has annotations of that origin (rows sorted by utterance).

    ``choices[i]`` lists the distinct multi-label answers (GoldValue tuples) of question i; a million items
    share a few hundred of them.
    """

    questions: list[Question]
    by_origin: dict[str, OriginGold]
    choices: list[list[GoldValue]]
    open_ties: int = 0  # human items with a tie left open (and no adjudication): they wait for review

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


def gold_value(question: Question, answer: Any) -> GoldValue:
    """An answer in the schema's own words (a label, a list or mapping of labels, a number) as a GoldValue."""
    if answer is None:
        return None
    if question.type == "single_choice":
        return question.labels.index(answer) if answer in question.labels else None
    if question.type == "multi_label":
        chosen, _ = multi_label_levels(answer)
        if question.intensity:
            return tuple((question.labels.index(label), int(chosen[label])) for label in question.labels
                         if label in chosen)
        return tuple(question.labels.index(label) for label in question.labels if label in chosen)
    return float(answer)


@dataclass
class Ratings:
    """The annotations the export read, one entry per annotation sorted by utterance (as ``_collect`` keeps them)."""

    utterance_ids: np.ndarray
    origin_codes: np.ndarray  # index into the exported origins; -1: an origin no split takes
    raters: np.ndarray  # int code per (rater, perspective)
    answers: list[np.ndarray]  # per gold question: the answer objects (None: left unanswered)


def _origin_aggregates(questions: Sequence[Question], ratings: Ratings, selected: np.ndarray,
                       policy: AggregationPolicy) -> list[QuestionAggregate | None]:
    out: list[QuestionAggregate | None] = []
    for q, answers in zip(questions, ratings.answers):
        answered = selected & pd.notna(answers)
        rows = np.flatnonzero(answered)
        # A rater's later annotation of an item replaces an earlier one, as in the agreement report.
        frame = pd.DataFrame({"unit": ratings.utterance_ids[rows], "rater": ratings.raters[rows]})
        keep = rows[~frame.duplicated(["unit", "rater"], keep="last").to_numpy()]
        language = np.empty(keep.size, dtype=object)
        question_ratings = QuestionRatings(
            unit=ratings.utterance_ids[keep], rater=ratings.raters[keep].astype(object), answer=answers[keep],
            language=language, n_duplicates_dropped=int(rows.size - keep.size))
        out.append(aggregate_question(q, question_ratings, policy))
    return out


def _encode_aggregate(question: Question, aggregate: QuestionAggregate, interned: _ChoiceCodes,
                      index: int) -> np.ndarray:
    """Encoded gold of one question, per unit of the aggregate (answer objects are shared: each is encoded once)."""
    values = aggregate.values
    if question.type == "numeric":
        return np.array([np.nan if v is None else v for v in values.tolist()], dtype=np.float64)
    if question.type == "single_choice":
        codes, labels = pd.factorize(pd.Series(values, dtype=object))
        lookup = np.array([question.labels.index(label) if label in question.labels else NO_ANSWER
                           for label in labels] + [NO_ANSWER], dtype=np.int64)
        return lookup[codes]  # -1 (no value) picks the trailing NO_ANSWER
    ids = pd.factorize(pd.Series([id(v) for v in values], dtype=np.int64))[0] if values.size else np.zeros(0, np.int64)
    first = {code: row for row, code in reversed(list(enumerate(ids.tolist())))}
    distinct: list[GoldValue] = [None] * len(first)
    for code, row in first.items():
        distinct[code] = gold_value(question, values[row])
    return _encode(question, [distinct[code] for code in ids.tolist()], interned, index)


def gold_table_build(questions: Sequence[Question], origins: Sequence[str], ratings: Ratings,
                     policy: AggregationPolicy, adjudications: Mapping[int, Mapping[str, Any]] | None = None,
                     ) -> GoldTable:
    """Per origin, every item's gold by the aggregation rule, with its source; human gold is overridden by
    ``adjudications`` (utterance id -> the reviewer's answers), which also give gold to items whose tie stayed
    open. An item with no answer to any gold question gets no row."""
    gold_qs = gold_questions(questions)
    interned = _ChoiceCodes(len(gold_qs))
    by_origin: dict[str, OriginGold] = {}
    source_code = {name: i for i, name in enumerate(LABEL_SOURCES)}
    open_ties: set[int] = set()
    for code, origin in enumerate(origins):
        selected = ratings.origin_codes == code
        aggregates = _origin_aggregates(gold_qs, ratings, selected, policy)
        adjudicated = dict(adjudications or {}) if origin == "human" else {}
        units = np.unique(np.concatenate([a.units for a in aggregates if a is not None]
                                         + [np.array(sorted(adjudicated), dtype=np.int64)]).astype(np.int64))
        columns: list[np.ndarray] = []
        answered = np.zeros(units.size, dtype=bool)
        rank = np.full(units.size, len(LABEL_SOURCES) - 1, dtype=np.int64)  # the strongest source wins per item
        any_aggregated = np.zeros(units.size, dtype=bool)
        for i, (q, aggregate) in enumerate(zip(gold_qs, aggregates)):
            column = _encode(q, [None] * units.size, interned, i)
            if aggregate is not None and aggregate.size:
                position = np.searchsorted(units, aggregate.units)
                column[position] = _encode_aggregate(q, aggregate, interned, i)
                sources = aggregate.sources()
                has_value = ~aggregate.missing()
                for name in (SOURCE_TIE_BROKEN, SOURCE_AGGREGATED):
                    hit = position[(sources == name) & has_value]
                    rank[hit] = np.minimum(rank[hit], source_code[name])
                any_aggregated[position[has_value]] = True
                if origin == "human":
                    open_ties.update(aggregate.units[sources == SOURCE_TIE_OPEN].tolist())
            columns.append(column)
        for uid, value in adjudicated.items():
            row = int(np.searchsorted(units, uid))
            for i, q in enumerate(gold_qs):
                if q.key in value:
                    columns[i][row:row + 1] = _encode(q, [gold_value(q, value[q.key])], interned, i)
            rank[row] = source_code[SOURCE_ADJUDICATED]
            any_aggregated[row] = True
        for q, column in zip(gold_qs, columns):
            answered |= ~np.isnan(column) if q.type == "numeric" else column != NO_ANSWER
        answered &= any_aggregated
        origin_uids = ratings.utterance_ids[selected]
        counts = np.zeros(units.size, dtype=np.int64)
        if origin_uids.size:
            present, n = np.unique(origin_uids, return_counts=True)
            known = np.isin(present, units)
            counts[np.searchsorted(units, present[known])] = n[known]
        by_origin[origin] = OriginGold(units[answered], counts[answered], [c[answered] for c in columns],
                                       rank[answered])
    return GoldTable(questions=gold_qs, by_origin=by_origin, choices=interned.choices(),
                     open_ties=len(open_ties - set(adjudications or {})))
