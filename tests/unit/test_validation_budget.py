"""The run budget's arithmetic with fake clocks: what each caller gets, what each check may use of
it, how a run that runs out still reports, and that URLs are probed at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

from llm_gateway.adapters.probe_http import ProbeHttpClient
from llm_gateway.domain.conformance import EndpointConfig, HttpPort, run_conformance
from llm_gateway.domain.conformance import engine as engine_module
from llm_gateway.domain.conformance.budget import (
    CONFIG_TEST_BUDGET_S,
    MIN_BUDGET_S,
    VALIDATOR_BUDGET_S,
    VALIDATOR_MARGIN_S,
    RunBudget,
    config_test_budget,
    validator_budget,
)
from llm_gateway.domain.conformance.exchange import Budget
from llm_gateway.models.llm import LlmFormat
from llm_gateway.models.report import Report
from tests.unit.test_conformance_engine import (
    KEY,
    UNAUTHORIZED,
    URL,
    WRONG_KEY,
    Clock,
    FakeClient,
    FakeResponse,
    Guard,
    Reply,
    openai_stream,
)

FIVE_URLS = tuple(f"https://api{i}.example.com/v1" for i in range(5))


def by_id(report: Report) -> dict[str, tuple[str, str, str | None]]:
    return {c.id: (c.status.value, c.message, c.hint) for c in report.checks}


# --- what each caller gets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining_ms", "expected"),
    [(None, CONFIG_TEST_BUDGET_S), (900_000, CONFIG_TEST_BUDGET_S), (29_000, CONFIG_TEST_BUDGET_S),
     (10_000, 7.0), (1_000, MIN_BUDGET_S)],
)  # fmt: skip
def test_the_test_route_has_25_s_or_less_when_the_function_has_less(
    remaining_ms: int | None, expected: float
) -> None:
    budget = config_test_budget(remaining_ms)
    assert budget.seconds == pytest.approx(expected)
    assert "POST /v1/llms/test" in budget.label and "29 s" in budget.label


@pytest.mark.parametrize(
    ("remaining_ms", "expected"),
    [(None, VALIDATOR_BUDGET_S), (90_000, VALIDATOR_BUDGET_S), (40_000, 40 - VALIDATOR_MARGIN_S),
     (5_000, MIN_BUDGET_S)],
)  # fmt: skip
def test_the_validator_keeps_a_margin_of_its_remaining_time(
    remaining_ms: int | None, expected: float
) -> None:
    budget = validator_budget(remaining_ms)
    assert budget.seconds == pytest.approx(expected)
    assert budget.label.startswith("the validator's")


def test_a_started_budget_counts_down_on_the_injected_clock() -> None:
    clock = Clock()
    run = RunBudget(10, "the test budget").start(clock)
    assert run.remaining() == pytest.approx(10) and run.allows() and not run.expired()
    clock.now += 9.9
    assert not run.allows(0.25) and not run.expired()
    clock.now += 0.1
    assert run.expired() and run.remaining() == pytest.approx(0)


def test_a_share_of_a_budget_names_what_it_is_for() -> None:
    part = RunBudget(75, "the validator's 75 s budget").part(0.5, "the new key")
    assert part.seconds == pytest.approx(37.5)
    assert "the validator's 75 s budget" in part.label and "the new key" in part.label


def test_every_check_bound_is_cut_to_what_is_left_of_the_run() -> None:
    own = Budget(connect_s=3, first_token_s=20, idle_s=20, total_s=30)
    assert own.within(100) == own
    assert own.within(2) == Budget(connect_s=2, first_token_s=2, idle_s=2, total_s=2)
    assert own.within(-1).total_s > 0  # never a zero or negative timeout


# --- a run that runs out still reports ----------------------------------------------------------


def run(
    replies: dict[str, Reply], budget_s: float, urls: tuple[str, ...] = (URL,)
) -> tuple[Report, FakeClient]:
    clock = Clock()
    client = FakeClient(clock, replies)
    config = EndpointConfig(llm_format=LlmFormat.OPENAI, urls=urls, model_name="m")
    report = run_conformance(
        config, KEY, HttpPort(ProbeHttpClient(client), Guard()), budget=RunBudget(budget_s, "the 5 s budget"),
        monotonic=clock,
    )  # fmt: skip
    return report, client


def test_a_drip_is_cut_by_the_run_budget_and_says_which_budget_ran_out() -> None:
    drip = Reply(chunks=[(1.0, b"data: {") for _ in range(60)])  # never ends on its own within 30 s
    report, client = run({KEY: drip, WRONG_KEY: UNAUTHORIZED}, budget_s=5)
    checks = by_id(report)
    status, message, hint = checks["stream_complete"]
    assert status == "fail" and "the 5 s budget ran out" in message
    assert hint and "too slow for the 5 s budget" in hint
    assert report.error_code == "upstream_timeout" and not report.compatible
    # The wrong-key probe had no time left: skipped, saying why.
    assert checks["auth_probe"][0] == "skip" and "the 5 s budget ran out" in checks["auth_probe"][1]
    assert len(client.calls) == 1
    # The read timeouts asked of the client never exceed what was left of the run.
    assert max(client.calls[0][2]) <= 5


def test_the_per_check_bound_still_applies_inside_a_larger_budget() -> None:
    drip = Reply(chunks=[(1.0, b"data: {") for _ in range(60)])
    report, _ = run({KEY: drip, WRONG_KEY: UNAUTHORIZED}, budget_s=50)
    status, message, _ = by_id(report)["stream_complete"]
    assert status == "fail" and "within 20 s" in message and "budget" not in message


def test_with_no_time_left_every_url_fails_on_the_budget_without_a_request() -> None:
    report, client = run({KEY: Reply(chunks=[(0, openai_stream())])}, budget_s=0.1)
    status, message, hint = by_id(report)["connection"]
    assert status == "fail" and "budget ran out" in message and hint
    assert not client.calls and not report.compatible


def test_a_url_that_hangs_past_the_deadline_is_reported_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "JOIN_GRACE_S", 0.05)
    release = threading.Event()

    class HangingGuard(Guard):
        def check(self, url: str) -> None:
            if "api0." in url:
                release.wait(30)  # a resolver that never answers

    config = EndpointConfig(llm_format=LlmFormat.OPENAI, urls=FIVE_URLS, model_name="m")
    client = FakeClient(Clock(), {KEY: Reply(chunks=[(0, openai_stream())]), WRONG_KEY: UNAUTHORIZED})
    try:
        report = run_conformance(
            config,
            KEY,
            HttpPort(ProbeHttpClient(client), HangingGuard()),
            budget=RunBudget(1.5, "the short budget"),
        )  # real clock: the report arrives although one URL never answers
    finally:
        release.set()
    checks = by_id(report)
    assert checks["connection"][0] == "fail" and "the short budget ran out" in checks["connection"][1]
    assert all(checks[f"connection@{n}"][0] == "pass" for n in range(2, 6))
    assert report.details and len(report.details["urls"]) == 5


# --- URLs are probed at once --------------------------------------------------------------------


def test_five_urls_are_probed_at_the_same_time() -> None:
    """Each fake answer waits until all five requests are in flight: probed one after another, the
    barrier would break (after its generous timeout) and every connection would fail."""
    barrier = threading.Barrier(5, timeout=20)

    class Meeting(FakeClient):
        @contextmanager
        def stream(self, method: str, url: str, *, content: bytes, headers: Mapping[str, str],
                   timeout: tuple[float, ...]) -> Iterator[FakeResponse]:  # fmt: skip
            if KEY in headers.get("Authorization", ""):
                barrier.wait()
            with super().stream(method, url, content=content, headers=headers, timeout=timeout) as response:
                yield response

    clock = Clock()
    client = Meeting(clock, {KEY: Reply(chunks=[(0, openai_stream())]), WRONG_KEY: UNAUTHORIZED})
    config = EndpointConfig(llm_format=LlmFormat.OPENAI, urls=FIVE_URLS, model_name="m")
    report = run_conformance(config, KEY, HttpPort(ProbeHttpClient(client), Guard()), monotonic=clock)
    assert report.compatible, [c.message for c in report.checks if c.status.value == "fail"]
    assert len(client.calls) == 15  # per URL: the probe, the wrong-key probe, the continuation probe
