"""The relay in-process (DESIGN.md §3): a scripted ``UpstreamTransport``, short real timings.

Retries and failover happen only before the first byte; afterwards a failure is exactly one final
``data: {"error": …}`` event and never ``[DONE]``. Idle, first-token and total deadlines, pings in
silences, and the property test of SECURITY.md 28 for every spec ("content equals upstream").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.stream_proxy.app import _lambda_deadline
from llm_gateway.domain import failover
from llm_gateway.domain.failover import open_stream
from llm_gateway.domain.proxy import LAMBDA_SAFETY_MARGIN_S, StreamProxy
from llm_gateway.domain.streaming import (
    PING,
    Limits,
    OpenStream,
    UpstreamFailure,
)
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat, Timeouts
from llm_gateway.providers.dispatch import (
    EndpointSpec,
    StreamRelay,
    UpstreamRequest,
    build_call,
    classify_status,
    make_relay,
)

CHAT = ChatRequest(messages=[ChatMessage(role="user", content="hi")])
SPECS = {
    "openai": EndpointSpec(LlmFormat.OPENAI, "https://a.example/v1/chat/completions", "gpt-4o-mini"),
    "azure_openai": EndpointSpec(LlmFormat.AZURE_OPENAI, "https://r.openai.azure.com/openai/v1", "dep"),
    "gemini": EndpointSpec(LlmFormat.GEMINI, "https://g.example", "gemini-2.5-flash"),
}
OPENAI = SPECS["openai"]
DONE = b"data: [DONE]\n\n"


# -- a scripted upstream ------------------------------------------------------------------------

Step = bytes | float | BaseException  # bytes to return, seconds of silence, or an exception to raise


@dataclass
class ScriptedResponse:
    """``read()`` plays ``steps``; after them it returns b"" (end) or, with ``hang``, never returns."""

    status: int = 200
    steps: list[Step] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    closed: bool = False
    reads: int = 0
    _quiet_until: float | None = None

    async def read(self) -> bytes:
        # Cancellation-safe like a real socket read: a silence cut short by a timeout resumes.
        while True:
            self.reads += 1
            if not self.steps:
                if self.hang:
                    await asyncio.Event().wait()
                return b""
            step = self.steps[0]
            if isinstance(step, float):
                if self._quiet_until is None:
                    self._quiet_until = time.monotonic() + step
                await asyncio.sleep(max(0.0, self._quiet_until - time.monotonic()))
                self._quiet_until = None
                self.steps.pop(0)
                continue
            self.steps.pop(0)
            if isinstance(step, BaseException):
                raise step
            return step

    def close(self) -> None:
        self.closed = True


@dataclass
class ScriptedTransport:
    """Each ``open`` takes the next outcome: a response, an exception, or seconds to hang first."""

    outcomes: list[ScriptedResponse | BaseException | float]
    opened: list[str] = field(default_factory=list)
    responses: list[ScriptedResponse] = field(default_factory=list)

    async def open(self, call: UpstreamRequest, connect_timeout_s: float) -> ScriptedResponse:
        self.opened.append(call.url)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, float):
            await asyncio.sleep(outcome)
            raise AssertionError("the relay should have timed out first")
        if isinstance(outcome, BaseException):
            raise outcome
        self.responses.append(outcome)
        return outcome


@dataclass
class SleepLog:
    """A ``sleep`` that records the backoff waits instead of spending them."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def limits(
    *,
    first_token_s: float = 2.0,
    idle_s: float = 2.0,
    total_s: float = 10.0,
    max_attempts: int = 3,
    ping_interval_s: float = 15.0,
) -> Limits:
    return Limits(
        connect_s=1.0,
        first_token_s=first_token_s,
        idle_s=idle_s,
        deadline=time.monotonic() + total_s,
        max_attempts=max_attempts,
        ping_interval_s=ping_interval_s,
    )


def calls(*urls: str) -> list[UpstreamRequest]:
    return [build_call(EndpointSpec(LlmFormat.OPENAI, url, "gpt-4o-mini"), CHAT, "sk-test") for url in urls]


def classify(
    spec: EndpointSpec = OPENAI,
) -> Callable[[int, bytes, Mapping[str, str]], tuple[str, float | None]]:
    return lambda status, body, headers: classify_status(spec, status, body, headers, ("sk-test",))


def openai_chunk(content: str | None = None, *, finish: str | None = None, role: bool = False) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


