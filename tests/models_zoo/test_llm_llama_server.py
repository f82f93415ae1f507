"""The LLM client against a real llama.cpp server running Gemma 3 270M (tests/fixtures/llm_server.py).

The tiny model's labels are poor; what these tests hold is the protocol: every answer parses and stays in
the label set because the schema constrains generation, CoTR's one call carries the translation, tokens are
counted. llama-cpp-python's server takes the schema as {"type": "json_object", "schema": ...}.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from models_zoo.llm import (
    COTR,
    AnswerSchema,
    FewShotExample,
    LLMBusyError,
    LLMClient,
    LLMEndpoint,
    LLMRequestError,
    PromptItem,
    PromptTemplate,
    render_prompt,
)
from tests.fixtures.llm_server import LlamaServer

pytestmark = pytest.mark.slow

LABELS = ["joy", "sadness", "anger", "fear", "neutral"]


def gemma(server: LlamaServer, **overrides: object) -> LLMEndpoint:
    settings: dict[str, object] = {
        "base_url": server.base_url, "model": server.model, "api_key": server.api_key, "name": "gemma",
        "structured_output": "json_object", "timeout_s": 120, "max_retries": 1,
        "price_input_per_1k": Decimal("0.10"), "price_output_per_1k": Decimal("0.40"),
    }
    return LLMEndpoint(**(settings | overrides))  # type: ignore[arg-type]


def test_cotr_translates_reasons_and_labels_within_the_set_in_one_call(llama_server: LlamaServer) -> None:
    schema = AnswerSchema.from_questions([{"key": "emotion", "type": "single_choice", "labels": LABELS}])
    rendered = render_prompt(COTR, PromptItem("मला आज खूप आनंद झाला.", language="Marathi"), schema)
    with LLMClient(gemma(llama_server)) as client:
        result = client.complete(rendered.messages, rendered.schema, max_tokens=128, seed=1)
    assert result.answer.labels["emotion"] in LABELS
    assert isinstance(result.answer.translation, str) and result.answer.translation
    assert isinstance(result.answer.rationale, str)
    assert list(json.loads(result.raw)) == ["translation", "rationale", "labels"]  # in the order generated
    assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.usage_reported
    assert result.cost == (Decimal(result.prompt_tokens) * Decimal("0.10")
                           + Decimal(result.completion_tokens) * Decimal("0.40")) / 1000
    assert result.model == llama_server.model and result.attempts == 1


def test_multi_label_intensity_and_numeric_answers_stay_in_the_schema(llama_server: LlamaServer) -> None:
    schema = AnswerSchema.from_questions([
        {"key": "emotions", "type": "multi_label", "labels": LABELS[:4]},
        {"key": "intensity", "type": "multi_label", "labels": ["joy", "anger"], "intensity": True},
        {"key": "valence", "type": "numeric", "min": 1, "max": 5, "step": 0.5},
    ])
    # Few-shot and labels only (no rationale), to keep the tiny model's answer short.
    template = PromptTemplate(name="few-shot labels", reason=False,
                              user="Label the emotions.\n$examples\n\nSentence ($language): $text\n$questions")
    example = FewShotExample("I am so angry!", {"emotions": ["anger"], "intensity": {"anger": 3}, "valence": 1.5},
                             language="English")
    rendered = render_prompt(template, PromptItem("I won the prize, I am so happy!", language="English"), schema,
                             [example])
    with LLMClient(gemma(llama_server)) as client:
        result = client.complete(rendered.messages, rendered.schema, max_tokens=96, seed=1)
    labels = result.answer.labels
    assert set(labels) == {"emotions", "intensity", "valence"}
    assert set(labels["emotions"]) <= set(LABELS[:4])
    assert set(labels["intensity"]) <= {"joy", "anger"} and all(1 <= v <= 3 for v in labels["intensity"].values())
    assert labels["valence"] in [1 + 0.5 * i for i in range(9)]
    assert result.answer.translation is None and result.answer.rationale is None
    assert result.prompt_tokens > 0 and result.completion_tokens > 0


def test_a_wrong_api_key_is_a_permanent_error(llama_server: LlamaServer) -> None:
    schema = AnswerSchema.from_questions([{"key": "emotion", "type": "single_choice", "labels": LABELS}])
    with LLMClient(gemma(llama_server, api_key="wrong")) as client, pytest.raises(LLMRequestError) as caught:
        client.complete([{"role": "user", "content": "hi"}], schema, max_tokens=8)
    assert caught.value.status == 401 and caught.value.retryable is False and "check the API key" in str(caught.value)


def test_llama_cpp_python_refuses_the_openai_json_schema_form(llama_server: LlamaServer) -> None:
    # Why LLMEndpoint.structured_output exists: this server knows only "text" and "json_object". It answers
    # the OpenAI form with HTTP 500 rather than a 4xx, so the client cannot tell it from a crash and treats it
    # as retryable; the server's own words, which name the cause, reach the caller.
    schema = AnswerSchema.from_questions([{"key": "emotion", "type": "single_choice", "labels": LABELS}])
    with LLMClient(gemma(llama_server, structured_output="json_schema", max_retries=0)) as client:
        with pytest.raises(LLMBusyError) as caught:
            client.complete([{"role": "user", "content": "hi"}], schema, max_tokens=8)
    assert caught.value.status == 500
    assert "Input should be 'text' or 'json_object'" in caught.value.message
