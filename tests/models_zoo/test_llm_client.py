"""The LLM client over real loopback HTTP, against a scripted server: what it sends, retries and backoff
(Retry-After honoured), errors that say retryable or permanent, timeouts, the concurrency limit, the request
and token rate limits, token counts and cost."""

from __future__ import annotations

import email.utils
import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from models_zoo.llm import (
    COTR,
    AnswerSchema,
    LLMAnswerError,
    LLMBusyError,
    LLMClient,
    LLMConnectionError,
    LLMEndpoint,
    LLMRequestError,
    LLMTimeoutError,
    PromptItem,
    client_for,
    render_prompt,
)
from tests.fixtures.llm_server import Reply, ScriptedLLMServer, free_loopback_port

SCHEMA = AnswerSchema.from_questions([{"key": "emotion", "type": "single_choice", "labels": ["joy", "anger"]}],
                                     rationale=True)
GOOD = json.dumps({"rationale": "stated plainly", "labels": {"emotion": "joy"}})
MESSAGES = [{"role": "user", "content": "How does 'I won!' feel?"}]


def endpoint(server: ScriptedLLMServer, **overrides: Any) -> LLMEndpoint:
    settings: dict[str, Any] = {"base_url": server.base_url, "model": "scripted-model", "api_key": "sk-test",
                                "backoff_base_s": 0.1, "timeout_s": 10}
    return LLMEndpoint(**(settings | overrides))


def gaps(server: ScriptedLLMServer) -> list[float]:
    return [b.at - a.at for a, b in zip(server.seen, server.seen[1:])]


def test_answer_tokens_and_cost_and_what_goes_on_the_wire() -> None:
    cotr = json.dumps({"translation": "I won!", "rationale": "victory", "labels": {"emotion": "joy"}})
    with ScriptedLLMServer(lambda n, body: Reply(content=cotr, usage=(1200, 300))) as server:
        config = endpoint(server, price_input_per_1k=Decimal("0.5"), price_output_per_1k=Decimal("1.5"))
        with LLMClient(config) as client:
            rendered = render_prompt(COTR, PromptItem("मी जिंकलो!", language="Marathi"), SCHEMA)
            result = client.complete(rendered.messages, rendered.schema, max_tokens=64, seed=7)
    assert result.answer.labels == {"emotion": "joy"}
    assert result.answer.translation == "I won!" and result.answer.rationale == "victory"
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (1200, 300, 1500)
    assert result.cost == Decimal("1.05") and result.usage_reported is True
    assert result.attempts == 1 and result.model == "scripted-model" and result.finish_reason == "stop"
    sent = server.seen[0]
    assert sent.headers["authorization"] == "Bearer sk-test"
    body = sent.body
    assert body["model"] == "scripted-model" and body["max_tokens"] == 64 and body["temperature"] == 0
    assert body["seed"] == 7 and body["messages"] == list(rendered.messages)
    assert body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "labels", "schema": rendered.schema.json_schema(), "strict": True}}


def test_json_object_mode_sends_the_schema_as_llama_cpp_python_expects() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(content=GOOD)) as server:
        with LLMClient(endpoint(server, structured_output="json_object")) as client:
            client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert server.seen[0].body["response_format"] == {"type": "json_object", "schema": SCHEMA.json_schema()}


def test_429_is_retried_after_the_wait_the_server_asks_for() -> None:
    script = [Reply(429, headers={"Retry-After": "1"}), Reply(429, headers={"retry-after-ms": "300"}),
              Reply(content=GOOD)]
    with ScriptedLLMServer(lambda n, body: script[n]) as server:
        with LLMClient(endpoint(server)) as client:
            result = client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert result.attempts == 3 and result.answer.labels == {"emotion": "joy"}
    first, second = gaps(server)
    assert 1.0 <= first < 3.0 and 0.3 <= second < 2.0  # upper bounds: slack for a loaded machine
    assert result.waited_s >= 1.3