HAPPY = [
    openai_chunk("", role=True),
    openai_chunk("Hel"),
    openai_chunk("lo"),
    openai_chunk(finish="stop"),
    DONE,
]


def ok(*steps: Step, hang: bool = False) -> ScriptedResponse:
    return ScriptedResponse(200, list(steps), hang=hang)


def error(status: int, body: dict[str, Any] | None = None, **headers: str) -> ScriptedResponse:
    payload = body or {"error": {"message": f"HTTP {status}", "type": "server_error", "code": None}}
    return ScriptedResponse(status, [json.dumps(payload).encode()], headers=headers)


async def run(
    transport: ScriptedTransport,
    lim: Limits,
    *,
    urls: Sequence[str] = ("https://a.example/v1/chat/completions",),
    spec: EndpointSpec = OPENAI,
    sleep: SleepLog | None = None,
) -> tuple[OpenStream, bytes]:
    opened = await open_stream(
        calls(*urls),
        transport,
        lambda: make_relay(spec, CHAT),
        lim,
        classify(spec),
        sleep=sleep or SleepLog(),
    )
    return opened, await drain(opened)


async def drain(opened: OpenStream) -> bytes:
    return b"".join([piece async for piece in opened.body()])


async def failure_of(transport: ScriptedTransport, lim: Limits, **kwargs: Any) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as caught:
        await run(transport, lim, **kwargs)
    return caught.value


def events(body: bytes) -> list[bytes]:
    """Our own output is LF-framed: one event per blank-line-terminated block."""
    assert body.endswith(b"\n\n"), body[-80:]
    return body[:-2].split(b"\n\n")


def error_events(body: bytes) -> list[dict[str, Any]]:
    found = []
    for event in events(body):
        if event.startswith(b"data: {") and b'"error"' in event:
            payload = json.loads(event[len(b"data: ") :])
            if "error" in payload:
                found.append(payload["error"])
    return found


def assert_clean_failure(failure: UpstreamFailure, code: str, status: int) -> None:
    assert (failure.code, failure.status) == (code, status)
    body = failure.to_body()
    assert json.loads(json.dumps(body)) == {"error": {"code": code, "message": failure.message}}
    assert "HTTP" not in failure.message  # our message, never upstream text


def assert_one_final_error(body: bytes, code: str) -> None:
    errors = error_events(body)
    assert [e["code"] for e in errors] == [code], body
    assert events(body)[-1].startswith(b'data: {"error"'), "the error event must be the last one"
    assert DONE not in body


# -- retries and failover: only before the first byte --------------------------------------------


@pytest.mark.anyio
async def test_429_is_retried_after_its_retry_after_then_streams() -> None:
    transport = ScriptedTransport([error(429, **{"retry-after": "2"}), ok(*HAPPY)])
    sleep = SleepLog()
    opened, body = await run(transport, limits(), sleep=sleep)
    assert sleep.waits == [pytest.approx(2.0, abs=0.05)]
    assert len(transport.opened) == 2
    assert body.endswith(DONE) and opened.outcome == "ok"
    assert transport.responses[0].closed, "the failed attempt's connection is released"


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "code", "gateway_status"), [
    (502, "upstream_server_error", 502),
    (503, "upstream_server_error", 502),
    (504, "upstream_timeout", 504),  # the upstream's own gateway timed out: a timeout for every spec
    (429, "upstream_rate_limited", 429),
    (500, "upstream_server_error", 502),  # a 500 is the upstream's fault too: retried like a 503
    (408, "upstream_timeout", 504),
])  # fmt: skip
async def test_retriable_statuses_are_tried_at_most_n_times_then_one_clean_failure(
    status: int, code: str, gateway_status: int
) -> None:
    transport = ScriptedTransport([error(status) for _ in range(5)])
    sleep = SleepLog()
    failure = await failure_of(transport, limits(max_attempts=3), sleep=sleep)
    assert len(transport.opened) == 3
    assert_clean_failure(failure, code, gateway_status)
    # Full jitter on one URL (no Retry-After): each wait is random in [0, min(1, 0.1 * 2**n)].
    assert len(sleep.waits) == 2
    assert all(0 <= wait <= min(1.0, 0.1 * 2 ** (n + 1)) for n, wait in enumerate(sleep.waits))


