"""Prompt templates: rendered safely whatever the item says, versioned by what they send, checked early."""

from __future__ import annotations

import pytest

from models_zoo.llm import (
    BUILTIN_TEMPLATES,
    COTR,
    DIRECT,
    FEW_SHOT,
    AnswerSchema,
    FewShotExample,
    PromptItem,
    PromptTemplate,
    TemplateError,
    preview,
    render_prompt,
)
from models_zoo.llm.prompts import context_block

SCHEMA = AnswerSchema.from_questions([{"key": "emotion", "type": "single_choice", "labels": ["joy", "anger"]}])


def test_cotr_asks_for_translation_then_rationale_then_labels_in_one_message() -> None:
    rendered = render_prompt(COTR, PromptItem("मला खूप आनंद झाला.", language="Marathi"), SCHEMA)
    assert len(rendered.messages) == 1 and rendered.messages[0]["role"] == "user"
    text = rendered.messages[0]["content"]
    assert "Sentence (Marathi): मला खूप आनंद झाला." in text
    assert text.index("translate the sentence into English") < text.index("rationale") < text.index("- emotion")
    assert "- emotion: exactly one of: joy, anger" in text
    assert list(rendered.schema.json_schema()["properties"]) == ["translation", "rationale", "labels"]
    assert rendered.template_name == "cotr" and rendered.template_version == COTR.version


def test_direct_asks_for_no_translation() -> None:
    rendered = render_prompt(DIRECT, PromptItem("I am furious", language="English"), SCHEMA)
    assert "translat" not in rendered.messages[0]["content"].lower()
    assert list(rendered.schema.json_schema()["properties"]) == ["rationale", "labels"]


def test_item_text_with_braces_dollars_and_placeholders_is_just_text() -> None:
    hostile = "{text} {0} ${questions} $$ %s {{}} \\n $"
    rendered = render_prompt(DIRECT, PromptItem(hostile, language="{language}"), SCHEMA)
    content = rendered.messages[0]["content"]
    assert f"Sentence ({{language}}): {hostile}\n" in content
    assert content.count("- emotion: exactly one of") == 1  # ${questions} in the item was not expanded


def test_version_follows_content_not_name() -> None:
    renamed = PromptTemplate(name="my copy", user=COTR.user, translate=True, reason=True)
    assert renamed.version == COTR.version
    edited = PromptTemplate(name="cotr", user=COTR.user + " Be brief.", translate=True, reason=True)
    assert edited.version != COTR.version
    assert PromptTemplate(name="x", user=COTR.user, translate=False).version != COTR.version
    assert len({t.version for t in BUILTIN_TEMPLATES.values()}) == 3


@pytest.mark.parametrize(("user", "system", "message"), [
    ("Label $text for $project", "", r"unknown placeholders \['\$project'\]"),
    ("Label this: $text costs 5$", "", "write \\$\\$ for a dollar sign"),
    ("Label this sentence please", "", "must contain \\$text"),
    ("Label $text", "You are $role", r"unknown placeholders \['\$role'\]"),
])
def test_bad_templates_are_refused_when_made(user: str, system: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        PromptTemplate(name="bad", user=user, system=system)


def test_dollar_signs_can_be_written_and_system_part_is_sent_when_given() -> None:
    template = PromptTemplate(name="t", system="Costs $$5 ($language).", user="$text\n$questions")
    rendered = render_prompt(template, PromptItem("hi", language="Hindi"), SCHEMA)
    assert rendered.messages[0] == {"role": "system", "content": "Costs $5 (Hindi)."}
    assert rendered.messages[1]["content"].startswith("hi\n- emotion")


def test_few_shot_shows_the_callers_examples_checked_against_the_schema() -> None:
    examples = [FewShotExample("मी रागावलो आहे", {"emotion": "anger"}, language="Marathi"),
                FewShotExample("I won!", {"emotion": "joy"}, language="English")]
    rendered = render_prompt(FEW_SHOT, PromptItem("आज छान दिवस आहे", language="Marathi"), SCHEMA, examples)
    text = rendered.messages[0]["content"]
    assert 'Example 1\nSentence (Marathi): मी रागावलो आहे\nAnswer: {"labels": {"emotion": "anger"}}' in text
    assert 'Example 2\nSentence (English): I won!\nAnswer: {"labels": {"emotion": "joy"}}' in text
    assert text.index("Example 2") < text.index("आज छान दिवस आहे")
    with pytest.raises(TemplateError, match="give at least one"):
        render_prompt(FEW_SHOT, PromptItem("x"), SCHEMA)
    with pytest.raises(TemplateError, match="example 1: emotion: 'love' is not one of the labels"):
        render_prompt(FEW_SHOT, PromptItem("x"), SCHEMA, [FewShotExample("y", {"emotion": "love"})])


def test_cotr_examples_may_carry_their_translation() -> None:
    template = PromptTemplate(name="cotr-few", user="$examples\n$text", translate=True)
    rendered = render_prompt(template, PromptItem("x"), SCHEMA,
                             [FewShotExample("मी रागावलो", {"emotion": "anger"}, translation="I am angry")])
    assert '{"translation": "I am angry", "labels": {"emotion": "anger"}}' in rendered.messages[0]["content"]


def test_preview_renders_items_and_shows_the_answer_schema() -> None:
    items = [PromptItem(f"sentence {i}", language="Marathi", context=context_block([("A", "hello")]))
             for i in range(5)]
    shown = preview(COTR, items, SCHEMA)
    assert len(shown) == 5
    text = shown[3].as_text()
    assert text.startswith("[user]\nYou label")
    assert "Conversation so far:\nA: hello\n\nSentence (Marathi): sentence 3" in text
    assert '[answer schema]\n{\n  "type": "object"' in text and '"enum": [\n' in text
