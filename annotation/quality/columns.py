"""Annotations loaded as parallel columns (one entry per annotation), the form every quality computation reads.

Rater keys: ``user:<id>`` for an annotator, ``ext:<id>`` for a rater named by an imported source, and the model
version for model and LLM annotations. Answers are kept per question key (None where the question was left empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

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
    frame = pd.DataFrame({"unit": columns.unit[mask], "rater": pd.Series(columns.rater[mask], dtype=object)})
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