@pytest.mark.anyio
async def test_jitter_varies_between_streams() -> None:
    waits: set[float] = set()
    for _ in range(5):
        sleep = SleepLog()
        await failure_of(ScriptedTransport([error(503), error(503)]), limits(max_attempts=2), sleep=sleep)
        waits.update(sleep.waits)
    assert len(waits) > 1


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "code", "gateway_status"), [
    (400, "upstream_bad_request", 400),
    (401, "upstream_unauthorized", 502),
    (404, "upstream_model_not_found", 502),
    (413, "upstream_bad_request", 400),
    (422, "upstream_bad_request", 400),
])  # fmt: skip
async def test_non_retriable_statuses_fail_on_the_first_attempt(
    status: int, code: str, gateway_status: int
) -> None:
    body = None
    if status == 404:
        message = "The model `gpt-x` does not exist or you do not have access to it."
        body = {"error": {"message": message, "type": "invalid_request_error", "code": "model_not_found"}}
    transport = ScriptedTransport([error(status, body), ok(*HAPPY)])
    failure = await failure_of(transport, limits())
    assert len(transport.opened) == 1
    assert_clean_failure(failure, code, gateway_status)


@pytest.mark.anyio
async def test_connect_error_moves_to_the_next_url_at_once() -> None:
    urls = ("https://a.example/v1/chat/completions", "https://b.example/v1/chat/completions")
    transport = ScriptedTransport([UpstreamFailure("upstream_unreachable", retriable=True), ok(*HAPPY)])
    sleep = SleepLog()
    opened, body = await run(transport, limits(), urls=urls, sleep=sleep)
    assert transport.opened == list(urls)
    assert sleep.waits == [], "another URL is next: no backoff"
    assert opened.timings.url_index == 1 and opened.timings.attempts == 2
    assert body.endswith(DONE)


@pytest.mark.anyio
async def test_retry_after_delays_only_a_return_to_the_url_that_sent_it() -> None:
    urls = ("https://a.example/v1/chat/completions", "https://b.example/v1/chat/completions")
    busy = [error(429, **{"retry-after": "2"}), error(429, **{"retry-after": "3"}), ok(*HAPPY)]
    transport = ScriptedTransport(busy)
    sleep = SleepLog()
    _opened, body = await run(transport, limits(), urls=urls, sleep=sleep)
    assert transport.opened == [urls[0], urls[1], urls[0]]
    assert sleep.waits == [pytest.approx(2.0, abs=0.05)], (
        "b is tried at once; back to a after a's Retry-After"
    )
    assert body.endswith(DONE)