def test_retry_after_as_an_http_date() -> None:
    def reply(n: int, body: dict[str, Any]) -> Reply:
        if n == 0:  # two seconds from now, in whole seconds as HTTP dates are
            return Reply(503, headers={"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)})
        return Reply(content=GOOD)

    with ScriptedLLMServer(reply) as server:
        with LLMClient(endpoint(server)) as client:
            assert client.complete(MESSAGES, SCHEMA, max_tokens=16).attempts == 2
    assert 0.9 <= gaps(server)[0] < 4.0


def test_5xx_is_retried_with_growing_backoff() -> None:
    script = [Reply(500), Reply(502), Reply(content=GOOD)]
    with ScriptedLLMServer(lambda n, body: script[n]) as server:
        with LLMClient(endpoint(server, backoff_base_s=0.2)) as client:
            result = client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert result.attempts == 3
    first, second = gaps(server)
    assert 0.1 <= first < 1.5  # 0.2 s with jitter: between half and all of it
    assert 0.2 <= second < 2.0  # 0.4 s with jitter


def test_backoff_doubles_up_to_its_ceiling_with_jitter_below_it() -> None:
    client = LLMClient(LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="m", backoff_base_s=0.5, backoff_max_s=4))
    busy = LLMBusyError("busy", status=503)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        delays = [client._backoff(attempt, busy) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(set(delays)) > 1
    assert client._backoff(1, LLMBusyError("busy", status=429, retry_after=7.5)) == 7.5
    client.close()


def test_still_busy_after_the_retries_is_a_retryable_error() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(503, headers={"Retry-After": "0"})) as server:
        with LLMClient(endpoint(server, max_retries=2)) as client, pytest.raises(LLMBusyError) as caught:
            client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert len(server.seen) == 3
    assert caught.value.retryable is True and caught.value.status == 503 and "HTTP 503" in caught.value.message


def test_a_wait_longer_than_allowed_goes_back_to_the_caller_at_once() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(429, headers={"Retry-After": "600"})) as server:
        with LLMClient(endpoint(server)) as client, pytest.raises(LLMBusyError) as caught:
            client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert len(server.seen) == 1
    assert caught.value.retry_after == 600 and caught.value.retryable is True


@pytest.mark.parametrize(("status", "hint"), [(400, "HTTP 400: scripted 400"), (401, "check the API key"),
                                              (404, "HTTP 404"), (422, "HTTP 422")])
def test_a_refused_request_is_permanent_and_not_retried(status: int, hint: str) -> None:
    with ScriptedLLMServer(lambda n, body: Reply(status)) as server:
        with LLMClient(endpoint(server, name="local gemma")) as client, pytest.raises(LLMRequestError) as caught:
            client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert len(server.seen) == 1
    assert caught.value.retryable is False and caught.value.status == status
    assert hint in caught.value.message and caught.value.message.startswith("local gemma: ")
    assert "sk-test" not in caught.value.message


def test_a_timeout_raises_the_retryable_timeout_error() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(content=GOOD, delay_s=3)) as server:
        with LLMClient(endpoint(server, timeout_s=0.3, max_retries=0)) as client:
            started = time.monotonic()
            with pytest.raises(LLMTimeoutError) as caught:
                client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert time.monotonic() - started < 2.5  # not the server's 3 s
    assert caught.value.retryable is True and "no answer within 0.3 s" in caught.value.message


def test_a_timeout_is_retried_like_a_busy_server() -> None:
    script = [Reply(content=GOOD, delay_s=2), Reply(content=GOOD)]
    with ScriptedLLMServer(lambda n, body: script[n]) as server:
        with LLMClient(endpoint(server, timeout_s=0.3, max_retries=1)) as client:
            assert client.complete(MESSAGES, SCHEMA, max_tokens=16).attempts == 2


def test_an_unreachable_endpoint_is_a_retryable_connection_error() -> None:
    config = LLMEndpoint(base_url=f"http://127.0.0.1:{free_loopback_port()}/v1", model="m", max_retries=1,
                         backoff_base_s=0.05)
    with LLMClient(config) as client, pytest.raises(LLMConnectionError) as caught:
        client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert caught.value.retryable is True and "cannot connect" in caught.value.message


def test_an_answer_outside_the_label_set_is_permanent_and_keeps_the_tokens_spent() -> None:
    bad = json.dumps({"rationale": "r", "labels": {"emotion": "happiness"}})
    with ScriptedLLMServer(lambda n, body: Reply(content=bad, usage=(100, 20))) as server:
        config = endpoint(server, price_input_per_1k=Decimal(1), price_output_per_1k=Decimal(2))
        with LLMClient(config) as client, pytest.raises(LLMAnswerError) as caught:
            client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert len(server.seen) == 1
    error = caught.value
    assert error.retryable is False and "'happiness' is not one of the labels" in error.reason
    assert error.raw == bad and (error.prompt_tokens, error.completion_tokens) == (100, 20)
    assert error.cost == Decimal("0.14")


