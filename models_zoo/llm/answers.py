"""The answer an LLM must give: a JSON schema built from a label schema's questions, and its validation.

The questions come in the form Sentio's label schemas store them (``annotation/schema.py``), as plain
dicts, so the Django side passes them through unchanged::

    {"key": "emotion", "type": "single_choice", "labels": ["joy", "anger"]}
    {"key": "emotions", "type": "multi_label", "labels": [...], "intensity": true}   # 0-3 per label
    {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.1}

The LLM answers ``{"translation": ..., "rationale": ..., "labels": {<key>: <answer>, ...}}`` in that order
(translation and rationale only when the template asks for them): the order is the order of generation,
so a Chain-of-Translation answer translates first, reasons next and labels last. The labels sit in their
own object so a question key can never collide with ``translation`` or ``rationale``.

The schema constrains generation on servers that support it (labels are enums, so a label outside the set
cannot come back), and ``AnswerSchema.parse`` checks every answer all the same: some servers fall back to
plain JSON when they cannot compile a schema, and hosted APIs ignore keywords they do not support.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models_zoo.llm.errors import LLMAnswerError, TemplateError

INTENSITY_LEVELS = (0, 1, 2, 3)
# A numeric scale with at most this many steps becomes an enum, which constrained decoders enforce exactly;
# beyond it the schema says minimum/maximum (not every server enforces those) and parse() checks the range.
MAX_ENUMERATED_STEPS = 200
LLM_QUESTION_TYPES = ("single_choice", "multi_label", "numeric")


@dataclass(frozen=True)
class LabelQuestion:
    """One question the LLM answers."""

    key: str
    type: str
    labels: tuple[str, ...] = ()
    intensity: bool = False
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    title: str = ""

    def grid(self) -> tuple[float, ...] | None:
        """The allowed values of a numeric question with a step, or None when there are too many or no step."""
        if self.type != "numeric" or self.step is None:
            return None
        assert self.minimum is not None and self.maximum is not None
        count = math.floor((self.maximum - self.minimum) / self.step + 1e-9)
        if count > MAX_ENUMERATED_STEPS:
            return None
        return tuple(_tidy(self.minimum + i * self.step) for i in range(count + 1))

    def json_schema(self) -> dict[str, Any]:
        if self.type == "single_choice":
            return {"type": "string", "enum": list(self.labels)}
        if self.type == "multi_label" and self.intensity:
            return {
                "type": "object",
                "properties": {label: {"type": "integer", "enum": list(INTENSITY_LEVELS)} for label in self.labels},
                "required": list(self.labels),
                "additionalProperties": False,
            }
        if self.type == "multi_label":
            return {"type": "array", "items": {"type": "string", "enum": list(self.labels)}}
        grid = self.grid()
        if grid is not None:
            return {"type": "number", "enum": list(grid)}
        return {"type": "number", "minimum": self.minimum, "maximum": self.maximum}

    def describe(self) -> str:
        """One line for the prompt saying what to answer."""
        name = f"{self.key} ({self.title})" if self.title else self.key
        labels = ", ".join(self.labels)
        if self.type == "single_choice":
            return f"- {name}: exactly one of: {labels}"
        if self.type == "multi_label" and self.intensity:
            return f"- {name}: for every label an intensity from 0 (absent) to 3 (strong): {labels}"
        if self.type == "multi_label":
            return f"- {name}: every label that applies (none is allowed), from: {labels}"
        step = f" in steps of {self.step:g}" if self.step is not None else ""
        return f"- {name}: a number from {self.minimum:g} to {self.maximum:g}{step}"

    def check(self, value: Any) -> Any:
        """Return the answer in the form Sentio's annotations use, or raise ValueError saying why not."""
        if self.type == "single_choice":
            if not isinstance(value, str) or value not in self.labels:
                raise ValueError(f"{value!r} is not one of the labels {list(self.labels)}")
            return value
        if self.type == "multi_label" and self.intensity:
            if not isinstance(value, dict):
                raise ValueError("must map each label to an intensity from 0 to 3")
            unknown = sorted(set(value) - set(self.labels))
            if unknown:
                raise ValueError(f"{unknown[0]!r} is not one of the labels {list(self.labels)}")
            for label, level in value.items():
                if not isinstance(level, int) or isinstance(level, bool) or level not in INTENSITY_LEVELS:
                    raise ValueError(f"intensity of {label!r} must be an integer from 0 to 3, got {level!r}")
            # Sentio's annotations list the labels present; 0 means absent.
            return {label: value[label] for label in self.labels if value.get(label, 0) > 0}
        if self.type == "multi_label":
            if not isinstance(value, list):
                raise ValueError("must be a list of labels")
            unknown = [label for label in value if not isinstance(label, str) or label not in self.labels]
            if unknown:
                raise ValueError(f"{unknown[0]!r} is not one of the labels {list(self.labels)}")
            return [label for label in self.labels if label in value]  # schema order, each label once
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"must be a number, got {value!r}")
        assert self.minimum is not None and self.maximum is not None
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"{value} is outside the range {self.minimum:g}-{self.maximum:g}")
        if self.step is not None:  # snap to the scale's step, as a human's slider would
            return _tidy(self.minimum + round((value - self.minimum) / self.step) * self.step)
        return value