@pytest.mark.anyio
async def test_urls_alternate_and_attempts_stop_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The soonest-ready URL goes next: with equal backoffs, the one that failed first (a random
    # jitter each would let b's shorter wait put it ahead of a, which is right but not this test).
    monkeypatch.setattr(failover, "jitter_s", lambda attempt: 0.05)
    urls = ("https://a.example/v1/chat/completions", "https://b.example/v1/chat/completions")
    unreachable = [UpstreamFailure("upstream_unreachable", retriable=True) for _ in range(6)]
    transport = ScriptedTransport(list(unreachable))
    failure = await failure_of(transport, limits(max_attempts=4), urls=urls)
    assert transport.opened == [urls[0], urls[1], urls[0], urls[1]]
    assert_clean_failure(failure, "upstream_unreachable", 502)


@pytest.mark.anyio
async def test_blocked_endpoint_is_not_retried() -> None:
    transport = ScriptedTransport([UpstreamFailure("endpoint_blocked"), ok(*HAPPY)])
    failure = await failure_of(transport, limits())
    assert len(transport.opened) == 1
    assert_clean_failure(failure, "endpoint_blocked", 502)


@pytest.mark.anyio
async def test_a_retry_after_beyond_the_limit_fails_at_once_with_the_hint() -> None:
    transport = ScriptedTransport([error(429, **{"retry-after": "30"}), ok(*HAPPY)])
    sleep = SleepLog()
    failure = await failure_of(transport, limits(), sleep=sleep)
    assert len(transport.opened) == 1 and sleep.waits == []
    assert_clean_failure(failure, "upstream_rate_limited", 429)
    assert failure.retry_after_s == 30.0


@pytest.mark.anyio
async def test_an_error_body_is_never_quoted_even_when_it_echoes_the_key() -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-test", "code": "invalid_api_key"}}
    failure = await failure_of(ScriptedTransport([error(401, body)]), limits())
    assert "sk-test" not in json.dumps(failure.to_body())


@pytest.mark.anyio
async def test_a_stream_that_fails_before_its_first_output_is_a_json_failure() -> None:
    """Headers came, then a reset before any event: still before the first byte, so a status."""
    broken = [ok(b"da", UpstreamFailure("upstream_server_error")) for _ in range(3)]
    failure = await failure_of(ScriptedTransport(broken), limits())
    assert_clean_failure(failure, "upstream_server_error", 502)
    assert all(response.closed for response in broken)


@pytest.mark.anyio
async def test_a_reset_before_the_first_output_moves_to_the_next_url() -> None:
    urls = ("https://a.example/v1/chat/completions", "https://b.example/v1/chat/completions")
    transport = ScriptedTransport([ok(b"da", UpstreamFailure("upstream_server_error")), ok(*HAPPY)])
    opened, body = await run(transport, limits(), urls=urls)
    assert transport.opened == list(urls) and body.endswith(DONE)
    assert opened.timings.summary.url_index == 1


# -- after the first byte: one final error event, no [DONE], no retry -----------------------------


@pytest.mark.anyio
async def test_reset_after_the_first_byte_is_one_error_event_and_no_retry() -> None:
    transport = ScriptedTransport(
        [ok(HAPPY[0], HAPPY[1], UpstreamFailure("upstream_server_error")), ok(*HAPPY)]
    )
    opened, body = await run(transport, limits())
    assert len(transport.opened) == 1
    assert body.startswith(HAPPY[0] + HAPPY[1])
    assert_one_final_error(body, "upstream_server_error")
    assert opened.outcome == "upstream_server_error"
    assert transport.responses[0].closed


@pytest.mark.anyio
async def test_end_of_body_without_done_is_an_error_event() -> None:
    transport = ScriptedTransport([ok(HAPPY[0], HAPPY[1])])
    _, body = await run(transport, limits())
    assert_one_final_error(body, "upstream_protocol_error")


@pytest.mark.anyio
async def test_in_band_upstream_error_is_replaced_by_ours() -> None:
    upstream_error = (
        b'data: {"error": {"message": "boom sk-test", "type": "server_error", "code": "server_error"}}\n\n'
    )
    transport = ScriptedTransport([ok(HAPPY[0], HAPPY[1], upstream_error)])
    _, body = await run(transport, limits())
    assert_one_final_error(body, "upstream_server_error")
    assert b"boom" not in body and b"sk-test" not in body


@pytest.mark.anyio
async def test_gemini_mid_stream_error_is_exactly_one_error_event() -> None:
    first = b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]}\r\n\r\n'
    bare_error = b'{\n  "error": {\n    "code": 500,\n    "message": "internal sk-test",\n    "status": "INTERNAL"\n  }\n}\n'
    transport = ScriptedTransport([ok(first, bare_error)])
    opened, body = await run(transport, limits(), spec=SPECS["gemini"])
    assert_one_final_error(body, "upstream_server_error")
    assert b"sk-test" not in body
    assert opened.outcome == "upstream_server_error"


@pytest.mark.anyio
async def test_an_over_long_line_after_the_first_byte_aborts_with_one_error_event() -> None:
    huge = [b"data: " + b"x" * 65536 for _ in range(20)]  # 1.3 MB without a line end
    transport = ScriptedTransport([ok(HAPPY[0], *huge, hang=True)])
    _, body = await run(transport, limits())
    assert_one_final_error(body, "upstream_protocol_error")
    assert len(body) < 4096, "nothing of the long line is buffered into the output"


# -- timeouts ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_idle_timeout_after_the_first_byte() -> None:
    transport = ScriptedTransport([ok(HAPPY[0], hang=True)])
    started = time.monotonic()
    _, body = await run(transport, limits(idle_s=0.3))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + 1.0
    assert_one_final_error(body, "upstream_timeout")
    assert transport.responses[0].closed


@pytest.mark.anyio
async def test_first_token_timeout_is_a_504_and_not_retried() -> None:
    transport = ScriptedTransport([ok(hang=True), ok(*HAPPY)])
    started = time.monotonic()
    failure = await failure_of(transport, limits(first_token_s=0.3))
    assert 0.3 <= time.monotonic() - started < 1.3
    assert len(transport.opened) == 1
    assert_clean_failure(failure, "upstream_timeout", 504)
    assert transport.responses[0].closed


