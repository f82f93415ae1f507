"""A client for OpenAI-compatible chat endpoints (vLLM, llama.cpp, Ollama, TGI, hosted APIs) that labels items.

It sends one chat completion per item with a JSON schema for the answer, and returns the parsed, validated
answer with its token counts and cost. The ``openai`` package does the HTTP; this module adds what labelling
thousands of items needs: per-endpoint limits shared by threads, retries that respect those limits, and
errors that say whether a retry could help.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
import openai

from models_zoo.llm.answers import AnswerSchema, ParsedAnswer
from models_zoo.llm.errors import (
    LLMAnswerError,
    LLMBusyError,
    LLMConnectionError,
    LLMRequestError,
    LLMTimeoutError,
)
from models_zoo.llm.limits import EndpointLimits

# How the JSON schema travels: "json_schema" is the OpenAI form (vLLM, llama.cpp's llama-server, Ollama,
# hosted APIs); "json_object" puts the schema in {"type": "json_object", "schema": ...}, the form
# llama-cpp-python's server (and Anyscale-style APIs) understand.
StructuredOutput = Literal["json_schema", "json_object"]
RETRYABLE_STATUSES = frozenset({408, 409, 429})
_THOUSAND = Decimal(1000)


@dataclass(frozen=True)
class LLMEndpoint:
    """Where and how to call one model. Prices are per 1,000 tokens, in whatever currency the caller uses."""

    base_url: str  # up to and including /v1
    model: str
    api_key: str = field(default="", repr=False)
    name: str = ""
    structured_output: StructuredOutput = "json_schema"
    timeout_s: float = 60.0
    max_retries: int = 4
    max_concurrency: int = 4
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    rate_limit_burst_s: float = 10.0  # the rate limits let this many seconds' worth go at once
    price_input_per_1k: Decimal = Decimal(0)
    price_output_per_1k: Decimal = Decimal(0)
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # A server asking for a longer wait than this is not waited for here: the error goes to the caller
    # (a Celery task can retry with that countdown instead of holding a worker thread).
    max_retry_after_s: float = 120.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        # str() first: a float price such as 0.1 would otherwise bring its binary expansion along
        return (Decimal(prompt_tokens) * Decimal(str(self.price_input_per_1k))
                + Decimal(completion_tokens) * Decimal(str(self.price_output_per_1k))) / _THOUSAND


@dataclass(frozen=True)
class LLMResult:
    answer: ParsedAnswer
    raw: str  # the message content as the server sent it
    model: str  # the model the server says answered
    prompt_tokens: int
    completion_tokens: int
    usage_reported: bool  # False when the server sent no usage (the counts are then 0)
    cost: Decimal
    latency_s: float  # of the attempt that succeeded
    attempts: int
    waited_s: float  # waiting for the endpoint's limits and between retries
    finish_reason: str

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """A rough count before the call, for the tokens-per-minute limit; the server's count settles it after.

    UTF-8 bytes / 4: about right for English, and for Devanagari (3 bytes a character) close to what
    multilingual tokenizers spend."""
    return sum(len(str(m.get("content", "")).encode()) for m in messages) // 4 + 4 * len(messages)


def _retry_after(response: Any) -> float | None:
    """The wait the server asked for: ``retry-after-ms``, or ``retry-after`` in seconds or as an HTTP date."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _classify(exc: openai.OpenAIError, endpoint: LLMEndpoint) -> LLMTimeoutError | LLMConnectionError | LLMBusyError | LLMRequestError:
    where = endpoint.name or endpoint.base_url
    if isinstance(exc, openai.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return LLMTimeoutError(f"{where}: no answer within {endpoint.timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return LLMConnectionError(f"{where}: cannot connect ({exc.__cause__ or exc})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        # openai puts the server's {"error": {...}} (or whatever the body was) in exc.body
        body = exc.body
        detail = body.get("message") or body.get("detail") if isinstance(body, dict) else body
        detail = str(detail or exc.response.reason_phrase)[:500]
        if status in RETRYABLE_STATUSES or status >= 500:
            return LLMBusyError(f"{where}: HTTP {status}: {detail}", status=status,
                                retry_after=_retry_after(exc.response))
        hint = " (check the API key)" if status in (401, 403) else ""
        return LLMRequestError(f"{where}: HTTP {status}{hint}: {detail}", status=status)
    return LLMRequestError(f"{where}: {exc}", status=0)


class LLMClient:
    """Thread-safe: share one client per endpoint among a worker's threads (``client_for`` does), so they
    share its limits."""

    def __init__(self, endpoint: LLMEndpoint, *, http_client: httpx.Client | None = None) -> None:
        """``http_client``: the caller's own transport (Sentio passes its SSRF-guarded client)."""
        self.endpoint = endpoint
        # Retries are ours (max_retries=0 here) so that every attempt passes the endpoint's limits again
        # and a backoff sleep does not hold a concurrency slot.
        self._openai = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key or "no-key",
                                     timeout=endpoint.timeout_s, max_retries=0,
                                     # openai 3.x types its client as httpx2's; httpx's Client serves it the same
                                     http_client=http_client)  # type: ignore[arg-type]
        self.limits = EndpointLimits(max_concurrency=endpoint.max_concurrency,
                                     requests_per_minute=endpoint.requests_per_minute,
                                     tokens_per_minute=endpoint.tokens_per_minute,
                                     burst_s=endpoint.rate_limit_burst_s)

    def close(self) -> None:
        self._openai.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _response_format(self, schema: AnswerSchema) -> dict[str, Any]:
        if self.endpoint.structured_output == "json_object":
            return {"type": "json_object", "schema": schema.json_schema()}
        return {"type": "json_schema",
                "json_schema": {"name": "labels", "schema": schema.json_schema(), "strict": True}}

    def _backoff(self, attempt: int, error: LLMBusyError | LLMTimeoutError | LLMConnectionError) -> float:
        asked = error.retry_after if isinstance(error, LLMBusyError) else None
        if asked is not None:
            return asked
        ceiling = min(self.endpoint.backoff_max_s, self.endpoint.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter, so threads do not retry in step

    def complete(self, messages: Sequence[Mapping[str, Any]], schema: AnswerSchema, *, max_tokens: int,
                 temperature: float = 0.0, seed: int | None = None) -> LLMResult:
        """Ask for one answer; raise an ``LLM*Error`` (see ``models_zoo.llm.errors``) when none comes."""
        request: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "response_format": self._response_format(schema),
        }
        if seed is not None:
            request["seed"] = seed
        estimated = estimate_tokens(messages) + max_tokens
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            with self.limits.permit(estimated) as permit:
                waited += permit.waited_s
                started = time.monotonic()
                try:
                    response = self._openai.chat.completions.create(**request)
                except openai.OpenAIError as exc:
                    error = _classify(exc, self.endpoint)  # its token estimate stays spent: the server may count it
                else:
                    latency = time.monotonic() - started
                    usage = response.usage
                    prompt_tokens = usage.prompt_tokens if usage else 0
                    completion_tokens = usage.completion_tokens if usage else 0
                    permit.settle(prompt_tokens + completion_tokens if usage else estimated)
                    break
            if isinstance(error, LLMRequestError) or attempt > self.endpoint.max_retries:
                raise error
            delay = self._backoff(attempt, error)
            if delay > self.endpoint.max_retry_after_s:
                raise error
            time.sleep(delay)
            waited += delay
        cost = self.endpoint.cost(prompt_tokens, completion_tokens)

        def unusable(reason: str, raw: str) -> LLMAnswerError:  # the tokens were spent all the same
            return LLMAnswerError(reason, raw=raw, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                  cost=cost)

        if not response.choices:
            raise unusable("the server returned no choices", "")
        choice = response.choices[0]
        content = choice.message.content
        if content is None:
            refusal = getattr(choice.message, "refusal", None)
            raise unusable(f"no content{f' (refused: {refusal})' if refusal else ''}", "")
        if choice.finish_reason == "length":
            raise unusable(f"cut off at max_tokens={max_tokens}; allow more tokens", content)
        try:
            answer = schema.parse(content)
        except LLMAnswerError as exc:
            raise unusable(exc.reason, content) from None
        return LLMResult(answer=answer, raw=content, model=response.model or self.endpoint.model,
                         prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                         usage_reported=usage is not None, cost=cost, latency_s=latency, attempts=attempt,
                         waited_s=waited, finish_reason=choice.finish_reason or "")


_clients: dict[LLMEndpoint, LLMClient] = {}
_clients_lock = threading.Lock()


def client_for(endpoint: LLMEndpoint, *, http_client: Callable[[], httpx.Client] | None = None) -> LLMClient:
    """The process's one client for this endpoint configuration, so all its threads share the limits.

    ``http_client`` makes the transport when the client is first made (e.g. an SSRF-guarded one)."""
    with _clients_lock:
        client = _clients.get(endpoint)
        if client is None:
            client = _clients[endpoint] = LLMClient(endpoint, http_client=http_client() if http_client else None)
        return client
