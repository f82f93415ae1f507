"""Typed questions of a label schema, and validation of schemas and of answers to them.

A schema version holds a list of questions, each a JSON object with a ``key`` and a ``type``:

- ``single_choice``: ``labels`` (list); answer: one label.
- ``multi_label``: ``labels``; optional ``intensity: true`` (0–3, as in BRIGHTER) and ``allow_empty`` (default
  true): an empty answer (``[]``, ``{}`` or every level 0) is the answer "none of these" / "no emotion", which is
  not the same as leaving the question unanswered (key absent or null). Answer: a list of labels, or with
  intensity a mapping label → 0..3. Either form may also be a mapping label → level (0/1, or 0–3) where ``null``
  marks a label this rater gave no answer for (a blank cell of an imported file): such a label is *missing*, not
  absent, for agreement and aggregation. A label not mentioned at all is absent (level 0).
- ``numeric``: ``min``, ``max``, ``step`` (e.g. valence 1–5 by 0.1, as in EmoBank); answer: a number.
- ``text``: optional ``max_length``; answer: a string (a free-text rationale).
- ``segments``: ``labels``; answer: a list of ``{"start": s, "end": s, "label": l}`` in seconds.

Every question may set ``required`` (default false) and a human ``title``. Answers are a mapping
from question key to answer; validation errors name the question (and the item) they concern.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from annotation.models import LabelSchemaVersion

QUESTION_TYPES = ("single_choice", "multi_label", "numeric", "text", "segments")
INTENSITY_MIN, INTENSITY_MAX = 0, 3
_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PERSPECTIVE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
MAX_TEXT_LENGTH = 10_000
MAX_SCALE_STEPS = 1_000_000  # a numeric scale's step divides max - min into at most this many steps
# A schema is read on every annotate screen and validated on every submit: its size is bounded.
MAX_SCHEMA_BYTES = 256 * 1024  # the questions as JSON
MAX_QUESTIONS = 100
MAX_LABELS = 500  # per question
MAX_TITLE_LENGTH = 500
MAX_PERSPECTIVES = 20


class SchemaError(ValueError):
    """A schema definition or an answer does not fit; ``errors`` maps field paths to reasons."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class Question:
    key: str
    type: str
    title: str = ""
    labels: tuple[str, ...] = ()
    intensity: bool = False
    allow_empty: bool = False  # multi_label: an empty answer means "none of these"
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    max_length: int = MAX_TEXT_LENGTH
    required: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def _is_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float; an integer too big for a float is not one (comparing it with floats overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _labels(raw: dict[str, Any], where: str, errors: dict[str, str]) -> tuple[str, ...]:
    labels = raw.get("labels")
    if not isinstance(labels, list) or not labels:
        errors[f"{where}.labels"] = "must be a non-empty list of label names"
        return ()
    if len(labels) > MAX_LABELS:
        errors[f"{where}.labels"] = f"has {len(labels)} labels; at most {MAX_LABELS} are allowed"
        return ()
    cleaned: list[str] = []
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip() or len(label) > 100:
            errors[f"{where}.labels[{i}]"] = "must be a non-empty string of at most 100 characters"
            continue
        cleaned.append(label.strip())
    if len(set(cleaned)) != len(cleaned):
        errors[f"{where}.labels"] = "labels must be unique"
    return tuple(cleaned)


def parse_questions(raw_questions: Any) -> list[Question]:
    """Validate a schema's question list; raise SchemaError naming every bad field."""
    errors: dict[str, str] = {}
    if not isinstance(raw_questions, list) or not raw_questions:
        raise SchemaError({"questions": "must be a non-empty list of questions"})
    if len(raw_questions) > MAX_QUESTIONS:
        raise SchemaError({"questions": f"has {len(raw_questions)} questions; at most {MAX_QUESTIONS} are allowed"})
    size = len(json.dumps(raw_questions, ensure_ascii=False).encode())
    if size > MAX_SCHEMA_BYTES:
        raise SchemaError({"questions": f"is {size:,} bytes as JSON; at most {MAX_SCHEMA_BYTES:,} are allowed"})
    questions: list[Question] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_questions):
        where = f"questions[{i}]"
        if not isinstance(raw, dict):
            errors[where] = "must be an object with 'key' and 'type'"
            continue
        key = raw.get("key")
        if not isinstance(key, str) or not _KEY_PATTERN.match(key):
            errors[f"{where}.key"] = "must be lowercase letters, digits and underscores, starting with a letter"
            continue
        if key in seen:
            errors[f"{where}.key"] = f"duplicate question key {key!r}"
        seen.add(key)
        qtype = raw.get("type")
        if qtype not in QUESTION_TYPES:
            errors[f"{where}.type"] = f"must be one of {', '.join(QUESTION_TYPES)}"
            continue
        title = raw.get("title", "")
        required = raw.get("required", False)
        if not isinstance(title, str) or not isinstance(required, bool):
            errors[where] = "'title' must be a string and 'required' a boolean"
            continue
        if len(title) > MAX_TITLE_LENGTH:
            errors[f"{where}.title"] = f"at most {MAX_TITLE_LENGTH} characters"
            continue
        common = {"key": key, "type": qtype, "title": title, "required": required}
        if qtype in ("single_choice", "segments"):
            questions.append(Question(**common, labels=_labels(raw, where, errors)))
        elif qtype == "multi_label":
            intensity = raw.get("intensity", False)
            if not isinstance(intensity, bool):
                errors[f"{where}.intensity"] = "must be true or false"
            allow_empty = raw.get("allow_empty", True)
            if not isinstance(allow_empty, bool):
                errors[f"{where}.allow_empty"] = "must be true (an empty answer means 'none of these') or false"
            questions.append(Question(**common, labels=_labels(raw, where, errors), intensity=bool(intensity),
                                      allow_empty=bool(allow_empty)))
        elif qtype == "numeric":
            lo, hi, step = raw.get("min"), raw.get("max"), raw.get("step", None)
            if not _is_number(lo) or not _is_number(hi) or lo >= hi or not math.isfinite(float(hi) - float(lo)):
                errors[f"{where}.min"] = "'min' and 'max' must be numbers with min < max (and max - min finite)"
                continue
            if step is None:
                questions.append(Question(**common, minimum=float(lo), maximum=float(hi)))
                continue
            if not _is_number(step) or step <= 0 or step > hi - lo:
                errors[f"{where}.step"] = "must be a positive number no larger than max - min"
                continue
            if (hi - lo) / step > MAX_SCALE_STEPS:
                errors[f"{where}.step"] = (f"divides max - min into {(hi - lo) / step:.3g} steps; "
                                           f"at most {MAX_SCALE_STEPS:,} are allowed")
                continue
            questions.append(Question(**common, minimum=float(lo), maximum=float(hi), step=float(step)))
        elif qtype == "text":
            max_length = raw.get("max_length", MAX_TEXT_LENGTH)
            if not isinstance(max_length, int) or isinstance(max_length, bool) or not 1 <= max_length <= MAX_TEXT_LENGTH:
                errors[f"{where}.max_length"] = f"must be an integer from 1 to {MAX_TEXT_LENGTH}"
                continue
            questions.append(Question(**common, max_length=max_length))
    if errors:
        raise SchemaError(errors)
    return questions