@pytest.mark.anyio
async def test_first_token_timeout_covers_slow_response_headers() -> None:
    transport = ScriptedTransport([5.0])
    started = time.monotonic()
    failure = await failure_of(transport, limits(first_token_s=0.3))
    assert time.monotonic() - started < 1.3
    assert_clean_failure(failure, "upstream_timeout", 504)


@pytest.mark.anyio
async def test_first_token_timeout_counts_role_only_silence_as_waiting() -> None:
    """Bytes that produce no output (a comment) do not count as the first token."""
    transport = ScriptedTransport([ok(b": keep-alive\n\n", hang=True)])
    failure = await failure_of(transport, limits(first_token_s=0.3))
    assert_clean_failure(failure, "upstream_timeout", 504)


@pytest.mark.anyio
async def test_a_drip_never_idle_ends_at_the_total_deadline() -> None:
    drip = [step for byte in HAPPY[1] for step in (bytes([byte]), 0.02)]
    transport = ScriptedTransport([ok(HAPPY[0], *drip * 50)])
    started = time.monotonic()
    opened, body = await run(transport, limits(idle_s=0.5, total_s=0.6))
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 0.6 + 1.0
    assert_one_final_error(body, "gateway_deadline")
    assert opened.outcome == "gateway_deadline"


def stream_proxy(clock: Callable[[], float] = time.monotonic) -> StreamProxy:
    def unused(*_: Any) -> Any:
        raise AssertionError("not used")

    return StreamProxy(verify_token=unused, sessions=unused, transport=ScriptedTransport([]), clock=clock)


def test_limits_come_from_the_llm_timeouts() -> None:
    proxy = stream_proxy(clock=lambda: 100.0)
    lim = proxy._limits(Timeouts(connect_ms=100, first_token_ms=500, idle_ms=700, total_ms=1000), None)
    assert (lim.connect_s, lim.first_token_s, lim.idle_s, lim.deadline) == (0.1, 0.5, 0.7, 101.0)


def test_lambda_deadline_caps_the_total_with_a_safety_margin() -> None:
    proxy = stream_proxy(clock=lambda: 100.0)
    lim = proxy._limits(Timeouts(total_ms=300_000), lambda_deadline=110.0)
    assert lim.deadline == 110.0 - LAMBDA_SAFETY_MARGIN_S
    # A far Lambda deadline leaves the LLM's own total in charge.
    assert proxy._limits(Timeouts(total_ms=5_000), lambda_deadline=1_000.0).deadline == 105.0


def test_lambda_context_header_becomes_a_monotonic_deadline() -> None:
    deadline_ms = (time.time() + 20) * 1000
    scope = {"headers": [(b"x-amzn-lambda-context", json.dumps({"deadline": deadline_ms}).encode())]}
    parsed = _lambda_deadline(scope)
    assert parsed is not None and abs(parsed - (time.monotonic() + 20)) < 0.5
    assert _lambda_deadline({"headers": [(b"x-amzn-lambda-context", b"not json")]}) is None
    assert _lambda_deadline({"headers": []}) is None


@pytest.mark.anyio
async def test_a_near_lambda_deadline_ends_with_a_terminal_event_before_the_kill() -> None:
    clock = time.monotonic
    lambda_deadline = clock() + LAMBDA_SAFETY_MARGIN_S + 0.5
    lim = stream_proxy()._limits(Timeouts(idle_ms=60_000, total_ms=300_000), lambda_deadline)
    transport = ScriptedTransport([ok(HAPPY[0], hang=True)])
    _, body = await run(transport, lim)
    assert clock() < lambda_deadline - LAMBDA_SAFETY_MARGIN_S + 1.0 < lambda_deadline
    assert_one_final_error(body, "gateway_deadline")


# -- pings -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_silence_gets_pings_and_the_stream_still_ends_with_done() -> None:
    transport = ScriptedTransport([ok(HAPPY[0], 0.35, *HAPPY[1:])])
    opened, body = await run(transport, limits(idle_s=2.0, ping_interval_s=0.1))
    assert body.count(PING) >= 2
    assert body.startswith(HAPPY[0] + PING)
    assert body.replace(PING, b"") == b"".join(HAPPY)
    assert body.endswith(DONE) and opened.outcome == "ok"


@pytest.mark.anyio
async def test_pings_do_not_hold_off_the_idle_timeout() -> None:
    transport = ScriptedTransport([ok(HAPPY[0], hang=True)])
    started = time.monotonic()
    _, body = await run(transport, limits(idle_s=0.5, ping_interval_s=0.1))
    assert time.monotonic() - started < 1.5
    assert body.count(PING) >= 3
    assert_one_final_error(body, "upstream_timeout")


