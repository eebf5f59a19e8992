"""Failover, backoff and the hedged first token (``domain.failover``), and what a container learns
per URL (``domain.url_health``): a scripted transport, short real timings."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from llm_gateway.domain.failover import open_stream
from llm_gateway.domain.streaming import AttemptRecord, OpenStream, UpstreamFailure
from llm_gateway.domain.url_health import COOL_DOWN_S, HEDGE_DEFAULT_S, HEDGE_MAX_S, HEDGE_MIN_S, UrlBoard
from llm_gateway.providers.dispatch import make_relay
from tests.unit.test_streaming_relay import (
    CHAT,
    DONE,
    HAPPY,
    OPENAI,
    ScriptedTransport,
    SleepLog,
    calls,
    classify,
    drain,
    error,
    limits,
    ok,
)

A, B, C = (f"https://{name}.example/v1/chat/completions" for name in "abc")


async def run(
    transport: ScriptedTransport, *urls: str, hedge: float | None = None, **limit_args: Any
) -> tuple[OpenStream, bytes, list[AttemptRecord]]:
    seen: list[AttemptRecord] = []
    opened = await open_stream(
        calls(*urls),
        transport,
        lambda: make_relay(OPENAI, CHAT),
        limits(**limit_args),
        classify(),
        sleep=SleepLog(),
        on_attempt=seen.append,
        hedge_delays=[hedge] * len(urls),
    )
    return opened, await drain(opened), seen


async def failure_of(transport: ScriptedTransport, *urls: str, **kwargs: Any) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as caught:
        await run(transport, *urls, **kwargs)
    return caught.value


# -- the hedged first token ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_silent_first_url_is_hedged_and_the_hedge_wins_and_the_first_is_closed() -> None:
    transport = ScriptedTransport([ok(hang=True), ok(*HAPPY)])
    started = time.monotonic()
    opened, body, seen = await run(transport, A, B, hedge=0.2, first_token_s=5.0)
    assert 0.2 <= opened.timings.first_output - started < 1.0  # type: ignore[operator]
    assert body.endswith(DONE) and body.count(DONE) == 1
    assert transport.responses[0].closed, "the losing attempt's connection is closed at once"
    summary = opened.timings.summary
    assert summary.hedged and summary.url_index == 1 and len(summary.attempts) == 2
    assert [(r.url_index, r.cancelled, r.code) for r in seen] == [(1, False, None), (0, True, None)]


@pytest.mark.anyio
async def test_a_url_with_no_headers_at_all_is_hedged_too() -> None:
    transport = ScriptedTransport([30.0, ok(*HAPPY)])
    opened, body, _ = await run(transport, A, B, hedge=0.2, first_token_s=5.0)
    assert body.endswith(DONE) and opened.timings.summary.url_index == 1


@pytest.mark.anyio
async def test_no_hedge_when_the_first_url_answers_in_time() -> None:
    transport = ScriptedTransport([ok(*HAPPY), ok(*HAPPY)])
    opened, body, _ = await run(transport, A, B, hedge=0.5)
    assert transport.opened == [A] and not opened.timings.summary.hedged
    assert body.endswith(DONE)


@pytest.mark.anyio
async def test_with_the_hedge_off_a_silent_url_costs_its_first_token_budget_then_fails_over() -> None:
    transport = ScriptedTransport([ok(hang=True), ok(*HAPPY)])
    started = time.monotonic()
    opened, body, seen = await run(transport, A, B, hedge=None, first_token_s=0.3)
    assert 0.3 <= opened.timings.first_output - started < 1.3  # type: ignore[operator]
    assert transport.opened == [A, B] and not opened.timings.summary.hedged
    assert seen[0].code == "upstream_timeout" and body.endswith(DONE)


@pytest.mark.anyio
async def test_at_most_one_hedge_per_request() -> None:
    transport = ScriptedTransport([ok(hang=True), ok(hang=True), ok(*HAPPY)])
    opened, body, _ = await run(transport, A, B, C, hedge=0.1, first_token_s=0.5)
    # a and its hedge b both spend their budget; c comes only after one of them failed.
    assert transport.opened == [A, B, C]
    assert [r.hedge for r in opened.timings.summary.attempts] == [False, True, False]
    assert body.endswith(DONE)


@pytest.mark.anyio
async def test_a_hedge_that_fails_fast_leaves_the_first_attempt_running() -> None:
    transport = ScriptedTransport([ok(0.4, *HAPPY), error(503)])
    opened, body, seen = await run(transport, A, B, hedge=0.1, first_token_s=2.0)
    assert opened.timings.summary.url_index == 0 and body.endswith(DONE)
    assert [(r.url_index, r.code) for r in seen] == [(1, "upstream_server_error"), (0, None)]


# -- failover --------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_an_upstream_fault_moves_to_the_next_url_at_once(status: int) -> None:
    transport = ScriptedTransport([error(status), ok(*HAPPY)])
    opened, body, seen = await run(transport, A, B)
    assert transport.opened == [A, B] and body.endswith(DONE)
    assert [r.code is None for r in seen] == [False, True]
    assert opened.timings.summary.failed[0].upstream_status == status


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 403, 404])
async def test_a_urls_own_configuration_fault_moves_on_and_never_back(status: int) -> None:
    transport = ScriptedTransport([error(status), error(503), ok(*HAPPY)])
    _opened, body, _ = await run(transport, A, B)
    assert transport.opened == [A, B, B], "a is not tried again"
    assert body.endswith(DONE)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"error": {"message": "bad", "type": "invalid_request_error", "code": None}}, "upstream_bad_request"),
        (
            {"error": {"message": "This model's maximum context length is 8192 tokens.",
                       "type": "invalid_request_error", "code": "context_length_exceeded"}},
            "upstream_context_length_exceeded",
        ),
        (
            {"error": {"message": "The response was filtered", "code": "content_filter",
                       "innererror": {"code": "ResponsibleAIPolicyViolation"}}},
            "upstream_content_filtered",
        ),
    ],
)  # fmt: skip
async def test_a_request_the_upstream_refused_is_not_retried_anywhere(body: Any, code: str) -> None:
    transport = ScriptedTransport([error(400, body), ok(*HAPPY)])
    failure = await failure_of(transport, A, B)
    assert transport.opened == [A]
    assert (failure.code, failure.status) == (code, 400)
    assert failure.summary is not None and [r.code for r in failure.summary.attempts] == [code]


@pytest.mark.anyio
async def test_attempts_are_bounded_by_the_deadline() -> None:
    transport = ScriptedTransport([error(503, **{"retry-after": "1"}) for _ in range(3)])
    failure = await failure_of(transport, A, total_s=0.5)
    assert len(transport.opened) == 1, "the Retry-After ends after the deadline: no second attempt"
    assert failure.code == "upstream_server_error"


# -- what a container learns per URL ---------------------------------------------------------------


def attempt(url_index: int = 0, *, code: str | None = None, ttft: float | None = 0.1) -> AttemptRecord:
    return AttemptRecord(url_index, started=0.0, code=code, first_output=None if code else ttft)


def test_the_breaker_opens_after_failures_goes_half_open_and_closes_on_an_answer() -> None:
    board, urls = UrlBoard(), [A, B]
    board.observe(A, attempt(code="upstream_server_error"), now=1.0)
    assert board.order(urls, 1.0) == [A, B], "one failure does not open it"
    board.observe(A, attempt(code="upstream_server_error"), now=1.0)
    assert board.order(urls, 1.0) == [B, A], "open: last"
    assert board.order(urls, 1.0 + COOL_DOWN_S + 0.1) == [A, B], "half-open: tried again first"
    board.observe(A, attempt(code="upstream_server_error"), now=10.0)
    assert board.order(urls, 10.0 + COOL_DOWN_S + 0.1) == [B, A], "a failed probe opens it for longer"
    board.observe(A, attempt(ttft=0.1), now=40.0)
    assert board.order(urls, 40.0) == [A, B]
    assert board.take_changes(urls) and not board.take_changes(urls)


def test_ranking_keeps_near_ties_in_registered_order_and_forgets_old_measurements() -> None:
    board, urls = UrlBoard(), [A, B, C]
    for url, ttft in ((A, 0.50), (B, 0.45), (C, 0.10)):
        board.observe(url, attempt(ttft=ttft), now=1.0)
    assert board.order(urls, 1.0) == [C, A, B], "c is clearly faster; b only a little"
    assert board.order(urls, 100.0) == urls, "stale measurements: registered order again"


def test_the_hedge_delay_is_learned_per_url_and_can_be_set_or_switched_off() -> None:
    board = UrlBoard()
    assert board.hedge_delay_s(A, None) == HEDGE_DEFAULT_S
    assert board.hedge_delay_s(A, 750) == 0.75 and board.hedge_delay_s(A, 0) is None
    for _ in range(20):
        board.observe(A, attempt(ttft=0.4), now=1.0)
        board.observe(B, attempt(ttft=0.01), now=1.0)
        board.observe(C, attempt(ttft=9.0), now=1.0)
    assert board.hedge_delay_s(A, None) == pytest.approx(0.6)
    assert board.hedge_delay_s(B, None) == HEDGE_MIN_S and board.hedge_delay_s(C, None) == HEDGE_MAX_S


def test_another_containers_open_breaker_is_honoured_here() -> None:
    here, there, urls = UrlBoard(), UrlBoard(), [A, B]
    for _ in range(2):
        there.observe(A, attempt(code="upstream_timeout"), now=50.0)
    view = there.shared_view(urls, now=50.0, epoch_now=1_000_000.0)
    assert list(view) and A not in str(view), "keyed by a hash, not the URL"
    here.merge_shared(urls, view, now=7.0, epoch_now=1_000_000.5)
    assert here.order(urls, 7.0) == [B, A]
    assert here.order(urls, 7.0 + COOL_DOWN_S) == [A, B]


# -- continuing a broken answer --------------------------------------------------------------------


def tool_chunk() -> bytes:
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}
    delta = {"tool_calls": [call]}
    payload = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


@pytest.mark.anyio
async def test_a_text_answer_cut_mid_stream_is_continued_once_with_the_text_sent_so_far() -> None:
    cut = UpstreamFailure("upstream_server_error")
    transport = ScriptedTransport([ok(HAPPY[0], HAPPY[1], cut), ok(HAPPY[0], HAPPY[2], HAPPY[3], HAPPY[4])])
    opened = await open_stream(calls(A), transport, lambda: make_relay(OPENAI, CHAT), limits(), classify())
    asked: list[str] = []

    async def resume(text: str) -> OpenStream | None:
        asked.append(text)
        return await open_stream(calls(B), transport, lambda: make_relay(OPENAI, CHAT), limits(), classify())

    opened.resume = resume
    body = await drain(opened)
    assert asked == ["Hel"]
    assert body == HAPPY[0] + HAPPY[1] + HAPPY[2] + HAPPY[3] + HAPPY[4], "one answer: no second role chunk"
    assert opened.outcome == "ok" and opened.timings.summary.continued == 1


@pytest.mark.anyio
async def test_a_tool_call_in_progress_is_never_continued() -> None:
    transport = ScriptedTransport([ok(HAPPY[0], tool_chunk(), UpstreamFailure("upstream_server_error"))])
    opened = await open_stream(calls(A), transport, lambda: make_relay(OPENAI, CHAT), limits(), classify())
    asked: list[str] = []

    async def resume(text: str) -> OpenStream | None:
        asked.append(text)
        return None

    opened.resume = resume
    body = await drain(opened)
    assert asked == [] and body.endswith(b'"type":"upstream_error"}}\n\n')
    assert opened.outcome == "upstream_server_error"


@pytest.mark.anyio
async def test_when_the_continuation_fails_the_break_keeps_its_own_code() -> None:
    transport = ScriptedTransport([ok(HAPPY[0], HAPPY[1], hang=True)])
    opened = await open_stream(
        calls(A), transport, lambda: make_relay(OPENAI, CHAT), limits(idle_s=0.2), classify()
    )

    async def resume(text: str) -> OpenStream | None:
        return None  # e.g. the other URL refused the prefill

    opened.resume = resume
    body = await drain(opened)
    assert body.count(b'"code":"upstream_timeout"') == 1 and DONE not in body
