"""Two fake providers as the URLs [A, B] of one LLM, the stream app under uvicorn: A is broken with
scripted faults (``FakeState.script_fault``, what ``PUT /_fake/faults`` does), B is healthy.

Failover on every upstream fault before the first byte, the hedged first token, the breaker that
takes A out and brings it back, and the distinct refusal codes (issue 19).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import functions.stream_proxy.app as stream_app
from llm_gateway.domain.accounts import create_account
from llm_gateway.domain.health import reason
from llm_gateway.domain.url_health import COOL_DOWN_S, MAX_COOL_DOWN_S
from llm_gateway.models.llm import LlmFormat
from llm_gateway_fake_provider import FakeProviderHandle, start_in_thread
from tests.conftest import LeakCollector
from tests.integration.conftest import AwsStack
from tests.integration.test_stream_faults import DONE, FAST, AppServer, Gateway, fake, wait_for, wait_for_log

__all__ = ["fake"]  # the fixture, imported for its module scope
PATH = "/v1/chat/completions"
MODEL = "fake-model"


@pytest.fixture(scope="module")
def fake_b() -> Iterator[FakeProviderHandle]:
    handle = start_in_thread(port=0)
    yield handle
    handle.stop()


class Pair(Gateway):
    b: FakeProviderHandle

    def urls(self) -> list[str]:
        return [self.fake.url + PATH, self.b.url + PATH]

    def break_a(self, fault: str | None) -> None:
        self.fake.state.script_fault(MODEL, fault)

    def seen(self) -> tuple[int, int]:
        return len(self.fake.state.requests()), len(self.b.state.requests())


@pytest.fixture
def pair(
    aws: AwsStack, fake: FakeProviderHandle, fake_b: FakeProviderHandle, leak_collector: LeakCollector
) -> Iterator[Pair]:
    aws.configure(PRIVATE_ENDPOINT_ORIGINS=f"{fake.url},{fake_b.url}")  # both fakes live on loopback
    for handle in (fake, fake_b):
        handle.state.reset()
    account = create_account(aws.registry.account_repository, "failover").account_id
    gateway = Pair(AppServer(stream_app.create_app(aws.stream)).start(), account, fake, leak_collector, aws)
    gateway.b = fake_b
    try:
        yield gateway
    finally:
        gateway.server.stop()


def token(pair: Pair, **timeouts: int) -> str:
    return pair.token(pair.llm(urls=pair.urls(), timeouts={**FAST, **timeouts}))


def assert_whole(answer: Any) -> None:
    assert answer.status == 200, answer.body[:300]
    assert answer.events()[-1] == b"data: [DONE]" and answer.body.count(DONE) == 1
    assert answer.errors() == [] and answer.text()


def timing(answer: Any, name: str) -> str:
    for part in answer.headers["server-timing"].split(", "):
        if part.startswith(name + ";desc="):
            return part.split('"')[1]
    raise AssertionError(answer.headers["server-timing"])


@pytest.mark.parametrize("fault", ["status-500", "status-503", "status-429", "status-429:none", "reset:0"])
def test_a_fault_on_a_before_the_first_byte_is_answered_by_b_at_once(pair: Pair, fault: str) -> None:
    pair.break_a(fault)
    answer = pair.stream(token(pair))
    assert_whole(answer)
    assert pair.seen() == (1, 1)
    assert timing(answer, "attempts") == "2" and timing(answer, "url") == "1"
    assert answer.elapsed < 2.0, "no backoff before moving on to another URL"


def test_500_once_then_a_answers_the_next_requests_again(pair: Pair) -> None:
    tok = token(pair)
    pair.break_a("status-500")
    assert_whole(pair.stream(tok))
    pair.break_a(None)
    for _ in range(5):
        answer = pair.stream(tok)
        assert_whole(answer)
        assert timing(answer, "url") == "0", "one failure does not take a out"
    assert pair.seen() == (6, 1)


def test_a_persistently_failing_url_is_taken_out_and_comes_back_when_it_recovers(pair: Pair) -> None:
    tok = token(pair)
    pair.break_a("status-503")
    started = time.monotonic()
    for _ in range(6):
        assert_whole(pair.stream(tok))
    probes = int((time.monotonic() - started) // COOL_DOWN_S)  # a busy machine: half-open retries
    a_calls, b_calls = pair.seen()
    assert b_calls == 6 and 2 <= a_calls <= 2 + probes, "after two failures a's breaker is open: b only"
    pair.break_a(None)
    # Once its cool-down has passed a is tried again (half-open) and, answering, has its traffic back.
    deadline = time.monotonic() + MAX_COOL_DOWN_S + 5
    while timing(answer := pair.stream(tok), "url") != "0":
        assert_whole(answer)
        assert time.monotonic() < deadline, "a never got its traffic back"
        time.sleep(0.5)
    answers = [pair.stream(tok) for _ in range(3)]
    for answer in answers:
        assert_whole(answer)
    assert [timing(a, "url") for a in answers] == ["0", "0", "0"], "a keeps its traffic"


def test_a_silent_url_is_hedged_the_hedge_wins_and_a_is_closed(pair: Pair) -> None:
    pair.break_a("stall:0")  # headers, then nothing
    answer = pair.stream(token(pair, firstTokenMs=20_000, hedgeMs=300))
    assert_whole(answer)
    assert answer.first_byte is not None and 0.3 <= answer.first_byte < 2.0
    assert timing(answer, "hedged") == "1" and timing(answer, "url") == "1"
    wait_for(lambda: pair.fake.state.connections()["aborted"] == 1, timeout=2)


def test_a_first_token_after_six_seconds_is_hedged(pair: Pair) -> None:
    pair.break_a("delay-first-byte:6000")
    answer = pair.stream(token(pair, firstTokenMs=20_000, hedgeMs=500))
    assert_whole(answer)
    assert answer.first_byte is not None and answer.first_byte < 3.0
    assert timing(answer, "hedged") == "1"


def test_without_a_hedge_a_silent_url_costs_its_first_token_budget_then_b_answers(pair: Pair) -> None:
    pair.break_a("stall:0")
    answer = pair.stream(token(pair, firstTokenMs=800, hedgeMs=0))
    assert_whole(answer)
    assert answer.first_byte is not None and answer.first_byte >= 0.8
    assert timing(answer, "hedged") == "0" and timing(answer, "attempts") == "2"


@pytest.mark.parametrize(
    ("fault", "code"),
    [("context-length", "upstream_context_length_exceeded"), ("content-filter", "upstream_content_filtered")],
)
def test_a_refused_request_is_not_retried_and_keeps_its_own_code(pair: Pair, fault: str, code: str) -> None:
    pair.break_a(fault)
    answer = pair.stream(token(pair))
    assert answer.status == 400
    error = answer.json_error()
    assert error["code"] == code
    assert "Azure" not in error["message"] and "128000" not in error["message"], "no upstream text"
    assert pair.seen() == (1, 0)


def test_gemini_blocking_the_prompt_is_content_filtered(pair: Pair) -> None:
    pair.fake.state.script_fault("gemini-2.5-flash", "content-filter")
    llm = pair.llm(llm_format=LlmFormat.GEMINI, model="gemini-2.5-flash", urls=[pair.fake.url])
    answer = pair.stream(pair.token(llm))
    assert answer.status == 400 and answer.json_error()["code"] == "upstream_content_filtered"


def test_the_log_line_names_every_attempt(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    pair.break_a("status-500")
    answer = pair.stream(token(pair), headers={"x-request-id": "req-failover"})
    assert_whole(answer)
    record, _ = wait_for_log(capsys, "req-failover")
    assert record["attempts"] == 2 and record["url_index"] == 1 and record["hedged"] is False
    assert record["failed_attempts"] == [
        {"url_index": 0, "code": "upstream_server_error", "upstream_status": 500}
    ]


def test_a_new_container_knows_the_dead_url_from_the_requests_one_read(pair: Pair) -> None:
    tok = token(pair)
    pair.break_a("status-503")
    for _ in range(2):
        assert_whole(pair.stream(tok))
    assert pair.seen() == (2, 2)
    wait_for(lambda: any(i["SK"]["S"] == "URLS" for i in pair.aws.scan_table()), timeout=5)
    # A new environment: nothing in memory, its first request reads the session, the LLM and the
    # shared breakers together, and goes to b without trying a.
    pair.configure()
    answer = pair.stream(tok)
    assert_whole(answer)
    assert pair.seen() == (2, 3) and timing(answer, "attempts") == "1"


# -- fallback LLMs ---------------------------------------------------------------------------------


def with_fallbacks(pair: Pair, llm_id: str, *fallbacks: str) -> None:
    repository = pair.aws.registry.llm_repository
    stored = repository.get(pair.account, llm_id)
    assert stored is not None
    updated = stored.model_copy(update={"fallback_llm_ids": list(fallbacks), "version": stored.version + 1})
    repository.replace(updated, expected_version=stored.version)


def gemini_on_b(pair: Pair) -> str:
    return pair.llm(llm_format=LlmFormat.GEMINI, model="gemini-2.5-flash", urls=[pair.b.url], timeouts=FAST)


def test_a_context_too_long_for_the_llm_is_answered_by_its_fallback_of_another_spec(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    primary = pair.llm(urls=[pair.fake.url + PATH], timeouts=FAST)
    fallback = gemini_on_b(pair)
    with_fallbacks(pair, primary, fallback)
    pair.break_a("context-length")
    answer = pair.stream(
        pair.token(primary, system_prompt="PERSONA PROMPT"), headers={"x-request-id": "req-fb"}
    )
    assert_whole(answer)
    assert answer.headers["x-llm-id"] == fallback
    chunks = [json.loads(e[6:]) for e in answer.events() if e.startswith(b"data: {")]
    assert {c["model"] for c in chunks} == {"gemini-2.5-flash"}, "the answering LLM's model"
    (seen,) = pair.b.state.requests()
    assert seen["path"].startswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
    assert "PERSONA PROMPT" in str(seen["body"]["systemInstruction"]), "the persona's prompt applies"
    record, _ = wait_for_log(capsys, "req-fb")
    assert record["fallback_llm_id"] == fallback and record["attempts"] == 2
    assert record["failed_attempts"] == [
        {"url_index": 0, "code": "upstream_context_length_exceeded", "upstream_status": 400}
    ]


def test_when_every_url_fails_the_fallback_answers_and_a_content_filter_never_falls_back(pair: Pair) -> None:
    primary = pair.llm(urls=[pair.fake.url + PATH], timeouts=FAST)
    fallback = pair.llm(urls=[pair.b.url + PATH], timeouts=FAST)
    with_fallbacks(pair, primary, fallback)
    tok = pair.token(primary)
    pair.break_a("status-503")
    answer = pair.stream(tok)
    assert_whole(answer)
    assert answer.headers["x-llm-id"] == fallback
    pair.break_a("content-filter")
    refused = pair.stream(tok)
    assert refused.status == 400 and refused.json_error()["code"] == "upstream_content_filtered"
    assert len(pair.b.state.requests()) == 1


def test_a_deleted_fallback_is_not_used(pair: Pair) -> None:
    primary = pair.llm(urls=[pair.fake.url + PATH], timeouts=FAST)
    fallback = pair.llm(urls=[pair.b.url + PATH], timeouts=FAST)
    with_fallbacks(pair, primary, fallback)
    tok = pair.token(primary)
    pair.aws.registry.llm_repository.delete(pair.account, fallback)
    pair.break_a("status-503")
    answer = pair.stream(tok)
    assert answer.status == 502 and answer.json_error()["code"] == "upstream_server_error"
    assert pair.b.state.requests() == []


def counted(pair: Pair, llm_id: str, streams: int) -> Any:
    """The LLM's health once the stream app has counted ``streams`` streams: it counts one after
    its last byte went out, which may be just after the client read it (flushing sooner, under
    load, judged 19 streams: too few for a verdict)."""
    deadline = time.monotonic() + 10
    while True:
        pair.aws.stream.traffic_recorder.flush_now()
        health = pair.aws.stream.health_service.summary(pair.account, llm_id)
        if health.window.requests >= streams or time.monotonic() > deadline:
            assert health.window.requests == streams
            return health
        time.sleep(0.05)


def test_health_counts_every_attempt_so_a_rescued_url_makes_the_llm_degraded(pair: Pair) -> None:
    llm_id = pair.llm(urls=pair.urls(), timeouts=FAST)
    tok = pair.token(llm_id)
    pair.fake.state.script_fault(MODEL, "status-500", ratio=0.5)  # every other request: never twice in a row
    for _ in range(20):
        assert_whole(pair.stream(tok))
    health = counted(pair, llm_id, 20)
    assert health.state.value == "degraded"
    assert health.window.error_rate == 0, "every request was answered"
    assert [(u.index, u.attempts, u.failed, u.served) for u in health.window.urls] == [
        (0, 20, 10, 10),
        (1, 10, 0, 10),
    ]
    record = pair.aws.stream.health_store.get_state(pair.account, llm_id)
    assert record is not None

    assert reason(record, "traffic") == "urls[0]: 10 of 20 attempts failed, served by urls[1]."


# -- broken answers continue where the endpoint can ------------------------------------------------


def continuable(pair: Pair, capable: list[int], **timeouts: int) -> str:
    llm_id = pair.llm(urls=pair.urls(), headers={"x-fake-chunks": "60"}, timeouts={**FAST, **timeouts})
    repository = pair.aws.registry.llm_repository
    stored = repository.get(pair.account, llm_id)
    assert stored is not None
    validation = stored.validation.model_copy(update={"continuation_urls": capable})
    repository.replace(
        stored.model_copy(update={"validation": validation, "version": stored.version + 1}),
        expected_version=stored.version,
    )
    return llm_id


@pytest.mark.parametrize(("fault", "timeouts"), [("reset:40", {}), ("stall:20", {"idleMs": 500})])
def test_a_broken_answer_continues_on_b_as_one_answer_with_the_same_text(
    pair: Pair, fault: str, timeouts: dict[str, int]
) -> None:
    tok = pair.token(continuable(pair, [0, 1], **timeouts))
    unbroken = pair.stream(tok)
    assert_whole(unbroken)
    pair.break_a(fault)
    answer = pair.stream(tok)
    assert_whole(answer)
    assert answer.text() == unbroken.text(), "no text duplicated or dropped"
    assert timing(answer, "continued") == "0", "server-timing went out before the break"
    (continuation,) = [r for r in pair.b.state.requests() if r["body"]["messages"][-1]["role"] == "assistant"]
    assert unbroken.text().startswith(continuation["body"]["messages"][-1]["content"])


def test_when_b_refuses_the_prefill_the_client_gets_the_breaks_own_error(pair: Pair) -> None:
    tok = pair.token(continuable(pair, [1]))
    pair.break_a("reset:40")
    pair.b.state.script_fault(MODEL, "no-prefill")
    answer = pair.stream(tok)
    assert answer.status == 200
    assert [e["code"] for e in answer.errors()] == ["upstream_server_error"], "not the prefill refusal"
    assert answer.events()[-1].startswith(b'data: {"error"') and DONE not in answer.body


def test_an_llm_without_a_continuation_capable_url_is_not_continued(pair: Pair) -> None:
    tok = pair.token(continuable(pair, []))
    pair.break_a("reset:40")
    answer = pair.stream(tok)
    assert [e["code"] for e in answer.errors()] == ["upstream_server_error"]
    assert pair.b.state.requests() == []


@pytest.mark.parametrize("fault", ["invalid-json", "no-done"])
def test_a_malformed_chunk_or_a_missing_done_still_ends_in_one_done(pair: Pair, fault: str) -> None:
    pair.break_a(fault)
    answer = pair.stream(token(pair))
    assert_whole(answer)
    assert pair.seen() == (1, 0), "the answer had started: nothing to fail over"


def test_a_non_streaming_answer_from_a_fallback_reports_its_model_and_usage(pair: Pair) -> None:
    primary = pair.llm(urls=[pair.fake.url + PATH], timeouts=FAST)
    fallback = gemini_on_b(pair)
    with_fallbacks(pair, primary, fallback)
    pair.break_a("status-503")
    body = {"messages": [{"role": "user", "content": "hello"}], "stream": False}
    answer = pair.stream(pair.token(primary), body)
    assert answer.status == 200 and answer.headers["x-llm-id"] == fallback
    completion = json.loads(answer.body)
    assert completion["model"] == "gemini-2.5-flash"
    assert completion["usage"]["completion_tokens"] > 0 and completion["choices"][0]["message"]["content"]