def parse_perspectives(raw: Any) -> list[str]:
    if raw in (None, []):
        return []
    if isinstance(raw, list) and len(raw) > MAX_PERSPECTIVES:
        raise SchemaError({"perspectives": f"at most {MAX_PERSPECTIVES} perspectives"})
    if not isinstance(raw, list) or not all(isinstance(p, str) and _PERSPECTIVE_PATTERN.match(p) for p in raw):
        raise SchemaError({"perspectives": "must be a list of lowercase names such as writer, reader, listener"})
    if len(set(raw)) != len(raw):
        raise SchemaError({"perspectives": "perspectives must be unique"})
    return list(raw)


def _on_step(value: float, q: Question) -> bool:
    if q.step is None or q.minimum is None:
        return True
    steps = (value - q.minimum) / q.step
    return abs(steps - round(steps)) < 1e-6


def _check_answer(q: Question, answer: Any) -> Any:
    """Return the normalised answer, or raise ValueError with the reason."""
    if q.type == "single_choice":
        if not isinstance(answer, str) or answer not in q.labels:
            raise ValueError(f"{answer!r} is not one of the labels {list(q.labels)}")
        return answer
    if q.type == "multi_label":
        return _check_multi_label(q, answer)
    if q.type == "numeric":
        if not _is_number(answer):
            raise ValueError(f"must be a number, got {answer!r}")
        assert q.minimum is not None and q.maximum is not None
        if not q.minimum <= answer <= q.maximum:
            raise ValueError(f"{answer} is outside the range {q.minimum:g}–{q.maximum:g}")
        if not _on_step(float(answer), q):
            raise ValueError(f"{answer} is not on the scale's step of {q.step:g}")
        return answer
    if q.type == "text":
        if not isinstance(answer, str):
            raise ValueError("must be text")
        if len(answer) > q.max_length:
            raise ValueError(f"is {len(answer)} characters long; at most {q.max_length} are allowed")
        return answer
    if q.type == "segments":
        if not isinstance(answer, list):
            raise ValueError("must be a list of segments {start, end, label}")
        cleaned = []
        for i, seg in enumerate(answer):
            if not isinstance(seg, dict) or set(seg) - {"start", "end", "label"}:
                raise ValueError(f"segment {i} must be an object with start, end and label only")
            start, end, label = seg.get("start"), seg.get("end"), seg.get("label")
            if not (_is_number(start) and _is_number(end)) or start < 0 or end <= start:
                raise ValueError(f"segment {i} needs numbers 0 <= start < end (seconds)")
            if label not in q.labels:
                raise ValueError(f"segment {i} label {label!r} is not one of {list(q.labels)}")
            cleaned.append({"start": start, "end": end, "label": label})
        return sorted(cleaned, key=lambda s: (s["start"], s["end"]))
    raise ValueError(f"unknown question type {q.type}")  # pragma: no cover - parse_questions forbids it


