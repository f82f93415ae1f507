"""Annotations loaded as parallel columns (one entry per annotation), the form every quality computation reads.

Rater keys: ``user:<id>`` for an annotator, ``ext:<id>`` for a rater named by an imported source, and the model
version for model and LLM annotations. Answers are kept per question key (None where the question was left empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.agreement import Ratings

ObjectArray = npt.NDArray[np.object_]


def rater_key(annotator_id: int | None, external_rater: str) -> str:
    return f"user:{annotator_id}" if annotator_id is not None else f"ext:{external_rater}"


@dataclass
class AnnotationColumns:
    annotation_id: npt.NDArray[np.int64]
    unit: npt.NDArray[np.int64]  # utterance id
    rater: ObjectArray
    is_human: npt.NDArray[np.bool_]
    perspective: ObjectArray
    language: ObjectArray
    answers: dict[str, ObjectArray] = field(default_factory=dict)
    created_at: npt.NDArray[np.int64] | None = None  # epoch seconds; None when the loader did not read them

    @property
    def size(self) -> int:
        return int(self.unit.size)

    def perspectives_of(self, key: str) -> list[str]:
        answered = pd.notna(self.answers[key])
        return sorted(set(self.perspective[answered].tolist()))


@dataclass(frozen=True)
class QuestionRatings:
    """One question's ratings of one origin group and perspective, one per (unit, rater): the latest wins."""

    unit: npt.NDArray[np.int64]
    rater: ObjectArray
    answer: ObjectArray
    language: ObjectArray
    n_duplicates_dropped: int
    created_at: npt.NDArray[np.int64] | None = None  # epoch seconds of each kept rating

    @property
    def size(self) -> int:
        return int(self.unit.size)


def question_ratings(
    columns: AnnotationColumns, key: str, perspective: str, *, human: bool
) -> QuestionRatings:
    """Answered ratings of ``key`` in ``perspective`` by humans (or by models); a rater's later rating of a unit wins.

    Columns are in annotation id order, so keeping the last duplicate keeps the latest annotation.
    """
    answers = columns.answers[key]
    mask = (columns.is_human == human) & (columns.perspective == perspective)
    mask &= pd.notna(answers)
    frame = pd.DataFrame({"unit": columns.unit[mask], "rater": columns.rater[mask]})
    keep = ~frame.duplicated(["unit", "rater"], keep="last").to_numpy()
    index = np.flatnonzero(mask)[keep]
    return QuestionRatings(
        unit=columns.unit[index],
        rater=columns.rater[index],
        answer=answers[index],
        language=columns.language[index],
        n_duplicates_dropped=int(mask.sum() - keep.sum()),
        created_at=columns.created_at[index] if columns.created_at is not None else None,
    )


def encoded_ratings(ratings: QuestionRatings, value_idx: npt.NDArray[Any], values: npt.NDArray[Any]) -> Ratings:
    """Ratings with units and raters numbered in order of first appearance, as ``ratings_from_long`` numbers them
    (``question_ratings`` already kept one rating per unit and rater, so there is nothing to check)."""
    unit_idx, units = pd.factorize(ratings.unit)
    rater_idx, raters = pd.factorize(ratings.rater)
    return Ratings(unit_idx.astype(np.int64), rater_idx.astype(np.int64), value_idx.astype(np.int64),
                   np.asarray(units), np.asarray(raters, dtype=object), values)


AnswerKey = tuple[tuple[str, float], ...]


def answer_key(answer: Any) -> AnswerKey:
    """(label, level) pairs of a stored multi-label answer: level 1 for a list, the intensity for a mapping.

    Stored answers were validated (annotation.schema), so a type check per answer is all the parsing needed.
    """
    if type(answer) is dict:
        return tuple(sorted((str(label), float(level)) for label, level in answer.items() if level))
    return tuple(sorted((str(label), 1.0) for label in answer))


def keyed_answers(ratings: QuestionRatings) -> Ratings:
    """Multi-label ratings encoded with one value per distinct (label, level) answer, in order of first appearance.

    Each distinct form of an answer (a dict's items or a list's labels) is parsed once, not once per rating.
    """
    answers = ratings.answer.tolist()
    forms = [tuple(answer.items()) if type(answer) is dict else tuple(answer) for answer in answers]
    code_of_key: dict[AnswerKey, int] = {}
    code_of_form = {}
    for form, answer in dict(zip(forms, answers)).items():  # distinct forms in order of first appearance
        code_of_form[form] = code_of_key.setdefault(answer_key(answer), len(code_of_key))
    codes = list(map(code_of_form.__getitem__, forms))
    keys = np.empty(len(code_of_key), dtype=object)
    keys[:] = list(code_of_key)
    return encoded_ratings(ratings, np.asarray(codes, dtype=np.int64), keys)