def _tidy(value: float) -> float:
    """Round away float noise (1.1 + 0.1 * 3 = 1.4000000000000001) so grid values print as people write them."""
    return round(value, 10)


def _number(raw: Mapping[str, Any], name: str, where: str) -> float:
    value = raw.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise TemplateError(f"{where}: '{name}' must be a number")
    return float(value)


def question_from_dict(raw: Mapping[str, Any]) -> LabelQuestion:
    """Read one question in label-schema form; raise TemplateError naming the question and the field."""
    key = raw.get("key")
    where = f"question {key!r}"
    if not isinstance(key, str) or not key:
        raise TemplateError("a question needs a non-empty 'key'")
    qtype = raw.get("type")
    if qtype not in LLM_QUESTION_TYPES:
        raise TemplateError(f"{where}: an LLM answers only {', '.join(LLM_QUESTION_TYPES)} questions, not {qtype!r}")
    title = raw.get("title") or ""
    if qtype == "numeric":
        lo, hi = _number(raw, "min", where), _number(raw, "max", where)
        step = None if raw.get("step") is None else _number(raw, "step", where)
        if lo >= hi or (step is not None and not 0 < step <= hi - lo):
            raise TemplateError(f"{where}: needs min < max and 0 < step <= max - min")
        return LabelQuestion(key, qtype, minimum=lo, maximum=hi, step=step, title=title)
    labels = raw.get("labels")
    if not isinstance(labels, (list, tuple)) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise TemplateError(f"{where}: 'labels' must be a non-empty list of label names")
    if len(set(labels)) != len(labels):
        raise TemplateError(f"{where}: labels must be unique")
    return LabelQuestion(key, qtype, labels=tuple(labels), intensity=bool(raw.get("intensity", False)), title=title)


@dataclass(frozen=True)
class ParsedAnswer:
    labels: dict[str, Any]  # question key -> answer, in the form Sentio's annotations use
    translation: str | None = None
    rationale: str | None = None


