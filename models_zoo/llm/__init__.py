"""LLM labelling over OpenAI-compatible endpoints: answer schemas, prompt templates, a rate-limited client,
and the combination of several LLMs' labels. Plain Python (``openai``), no Django; see README.md here.

- ``answers``: ``AnswerSchema`` (label-schema questions -> JSON schema for structured output, and validation)
- ``prompts``: ``PromptTemplate`` (CoTR, direct, few-shot; versioned by content), ``render_prompt``, ``preview``
- ``client``: ``LLMEndpoint``, ``LLMClient``/``client_for`` (limits, retries, tokens and cost per call)
- ``combine``: ``combine_answers`` (union, intersection, majority per question)
- ``errors``: what can go wrong, each error retryable or permanent
"""

from models_zoo.llm.answers import AnswerSchema, LabelQuestion, ParsedAnswer
from models_zoo.llm.client import LLMClient, LLMEndpoint, LLMResult, client_for
from models_zoo.llm.combine import combine_answers
from models_zoo.llm.errors import (
    LLMAnswerError,
    LLMBusyError,
    LLMConnectionError,
    LLMRequestError,
    LLMTimeoutError,
    TemplateError,
)
from models_zoo.llm.prompts import (
    BUILTIN_TEMPLATES,
    COTR,
    DIRECT,
    FEW_SHOT,
    FewShotExample,
    PromptItem,
    PromptTemplate,
    RenderedPrompt,
    preview,
    render_prompt,
)

__all__ = [
    "BUILTIN_TEMPLATES", "COTR", "DIRECT", "FEW_SHOT", "AnswerSchema", "FewShotExample", "LLMAnswerError",
    "LLMBusyError", "LLMClient", "LLMConnectionError", "LLMEndpoint", "LLMRequestError", "LLMResult",
    "LLMTimeoutError", "LabelQuestion", "ParsedAnswer", "PromptItem", "PromptTemplate", "RenderedPrompt",
    "TemplateError", "client_for", "combine_answers", "preview", "render_prompt",
]