def _check_multi_label(q: Question, answer: Any) -> Any:
    top = INTENSITY_MAX if q.intensity else 1
    if isinstance(answer, dict):
        levels: dict[str, int | None] = {}
        for label, level in answer.items():
            if label not in q.labels:
                raise ValueError(f"{label!r} is not one of the labels {list(q.labels)}")
            if level is not None and (not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= top):
                what = "intensity" if q.intensity else "level (1 chosen, 0 not, null no answer)"
                raise ValueError(f"{what} of {label!r} must be an integer from 0 to {top} or null, got {level!r}")
            levels[label] = level
        ordered = {label: levels[label] for label in q.labels if label in levels}
        if not q.intensity and None not in ordered.values():
            ordered_list: Any = [label for label, level in ordered.items() if level]
            answer_out: Any = ordered_list
        elif not q.intensity:
            answer_out = {label: level for label, level in ordered.items() if level != 0}  # absent = not mentioned
        else:
            answer_out = ordered
        present = any(level for level in ordered.values())
    elif q.intensity and answer == []:
        answer_out, present = {}, False
    elif q.intensity:
        raise ValueError("must map each chosen label to an intensity from 0 to 3")
    elif isinstance(answer, list):
        unknown = [label for label in answer if label not in q.labels]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of the labels {list(q.labels)}")
        if len(set(answer)) != len(answer):
            raise ValueError("lists a label twice")
        answer_out = [label for label in q.labels if label in answer]
        present = bool(answer_out)
    else:
        raise ValueError("must be a list of labels")
    if not present and not q.allow_empty:
        raise ValueError("choose at least one label (this question does not take 'none of these')")
    return answer_out


def multi_label_levels(answer: Any) -> tuple[dict[str, int], frozenset[str]]:
    """(chosen labels with their level, labels left unanswered) of a validated multi-label answer.

    A list chooses its labels at level 1; in a mapping, level 0 is absent and ``null`` unanswered (missing).
    """
    if isinstance(answer, dict):
        return ({str(label): int(level) for label, level in answer.items() if level},
                frozenset(str(label) for label, level in answer.items() if level is None))
    return {str(label): 1 for label in answer or ()}, frozenset()


def is_empty_answer(answer: Any, question: Question | None = None) -> bool:
    """Whether an answer leaves the question unanswered. An empty multi-label answer ([] or {}) is "none of
    these" for a question that allows it; a mapping whose every label is null answers nothing."""
    if isinstance(answer, dict) and answer and all(level is None for level in answer.values()):
        return True
    if question is not None and question.type == "multi_label" and question.allow_empty and answer in ([], {}):
        return False
    return answer is None or answer == "" or answer == [] or answer == {}


def validate_answers(questions: list[Question], value: Any) -> dict[str, Any]:
    """Check answers against the questions; return them normalised or raise SchemaError by key."""
    if not isinstance(value, dict):
        raise SchemaError({"value": "must be an object mapping question keys to answers"})
    by_key = {q.key: q for q in questions}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key in value:
        if key not in by_key:
            errors[str(key)] = f"no such question in this schema (questions: {', '.join(by_key)})"
    for q in questions:
        answer = value.get(q.key)
        if is_empty_answer(answer, q):
            if q.required:
                errors[q.key] = "this question is required"
            continue
        try:
            cleaned[q.key] = _check_answer(q, answer)
        except ValueError as exc:
            errors[q.key] = str(exc)
    if not cleaned and not errors:
        errors["value"] = "answers no question"
    if errors:
        raise SchemaError(errors)
    return cleaned


# --- stored versions ----------------------------------------------------------------------------------------------

_PARSED_QUESTIONS: dict[tuple[int, datetime], list[Question]] = {}
_PARSED_QUESTIONS_MAX = 512


def label_schema_version_questions(version: LabelSchemaVersion) -> list[Question]:
    """Parsed questions of a stored version (stored versions were validated when written).

    A version never changes, so the parse is kept per (id, created_at): every submit needs it.
    """
    if version.pk is None or version.created_at is None:
        return parse_questions(version.questions)
    key = (version.pk, version.created_at)
    parsed = _PARSED_QUESTIONS.get(key)
    if parsed is None:
        if len(_PARSED_QUESTIONS) >= _PARSED_QUESTIONS_MAX:
            _PARSED_QUESTIONS.clear()
        parsed = _PARSED_QUESTIONS[key] = parse_questions(version.questions)
    return parsed


def annotation_value_clean(*, schema_version: LabelSchemaVersion, value: Any, perspective: str = "") -> dict[str, Any]:
    """Validate answers and perspective against a schema version; raise SchemaError naming the field."""
    cleaned = validate_answers(label_schema_version_questions(schema_version), value)
    allowed = schema_version.perspectives or []
    if perspective and perspective not in allowed:
        raise SchemaError({"perspective": f"{perspective!r} is not a perspective of this schema ({allowed or 'none'})"})
    return cleaned