@dataclass(frozen=True)
class AnswerSchema:
    """The questions an LLM answers, and whether its answer carries an English translation and a rationale.

    ``max_text_chars`` caps the translation and the rationale (JSON Schema ``maxLength``) so a small model
    cannot ramble until ``max_tokens``. Off by default: llama.cpp compiles it into a grammar that slows
    generation two- to three-fold, and some hosted APIs refuse the keyword; ``max_tokens`` bounds the
    answer anyway (a cut answer raises ``LLMAnswerError``).
    """

    questions: tuple[LabelQuestion, ...]
    translation: bool = False
    rationale: bool = False
    max_text_chars: int | None = None
    skipped: tuple[str, ...] = field(default=(), compare=False)  # questions an LLM cannot answer, left out

    @classmethod
    def from_questions(cls, questions: Iterable[Mapping[str, Any]], *, translation: bool = False,
                       rationale: bool = False, max_text_chars: int | None = None) -> AnswerSchema:
        """Build from label-schema questions; text and segment questions are left out and named in ``skipped``."""
        chosen, skipped = [], []
        for raw in questions:
            if raw.get("type") in LLM_QUESTION_TYPES:
                chosen.append(question_from_dict(raw))
            else:
                skipped.append(str(raw.get("key")))
        return cls.build(chosen, translation=translation, rationale=rationale, max_text_chars=max_text_chars,
                         skipped=skipped)

    @classmethod
    def build(cls, questions: Sequence[LabelQuestion], *, translation: bool = False, rationale: bool = False,
              max_text_chars: int | None = None, skipped: Sequence[str] = ()) -> AnswerSchema:
        if not questions:
            raise TemplateError("the schema has no question an LLM can answer (single choice, multi-label, numeric)")
        keys = [q.key for q in questions]
        if len(set(keys)) != len(keys):
            raise TemplateError(f"question keys repeat: {keys}")
        return cls(tuple(questions), translation, rationale, max_text_chars, tuple(skipped))

    def with_fields(self, *, translation: bool, rationale: bool) -> AnswerSchema:
        return AnswerSchema(self.questions, translation, rationale, self.max_text_chars, self.skipped)

    def _text_schema(self) -> dict[str, Any]:
        return {"type": "string"} if self.max_text_chars is None else {"type": "string", "maxLength": self.max_text_chars}

    def json_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        if self.translation:
            properties["translation"] = self._text_schema()
        if self.rationale:
            properties["rationale"] = self._text_schema()
        properties["labels"] = {
            "type": "object",
            "properties": {q.key: q.json_schema() for q in self.questions},
            "required": [q.key for q in self.questions],
            "additionalProperties": False,
        }
        return {"type": "object", "properties": properties, "required": list(properties),
                "additionalProperties": False}

    def describe(self) -> str:
        """The questions as lines for the prompt (the template's ``$questions``)."""
        return "\n".join(q.describe() for q in self.questions)

    def check_labels(self, labels: Any) -> dict[str, Any]:
        """Validate a ``labels`` object (an answer's, or a few-shot example's); raise ValueError naming the key."""
        if not isinstance(labels, dict):
            raise ValueError("'labels' must be an object mapping question keys to answers")
        by_key = {q.key: q for q in self.questions}
        unknown = sorted(set(labels) - set(by_key))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a question of the schema ({', '.join(by_key)})")
        cleaned = {}
        for q in self.questions:
            if q.key not in labels:
                raise ValueError(f"no answer to {q.key!r}")
            try:
                cleaned[q.key] = q.check(labels[q.key])
            except ValueError as exc:
                raise ValueError(f"{q.key}: {exc}") from None
        return cleaned

    def parse(self, content: str) -> ParsedAnswer:
        """Read an LLM's answer; raise LLMAnswerError (permanent) saying what is wrong with it."""
        try:
            # strict=False admits raw newlines and tabs inside strings, which small models write in a rationale
            data = json.loads(content, strict=False)
        except (TypeError, ValueError) as exc:
            raise LLMAnswerError(f"not JSON ({exc})", raw=content) from None
        if not isinstance(data, dict):
            raise LLMAnswerError("not a JSON object", raw=content)
        texts: dict[str, str | None] = {"translation": None, "rationale": None}
        for name, wanted in (("translation", self.translation), ("rationale", self.rationale)):
            if not wanted:
                continue
            value = data.get(name)
            if not isinstance(value, str):
                raise LLMAnswerError(f"{name!r} must be a string", raw=content)
            texts[name] = value.strip()
        try:
            labels = self.check_labels(data.get("labels"))
        except ValueError as exc:
            raise LLMAnswerError(str(exc), raw=content) from None
        return ParsedAnswer(labels=labels, translation=texts["translation"], rationale=texts["rationale"])