# -- every spec ends with [DONE] -------------------------------------------------------------------

GEMINI_HAPPY = [
    b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}]}\r\n\r\n',
    b'data: {"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "finishReason": "STOP", '
    b'"index": 0}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2, "totalTokenCount": 3}}\r\n\r\n',
]
AZURE_HAPPY = [
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
    b'"content_filter_results":{}}]}\n\n',
    *HAPPY[:-1],
    b'data: {"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":5},'
    b'"content_filter_results":{},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}\n\n',
    DONE,
]


@pytest.mark.anyio
@pytest.mark.parametrize(("spec", "upstream"), [
    ("openai", HAPPY), ("azure_openai", AZURE_HAPPY), ("gemini", GEMINI_HAPPY),
])  # fmt: skip
async def test_each_spec_relays_to_an_openai_stream_ending_with_done(
    spec: str, upstream: list[bytes]
) -> None:
    transport = ScriptedTransport([ok(*upstream)])
    opened, body = await run(transport, limits(), spec=SPECS[spec])
    assert body.endswith(DONE) and opened.outcome == "ok"
    assert body.count(DONE) == 1
    text, _ = openai_content(body)
    assert text == "Hello"
    assert b"prompt_filter_results" not in body and b"content_filter_offsets" not in body


# -- SECURITY 28 and "content equals upstream": generated streams split anywhere --------------------


@dataclass
class Generated:
    body: bytes
    text: str
    tool_calls: list[tuple[str, str]]  # (name, arguments JSON), in index order


