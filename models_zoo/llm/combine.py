"""Combine several LLMs' answers to one item into one synthetic label, per question: union, intersection, majority.

Every question type is read as levels per label, and the three methods differ only in how many models must
reach a level (README.md in this folder has the table and examples):

- multi-label: a label chosen is level 1, not chosen 0; with intensity the level is the intensity 0-3;
- single choice: the chosen label is level 1;
- union keeps each label at the highest level any model gave it, intersection at the highest level every
  model gave it, majority at the highest level a strict majority of the models gave it (the lower median).

A model that failed the item (``None``) gives no label: intersection then gives no answer for that question
(it cannot know), and majority gives one only when more than half of all the models answered.

A single-choice question holds one label, so when the kept labels are several (union over disagreeing
models) or none, the question gets no synthetic answer. Numeric answers (V/A/D) are the lower median of the
models' values (always one of the values given, so it stays on the scale's step).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from models_zoo.llm.answers import AnswerSchema, LabelQuestion

Method = Literal["union", "intersection", "majority"]
METHODS: tuple[Method, ...] = ("union", "intersection", "majority")


def _levels(question: LabelQuestion, answer: Any) -> dict[str, int]:
    if question.type == "single_choice":
        return {answer: 1}
    if question.intensity:
        return {label: int(level) for label, level in answer.items()}
    return dict.fromkeys(answer, 1)


def _combine_levels(levels: list[int], method: Method, models: int) -> int:
    """The highest level that any / every / a strict majority of ``models`` reached (missing models: 0)."""
    padded = sorted(levels + [0] * (models - len(levels)))
    if method == "union":
        return padded[-1]
    if method == "intersection":
        return padded[0]
    return padded[(models - 1) // 2]


def combine_question(question: LabelQuestion, answers: Sequence[Any], method: Method) -> Any:
    """One question's combined answer from each model's answer (None: that model gave none); None if no answer."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    models = len(answers)
    given = [a for a in answers if a is not None]
    if not given or (method == "intersection" and len(given) < models):
        return None
    if method == "majority" and len(given) * 2 <= models:  # most models said nothing: no majority either way
        return None
    if question.type == "numeric":
        return statistics.median_low(given)
    per_label: dict[str, list[int]] = {label: [] for label in question.labels}
    for answer in given:
        for label, level in _levels(question, answer).items():
            if label not in per_label:
                raise ValueError(f"{question.key}: {label!r} is not one of the labels {list(question.labels)}")
            per_label[label].append(level)
    kept = {label: level for label, values in per_label.items()
            if (level := _combine_levels(values, method, models)) > 0}
    if question.type == "single_choice":
        return next(iter(kept)) if len(kept) == 1 else None
    if question.intensity:
        return kept
    return list(kept)


def combine_answers(answers: Sequence[Mapping[str, Any] | None], schema: AnswerSchema,
                    method: Method) -> dict[str, Any]:
    """Combine the ``labels`` of several models' answers to one item, question by question.

    ``answers`` has one entry per model, ``None`` for a model that failed the item. The result maps each
    question key to the combined answer; questions without one are left out.
    """
    combined = {}
    for question in schema.questions:
        value = combine_question(question, [a.get(question.key) if a is not None else None for a in answers], method)
        if value is not None:
            combined[question.key] = value
    return combined