def test_a_cut_off_answer_says_to_allow_more_tokens() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(content='{"rationale": "it is', finish_reason="length")) as server:
        with LLMClient(endpoint(server)) as client, pytest.raises(LLMAnswerError, match="max_tokens=16; allow more"):
            client.complete(MESSAGES, SCHEMA, max_tokens=16)


def test_float_prices_cost_exactly_what_they_say() -> None:
    config = LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="m", price_input_per_1k=0.1,  # type: ignore[arg-type]
                         price_output_per_1k=Decimal("0.3"))
    assert config.cost(1000, 2000) == Decimal("0.7")


def test_a_server_without_usage_is_reported_as_such() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(content=GOOD, usage=None)) as server:
        with LLMClient(endpoint(server, price_input_per_1k=Decimal(1))) as client:
            result = client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert result.usage_reported is False and result.total_tokens == 0 and result.cost == 0


@pytest.mark.parametrize("limit", [1, 3])
def test_no_more_than_max_concurrency_requests_are_in_flight(limit: int) -> None:
    with ScriptedLLMServer(lambda n, body: Reply(content=GOOD, delay_s=0.3)) as server:
        client = LLMClient(endpoint(server, max_concurrency=limit))
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda _: client.complete(MESSAGES, SCHEMA, max_tokens=16), range(6)))
        client.close()
    assert len(results) == 6 and server.max_in_flight == limit


def test_backoff_frees_the_slot_for_other_requests() -> None:
    # With one slot, a request waiting 1 s after a 429 must not keep the other thread's request out.
    def reply(n: int, body: dict[str, Any]) -> Reply:
        if body["messages"][0]["content"] == "first" and n == 0:
            return Reply(429, headers={"Retry-After": "1"})
        return Reply(content=GOOD)

    with ScriptedLLMServer(reply) as server:
        client = LLMClient(endpoint(server, max_concurrency=1))
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(client.complete, [{"role": "user", "content": "first"}], SCHEMA, max_tokens=16)
            time.sleep(0.2)
            second = pool.submit(client.complete, [{"role": "user", "content": "second"}], SCHEMA, max_tokens=16)
            assert second.result().attempts == 1
            assert first.result().attempts == 2
        client.close()
    order = [seen.body["messages"][0]["content"] for seen in server.seen]
    assert order == ["first", "second", "first"]


def test_requests_per_minute_spaces_requests_across_threads() -> None:
    with ScriptedLLMServer(lambda n, body: Reply(content=GOOD)) as server:
        # 300 a minute is one every 0.2 s; a 0.2 s burst holds a single request
        client = LLMClient(endpoint(server, max_concurrency=4, requests_per_minute=300, rate_limit_burst_s=0.2))
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: client.complete(MESSAGES, SCHEMA, max_tokens=16), range(6)))
        client.close()
    assert len(server.seen) == 6
    assert min(gaps(server)) >= 0.17  # timer slack only
    assert server.seen[-1].at - server.seen[0].at >= 0.95


def test_tokens_per_minute_throttles_on_the_servers_token_count() -> None:
    # 12,000 tokens a minute = 200 a second, at most 200 at once. Each call is estimated at ~30 tokens, but the
    # server counts 500: the first goes at once, the second waits for the debt (500 - 200 + ~30) / 200 s.
    with ScriptedLLMServer(lambda n, body: Reply(content=GOOD, usage=(450, 50))) as server:
        with LLMClient(endpoint(server, tokens_per_minute=12_000, rate_limit_burst_s=1)) as client:
            first = client.complete(MESSAGES, SCHEMA, max_tokens=16)
            second = client.complete(MESSAGES, SCHEMA, max_tokens=16)
    assert first.waited_s < 0.1
    assert 1.4 <= gaps(server)[0] < 4.0 and second.waited_s >= 1.4


def test_client_for_shares_one_client_and_its_limits_per_endpoint() -> None:
    config = LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="m", max_concurrency=2)
    assert client_for(config) is client_for(LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="m", max_concurrency=2))
    assert client_for(config) is not client_for(LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="m"))
    assert "api_key" not in repr(LLMEndpoint(base_url="x", model="m", api_key="secret"))