def _pieces(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def openai_upstream(text: str, cuts: list[int], tools: list[tuple[str, dict[str, Any]]],
                    *, azure: bool, crlf: bool) -> Generated:  # fmt: skip
    end = b"\r\n\r\n" if crlf else b"\n\n"
    meta = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 7, "model": "m"}

    def event(choice: dict[str, Any] | None = None, **extra: Any) -> bytes:
        chunk = {**meta, "choices": [choice] if choice else [], **extra}
        return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + end

    def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": d, "finish_reason": finish}
        if azure:
            choice["content_filter_results"] = {}
        return event(choice)

    out = []
    if azure:
        out.append(event(prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}]))
    out.append(delta({"role": "assistant", "content": ""}))
    out.extend(delta({"content": piece}) for piece in _pieces(text, cuts))
    expected_tools = []
    for index, (name, args) in enumerate(tools):
        arguments = json.dumps(args, ensure_ascii=False)
        head = {
            "index": index,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        out.append(delta({"tool_calls": [head]}))
        for piece in _pieces(arguments, cuts):
            out.append(delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        expected_tools.append((name, arguments))
    out.append(delta({}, "tool_calls" if tools else "stop"))
    if azure:
        annotation = {"index": 0, "finish_reason": None, "content_filter_results": {},
                      "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 9}}  # fmt: skip
        out.append(event(annotation))
    out.append(b"data: [DONE]" + end)
    return Generated(b"".join(out), text, expected_tools)


def gemini_upstream(text: str, cuts: list[int], tools: list[tuple[str, dict[str, Any]]]) -> Generated:
    pieces = _pieces(text, cuts)
    parts: list[list[dict[str, Any]]] = [[{"text": piece}] for piece in pieces]
    if tools:
        parts.append([{"functionCall": {"name": name, "args": args}} for name, args in tools])
    if not parts:
        parts.append([{"text": ""}])
    out = []
    for i, chunk_parts in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"parts": chunk_parts, "role": "model"}, "index": 0}
        payload: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
        if i == len(parts) - 1:
            candidate["finishReason"] = "STOP"
            payload["usageMetadata"] = {
                "promptTokenCount": 3,
                "candidatesTokenCount": 5,
                "totalTokenCount": 8,
            }
        out.append(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\r\n\r\n")
    expected = [(name, json.dumps(args, separators=(",", ":"), ensure_ascii=False)) for name, args in tools]
    return Generated(b"".join(out), text, expected)


def openai_content(body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Validate an OpenAI chunk stream (LF framed, ``[DONE]`` last, nothing after) and reassemble it."""
    assert body.endswith(DONE), body[-200:]
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    blocks = events(body)
    assert blocks[-1] == b"data: [DONE]"
    for block in blocks[:-1]:
        if block.startswith(b":"):
            continue
        assert block.startswith(b"data: ") and b"\n" not in block, block
        chunk = json.loads(block[len(b"data: ") :])
        assert chunk["object"] == "chat.completion.chunk", chunk
        assert "error" not in chunk
        for choice in chunk["choices"]:
            assert choice["index"] == 0
            delta = choice["delta"]
            text.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                function = call.get("function") or {}
                entry["name"] += function.get("name") or ""
                entry["arguments"] += function.get("arguments") or ""
    assert sorted(calls) == list(range(len(calls))), "tool call indexes are 0..n-1"
    return "".join(text), [(calls[i]["name"], calls[i]["arguments"]) for i in sorted(calls)]


def relay_in_pieces(relay: StreamRelay, body: bytes, offsets: list[int]) -> bytes:
    bounds = [0, *sorted({o % (len(body) + 1) for o in offsets}), len(body)]
    out = [relay.feed(body[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(relay.finish())
    assert relay.failure is None and relay.complete
    return b"".join(out)


def normalised(body: bytes) -> list[Any]:
    """Events with generated ids blanked: the Gemini translator mints ids per stream."""
    result: list[Any] = []
    for block in events(body):
        data = block[len(b"data: ") :]
        if data == b"[DONE]":
            result.append("[DONE]")
            continue
        chunk = json.loads(data)
        chunk["id"] = chunk["created"] = None
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                call["id"] = None
        result.append(chunk)
    return result


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
_leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
json_values = (
    _leaves | st.lists(_leaves, max_size=3) | st.dictionaries(st.text(max_size=5), _leaves, max_size=3)
)
tool_lists = st.lists(
    st.tuples(
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    ),
    max_size=2,
)
offsets = st.lists(st.integers(min_value=0, max_value=10_000), max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.sampled_from(sorted(SPECS)),
    text=texts,
    text_cuts=offsets,
    tools=tool_lists,
    byte_offsets=offsets,
    crlf=st.booleans(),
)
def test_relayed_content_equals_upstream_whatever_the_split(
    spec: str, text: str, text_cuts: list[int], tools: list[tuple[str, dict[str, Any]]],
    byte_offsets: list[int], crlf: bool,
) -> None:  # fmt: skip
    endpoint = SPECS[spec]
    if spec == "gemini":
        generated = gemini_upstream(text, text_cuts, tools)
    else:
        generated = openai_upstream(text, text_cuts, tools, azure=spec == "azure_openai", crlf=crlf)
    chat = CHAT
    split = relay_in_pieces(make_relay(endpoint, chat), generated.body, byte_offsets)
    whole = relay_in_pieces(make_relay(endpoint, chat), generated.body, [])
    content, calls_out = openai_content(split)
    assert content == generated.text
    assert calls_out == generated.tool_calls
    for _, arguments in calls_out:
        json.loads(arguments)
    assert normalised(split) == normalised(whole)
    if spec != "gemini":
        assert split == whole, "pass-through output does not depend on how the bytes were split"


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_byte_offset_of_a_utf8_stream_gives_the_same_events(data: st.DataObject) -> None:
    """Exhaustive single cuts (inside UTF-8 sequences, between \\r and \\n) on a small stream."""
    spec = data.draw(st.sampled_from(sorted(SPECS)))
    text = data.draw(st.text(alphabet="aé€😀\r\n", min_size=1, max_size=6))
    if spec == "gemini":
        generated = gemini_upstream(text, [1, 3], [])
    else:
        generated = openai_upstream(text, [1, 3], [], azure=spec == "azure_openai", crlf=True)
    whole = normalised(relay_in_pieces(make_relay(SPECS[spec], CHAT), generated.body, []))
    for cut in range(1, len(generated.body)):
        split = relay_in_pieces(make_relay(SPECS[spec], CHAT), generated.body, [cut])
        assert normalised(split) == whole, cut


# -- the OpenStream body generator closes the upstream however it ends -----------------------------


@pytest.mark.anyio
async def test_abandoning_the_body_closes_the_upstream() -> None:
    transport = ScriptedTransport([ok(*HAPPY[:2], hang=True)])
    opened = await open_stream(
        calls("https://a.example/v1"), transport, lambda: make_relay(OPENAI, CHAT), limits(), classify()
    )
    body = opened.body()
    assert await anext(body) == HAPPY[0]
    await body.aclose()
    assert transport.responses[0].closed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
