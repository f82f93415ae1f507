"""Prompt templates, versioned by content, and their rendering into chat messages.

A template is plain text with ``$name`` placeholders (Python's ``string.Template``): the values are put in
once and never read as template text, so an item's braces, dollars or quotes are just text. Placeholders:

- ``$text``: the item to label (required in the user part);
- ``$language``: the item's language, as a name ("Marathi");
- ``$context``: the conversation around the item, or "" when there is none;
- ``$questions``: one line per question saying what to answer (``AnswerSchema.describe``);
- ``$examples``: the caller's examples with their labels (few-shot); a template that uses it needs examples.

``${name}`` is the same placeholder where letters follow it; ``$$`` writes a literal dollar sign. A template's ``version`` is a hash of everything that shapes the
request (texts and answer fields, not its name), so a result can say exactly which prompt produced it.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models_zoo.llm.answers import AnswerSchema
from models_zoo.llm.errors import TemplateError

PLACEHOLDERS = frozenset({"text", "language", "context", "questions", "examples"})


@dataclass(frozen=True)
class PromptItem:
    text: str
    language: str = "the source language"  # a name the model understands: "Marathi", not "mr"
    context: str = ""


@dataclass(frozen=True)
class FewShotExample:
    text: str
    labels: Mapping[str, Any]  # answers in the schema's form, e.g. from human gold
    language: str = "the source language"
    translation: str = ""  # shown only by templates that translate, when given


def _placeholders(part: str, text: str) -> set[str]:
    template = string.Template(text)
    if not template.is_valid():
        raise TemplateError(f"the {part} part has a '$' that is not a placeholder; write $$ for a dollar sign")
    names = set(template.get_identifiers())
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        raise TemplateError(f"the {part} part uses unknown placeholders {['$' + n for n in unknown]}; "
                            f"known: {sorted('$' + n for n in PLACEHOLDERS)}")
    return names


@dataclass(frozen=True)
class PromptTemplate:
    """``translate``: the answer starts with an English translation (Chain-of-Translation); ``reason``: then a
    short rationale; the labels always come last. ``system`` is optional: some chat formats (Gemma's) drop
    system messages, so the built-in templates say everything in the user message."""

    name: str
    user: str
    system: str = ""
    translate: bool = False
    reason: bool = True

    def __post_init__(self) -> None:
        _placeholders("system", self.system)
        if "text" not in _placeholders("user", self.user):
            raise TemplateError("the user part must contain $text, where the item goes")

    @property
    def version(self) -> str:
        content = json.dumps({"system": self.system, "user": self.user, "translate": self.translate,
                              "reason": self.reason}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(content.encode()).hexdigest()[:16]

    @property
    def uses_examples(self) -> bool:
        return "examples" in _placeholders("user", self.user) | _placeholders("system", self.system)

    def answer_schema(self, schema: AnswerSchema) -> AnswerSchema:
        return schema.with_fields(translation=self.translate, rationale=self.reason)


@dataclass(frozen=True)
class RenderedPrompt:
    messages: tuple[dict[str, str], ...]
    schema: AnswerSchema  # with the template's answer fields
    template_name: str
    template_version: str

    def as_text(self) -> str:
        """The prompt as a person reads it in a preview, followed by the answer's JSON schema."""
        parts = [f"[{m['role']}]\n{m['content']}" for m in self.messages]
        parts.append("[answer schema]\n" + json.dumps(self.schema.json_schema(), ensure_ascii=False, indent=2))
        return "\n\n".join(parts)


def _examples_block(template: PromptTemplate, schema: AnswerSchema, examples: Sequence[FewShotExample]) -> str:
    blocks = []
    for number, example in enumerate(examples, 1):
        try:
            labels = schema.check_labels(dict(example.labels))
        except ValueError as exc:
            raise TemplateError(f"example {number}: {exc}") from None
        answer: dict[str, Any] = {}
        if template.translate and example.translation:
            answer["translation"] = example.translation
        answer["labels"] = labels
        blocks.append(f"Example {number}\nSentence ({example.language}): {example.text}\n"
                      f"Answer: {json.dumps(answer, ensure_ascii=False)}")
    return "\n\n".join(blocks)


def render_prompt(template: PromptTemplate, item: PromptItem, schema: AnswerSchema,
                  examples: Sequence[FewShotExample] = ()) -> RenderedPrompt:
    """The chat messages for one item; raise TemplateError when the template cannot be filled."""
    if template.uses_examples and not examples:
        raise TemplateError(f"template {template.name!r} shows examples ($examples): give at least one")
    full_schema = template.answer_schema(schema)
    values = {
        "text": item.text,
        "language": item.language,
        "context": item.context,
        "questions": full_schema.describe(),
        "examples": _examples_block(template, schema, examples) if template.uses_examples else "",
    }
    messages = []
    if template.system.strip():
        messages.append({"role": "system", "content": string.Template(template.system).substitute(values)})
    messages.append({"role": "user", "content": string.Template(template.user).substitute(values)})
    return RenderedPrompt(tuple(messages), full_schema, template.name, template.version)


def preview(template: PromptTemplate, items: Sequence[PromptItem], schema: AnswerSchema,
            examples: Sequence[FewShotExample] = ()) -> list[RenderedPrompt]:
    """Render a few items (the lead's preview before a run) without calling any model."""
    return [render_prompt(template, item, schema, examples) for item in items]


_ANSWER_RULES = "Answer with JSON only. Use only the labels listed, spelled exactly as written."

COTR = PromptTemplate(
    name="cotr",
    translate=True,
    reason=True,
    user=(
        "You label the emotions expressed in a sentence.\n\n"
        "${context}"
        "Sentence ($language): $text\n\n"
        "First translate the sentence into English (\"translation\"). Then say in one short sentence which "
        "emotions it expresses and why (\"rationale\"). Then give the labels (\"labels\"):\n"
        "$questions\n\n" + _ANSWER_RULES
    ),
)

DIRECT = PromptTemplate(
    name="direct",
    translate=False,
    reason=True,
    user=(
        "You label the emotions expressed in a sentence.\n\n"
        "${context}"
        "Sentence ($language): $text\n\n"
        "Say in one short sentence which emotions it expresses and why (\"rationale\"). "
        "Then give the labels (\"labels\"):\n"
        "$questions\n\n" + _ANSWER_RULES
    ),
)

FEW_SHOT = PromptTemplate(
    name="few_shot",
    translate=False,
    reason=True,
    user=(
        "You label the emotions expressed in a sentence. Labelled examples:\n\n"
        "$examples\n\n"
        "Now this one.\n"
        "${context}"
        "Sentence ($language): $text\n\n"
        "Say in one short sentence which emotions it expresses and why (\"rationale\"). "
        "Then give the labels (\"labels\"):\n"
        "$questions\n\n" + _ANSWER_RULES
    ),
)

BUILTIN_TEMPLATES = {t.name: t for t in (COTR, DIRECT, FEW_SHOT)}


def context_block(turns: Sequence[tuple[str, str]]) -> str:
    """Format preceding conversation turns (speaker, text) for ``PromptItem.context``."""
    if not turns:
        return ""
    lines = "\n".join(f"{speaker}: {text}" for speaker, text in turns)
    return f"Conversation so far:\n{lines}\n\n"
