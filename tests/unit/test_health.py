"""Health: what a stream counts for, the TTFT histogram, and the state machine over both signals."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.adapters.traffic_recorder import BufferedTrafficRecorder
from llm_gateway.domain import streaming
from llm_gateway.domain.health import (
    LLM_HEALTH_CHANGED,
    HealthService,
    apply_check,
    apply_traffic,
    check_outcome,
)
from llm_gateway.domain.ports import VersionConflict
from llm_gateway.domain.traffic import (
    OUTCOME_OK,
    TTFT_BINS,
    TTFT_BOUNDS_MS,
    TrafficAggregator,
    TrafficCounts,
    classify,
    quantile,
    summarize,
    traffic_state,
    ttft_bin,
)
from llm_gateway.errors import ErrorCode
from llm_gateway.models.health import CheckOutcome, HealthRecord, HealthState, HealthWindow
from llm_gateway.models.report import Check, CheckCategory, CheckStatus, Report

HEALTHY, DEGRADED, FAILING = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.FAILING
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


# ---------------------------------------------------------------- what counts


def test_ok_is_the_stream_apps_own_outcome() -> None:
    assert OUTCOME_OK == streaming.OUTCOME_OK


@pytest.mark.parametrize("code", [c for c in ErrorCode if c.value.startswith("upstream_")])
def test_every_upstream_code_is_an_error(code: ErrorCode) -> None:
    assert classify(code) == (True, code)


def test_a_blocked_endpoint_is_the_llms_problem() -> None:
    assert classify("endpoint_blocked") == (True, "endpoint_blocked")


@pytest.mark.parametrize("outcome", ["ok", "client_disconnected", "gateway_deadline"])
def test_streams_the_llm_answered_or_that_we_cut_count_without_an_error(outcome: str) -> None:
    assert classify(outcome) == (True, None)


@pytest.mark.parametrize(
    "outcome", ["token_expired", "validation_error", "loop_detected", "internal_error", "unknown", None]
)
def test_our_own_refusals_do_not_count_at_all(outcome: str | None) -> None:
    assert classify(outcome) == (False, None)


def test_the_aggregator_keeps_llms_and_buckets_apart() -> None:
    agg = TrafficAggregator(bucket_seconds=300)
    at = T0.timestamp()
    assert agg.add("a", "llm1", "ok", 120.0, at)
    assert agg.add("a", "llm1", "upstream_timeout", None, at + 10)
    assert agg.add("a", "llm1", "ok", 80.0, at + 300)  # the next bucket
    assert agg.add("a", "llm2", "upstream_server_error", None, at)
    assert not agg.add("a", "llm2", "token_expired", None, at)
    assert agg.pending == 4
    batch = {(c.llm_id, c.bucket_start): c for c in agg.drain()}
    assert agg.pending == 0 and agg.drain() == []
    first = batch[("llm1", int(at))]
    assert (first.requests, first.errors, first.errors_by_code) == (2, 1, {"upstream_timeout": 1})
    assert sum(first.ttft) == 1 and first.ttft[ttft_bin(120.0)] == 1
    assert batch[("llm1", int(at) + 300)].requests == 1
    assert batch[("llm2", int(at))].errors_by_code == {"upstream_server_error": 1}


# ---------------------------------------------------------------- the histogram


def test_bins_are_upper_bound_exclusive() -> None:
    assert ttft_bin(0) == 0
    assert ttft_bin(99.9) == 0
    assert ttft_bin(100) == 1
    assert ttft_bin(TTFT_BOUNDS_MS[-1]) == TTFT_BINS - 1
    assert ttft_bin(60_000) == TTFT_BINS - 1


def test_quantiles_of_an_empty_histogram_are_unknown() -> None:
    assert quantile([0] * TTFT_BINS, 0.5) is None


def test_quantiles_interpolate_inside_the_bin() -> None:
    histogram = [0] * TTFT_BINS
    histogram[ttft_bin(300)] = 100  # all in [250, 500)
    assert quantile(histogram, 0.5) == pytest.approx(375.0)
    assert quantile(histogram, 0.95) == pytest.approx(487.5)


def test_p95_sees_a_slow_tail_that_p50_does_not() -> None:
    histogram = [0] * TTFT_BINS
    histogram[ttft_bin(150)] = 90
    histogram[ttft_bin(4000)] = 10
    p50, p95 = quantile(histogram, 0.5), quantile(histogram, 0.95)
    assert p50 is not None and 100 <= p50 < 250
    assert p95 is not None and 3000 <= p95 < 5000


def test_the_open_last_bin_answers_its_lower_bound() -> None:
    histogram = [0] * TTFT_BINS
    histogram[-1] = 3
    assert quantile(histogram, 0.95) == TTFT_BOUNDS_MS[-1]


@given(st.lists(st.floats(min_value=0, max_value=20_000), min_size=1, max_size=200))
def test_a_quantile_falls_in_the_bin_of_the_true_value(samples: list[float]) -> None:
    histogram = [0] * TTFT_BINS
    for value in samples:
        histogram[ttft_bin(value)] += 1
    for q in (0.5, 0.95):
        estimate = quantile(histogram, q)
        true = sorted(samples)[max(0, -(-int(q * len(samples) * 1000) // 1000) - 1)]
        assert estimate is not None
        low = TTFT_BOUNDS_MS[ttft_bin(true) - 1] if ttft_bin(true) else 0
        high = TTFT_BOUNDS_MS[ttft_bin(true)] if ttft_bin(true) < len(TTFT_BOUNDS_MS) else float("inf")
        assert low <= estimate <= high


def test_summaries_add_buckets_up() -> None:
    one = TrafficCounts("a", "l", 0, requests=10, errors=3, errors_by_code={"upstream_timeout": 3})
    two = TrafficCounts("a", "l", 300, requests=10, errors=1, errors_by_code={"upstream_timeout": 1})
    window = summarize([one, two])
    assert (window.requests, window.error_rate, window.errors_by_code) == (20, 0.2, {"upstream_timeout": 4})
    assert summarize([]) == HealthWindow()


# ---------------------------------------------------------------- the traffic signal


def _window(requests: int, errors: int) -> HealthWindow:
    return HealthWindow(requests=requests, error_rate=errors / requests if requests else None)


@pytest.mark.parametrize(
    ("requests", "errors", "state"),
    [
        (19, 19, HEALTHY),  # too few requests for a verdict
        (20, 3, HEALTHY),
        (20, 4, DEGRADED),  # exactly 20 %
        (100, 49, DEGRADED),
        (20, 10, FAILING),  # exactly 50 %
        (0, 0, HEALTHY),
    ],
)
def test_traffic_thresholds(requests: int, errors: int, state: HealthState) -> None:
    assert traffic_state(_window(requests, errors)) is state


# ---------------------------------------------------------------- the state machine


def _outcome(ok: bool, at: datetime = T0) -> CheckOutcome:
    return CheckOutcome(checked_at=at, compatible=ok, error_code=None if ok else "upstream_server_error")


def _checks(record: HealthRecord, *results: bool) -> list[HealthState]:
    states = []
    for index, ok in enumerate(results):
        record = apply_check(record, _outcome(ok), HealthWindow(), T0 + timedelta(minutes=index))
        states.append(record.state)
    return states


def test_one_failed_check_degrades_three_in_a_row_fail_a_pass_recovers() -> None:
    assert _checks(HealthRecord(), False, False, False, True) == [DEGRADED, DEGRADED, FAILING, HEALTHY]


def test_a_pass_in_between_resets_the_count() -> None:
    assert _checks(HealthRecord(), False, False, True, False, False) == [
        DEGRADED, DEGRADED, HEALTHY, DEGRADED, DEGRADED,
    ]  # fmt: skip


def test_the_state_is_the_worse_of_the_two_signals() -> None:
    record = apply_traffic(HealthRecord(), _window(40, 25), T0)
    assert record.state is FAILING
    record = apply_check(record, _outcome(True), _window(40, 25), T0)
    assert record.state is FAILING, "a passing check does not hide failing traffic"
    record = apply_check(record, _outcome(False), _window(40, 2), T0)
    assert record.state is DEGRADED, "traffic recovered; the failed check still degrades"
    record = apply_check(record, _outcome(True), _window(40, 2), T0)
    assert record.state is HEALTHY


def test_since_moves_only_when_the_state_does() -> None:
    record = apply_check(HealthRecord(), _outcome(False), HealthWindow(), T0)
    assert record.since == T0
    later = apply_check(record, _outcome(False), HealthWindow(), T0 + timedelta(hours=1))
    assert later.state is DEGRADED and later.since == T0
    failing = apply_check(later, _outcome(False), HealthWindow(), T0 + timedelta(hours=2))
    assert failing.since == T0 + timedelta(hours=2)


def _report(ok: bool) -> Report:
    check = Check(
        id="http_status",
        category=CheckCategory.ENDPOINT,
        status=CheckStatus.PASS if ok else CheckStatus.FAIL,
        message="HTTP 200" if ok else "HTTP 500 (upstream_server_error): boom",
        hint=None if ok else "Check the server's logs.",
        evidence="secret-looking evidence",
    )
    return Report(
        compatible=ok,
        llm_format="openai",
        endpoint="https://llm.example.com/v1/chat/completions",
        checked_at=T0,
        error_code=None if ok else "upstream_server_error",
        checks=[check],
    )


def test_a_check_outcome_keeps_what_broke_and_never_the_evidence() -> None:
    outcome = check_outcome(_report(False))
    assert outcome.failed_checks[0].message.startswith("HTTP 500")
    assert outcome.failed_checks[0].hint == "Check the server's logs."
    assert "evidence" not in outcome.model_dump_json()


# ---------------------------------------------------------------- the service, many containers


class MemoryStore:
    def __init__(self) -> None:
        self.record: HealthRecord | None = None
        self.buckets_: list[TrafficCounts] = []
        self.conflicts = 0
        self.writes = 0

    def get_state(self, account_id: str, llm_id: str) -> HealthRecord | None:
        return self.record

    def put_state(self, account_id: str, llm_id: str, record: HealthRecord, expected_revision: int) -> None:
        current = self.record.revision if self.record else 0
        if self.conflicts:
            self.conflicts -= 1
            raise VersionConflict(llm_id)
        if current != expected_revision:
            raise VersionConflict(llm_id)
        self.record = record
        self.writes += 1

    def add_traffic(self, batch: Any) -> None:
        self.buckets_.extend(batch)

    def buckets(self, account_id: str, llm_id: str, since: int) -> list[TrafficCounts]:
        return [b for b in self.buckets_ if b.bucket_start >= since]


class Events:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: Any) -> None:
        self.published.append((detail_type, dict(detail)))


def _service(store: MemoryStore, events: Events, now: datetime = T0) -> HealthService:
    return HealthService(store=store, events=events, now=lambda: now)


def _bucket(requests: int, errors: int, start: datetime = T0) -> TrafficCounts:
    return TrafficCounts(
        "acct",
        "llm",
        int(start.timestamp()),
        requests,
        errors,
        {"upstream_server_error": errors} if errors else {},
    )


def test_a_change_is_announced_once_with_what_broke() -> None:
    store, events = MemoryStore(), Events()
    service = _service(store, events)
    change = service.observe_check("acct", "llm", _report(False))
    assert change is not None and change.previous is HEALTHY and change.record.state is DEGRADED
    assert service.observe_check("acct", "llm", _report(False)) is None  # still degraded: no event
    assert [t for t, _ in events.published] == [LLM_HEALTH_CHANGED]
    detail = events.published[0][1]
    assert detail | {"since": None, "window": None} == detail | {
        "accountId": "acct", "llmId": "llm", "previousState": "healthy", "state": "degraded",
        "signal": "check", "since": None, "window": None,
    }  # fmt: skip
    assert detail["lastCheck"]["failedChecks"][0]["hint"] == "Check the server's logs."
    assert detail["reason"].startswith("A check failed: HTTP 500")


def test_traffic_flushes_that_change_nothing_write_nothing() -> None:
    store, events = MemoryStore(), Events()
    service = _service(store, events)
    assert service.record_traffic([_bucket(5, 0)]) == []
    assert service.record_traffic([_bucket(5, 0)]) == []
    assert store.writes == 0 and not events.published


def test_traffic_moves_the_state_and_says_why() -> None:
    store, events = MemoryStore(), Events()
    service = _service(store, events)
    changes = service.record_traffic([_bucket(25, 13)])
    assert [c.record.state for c in changes] == [FAILING]
    assert events.published[0][1]["reason"].startswith("52% of 25 requests")
    assert events.published[0][1]["window"]["errorsByCode"] == {"upstream_server_error": 13}


def test_a_lost_race_is_evaluated_again_and_announced_by_one_writer_only() -> None:
    store, events = MemoryStore(), Events()
    store.conflicts = 2  # two other containers wrote first
    change = _service(store, events).record_traffic([_bucket(25, 13)])
    assert len(change) == 1 and store.writes == 1 and len(events.published) == 1


def test_a_second_container_seeing_the_same_window_announces_nothing() -> None:
    store, events = MemoryStore(), Events()
    first, second = _service(store, events), _service(store, events)
    first.record_traffic([_bucket(25, 13)])
    second.record_traffic([_bucket(1, 1)])  # same window, still failing
    assert len(events.published) == 1


def test_old_buckets_leave_the_window_so_traffic_recovers() -> None:
    store, events = MemoryStore(), Events()
    _service(store, events).record_traffic([_bucket(25, 13)])
    later = _service(store, events, now=T0 + timedelta(minutes=20))
    change = later.record_traffic([_bucket(30, 0, start=T0 + timedelta(minutes=20))])
    assert [c.record.state for c in change] == [HEALTHY]
    assert events.published[-1][1]["previousState"] == "failing"


# ---------------------------------------------------------------- the stream app's recorder


class Flushes:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[TrafficCounts]] = []
        self.fail = fail
        self.flushed = threading.Event()

    def __call__(self, batch: list[TrafficCounts]) -> None:
        self.batches.append(batch)
        self.flushed.set()
        if self.fail:
            raise RuntimeError("throttled")

    @property
    def requests(self) -> int:
        return sum(c.requests for batch in self.batches for c in batch)


def test_recording_does_no_io_and_a_full_buffer_wakes_the_flush() -> None:
    flushes = Flushes()
    recorder = BufferedTrafficRecorder(flushes, interval_s=3600, max_pending=5)
    for _ in range(4):
        recorder.stream_ended("acct", "llm", "ok", 100.0)
    assert flushes.batches == []  # nothing written on the request's side
    recorder.stream_ended("acct", "llm", "upstream_timeout", None)
    assert flushes.flushed.wait(5), "a full buffer is flushed without waiting for the interval"
    assert flushes.requests == 5
    recorder.close()


def test_the_interval_flushes_what_is_pending() -> None:
    flushes = Flushes()
    recorder = BufferedTrafficRecorder(flushes, interval_s=0.05, max_pending=1000)
    recorder.stream_ended("acct", "llm", "ok", 100.0)
    assert flushes.flushed.wait(5)
    recorder.close()
    assert flushes.requests == 1


def test_shutdown_flushes_the_rest() -> None:
    flushes = Flushes()
    recorder = BufferedTrafficRecorder(flushes, interval_s=3600)
    recorder.stream_ended("acct", "llm", "ok", 100.0)
    recorder.close()
    assert flushes.requests == 1


def test_builtins_anonymous_requests_and_our_own_refusals_are_not_recorded() -> None:
    flushes = Flushes()
    recorder = BufferedTrafficRecorder(flushes, interval_s=3600, skip_llms={"ANAM_GPT_4O_MINI_V1"})
    recorder.stream_ended("acct", "ANAM_GPT_4O_MINI_V1", "ok", 100.0)
    recorder.stream_ended(None, None, "token_missing", None)
    recorder.stream_ended("acct", "llm", "validation_error", None)
    recorder.close()
    assert flushes.batches == []


def test_a_failed_flush_is_dropped_not_retried() -> None:
    flushes = Flushes(fail=True)
    recorder = BufferedTrafficRecorder(flushes, interval_s=3600)
    recorder.stream_ended("acct", "llm", "ok", 100.0)
    assert recorder.flush_now() == 0
    assert recorder.flush_now() == 0 and len(flushes.batches) == 1
    recorder.close()


# ---------------------------------------------------------------- per URL: a rescued failure counts


def test_a_url_that_fails_while_another_rescues_makes_the_llm_degraded_naming_the_url() -> None:
    store, events = MemoryStore(), Events()
    service = _service(store, events)
    bucket = _bucket(20, 0)
    for index in range(20):  # every request answered; urls[0] failed 12 times, urls[1] rescued them
        failed = index < 12
        attempts = [(0, True), (1, False)] if failed else [(0, False)]
        bucket.add_attempts(attempts, served=1 if failed else 0)
    changes = service.record_traffic([bucket])
    assert [c.record.state for c in changes] == [DEGRADED]
    detail = events.published[0][1]
    assert detail["reason"] == "urls[0]: 12 of 20 attempts failed, served by urls[1]."
    assert detail["window"]["errorRate"] == 0
    assert detail["window"]["urls"] == [
        {"index": 0, "attempts": 20, "failed": 12, "served": 8},
        {"index": 1, "attempts": 12, "failed": 0, "served": 12},
    ]


def test_a_url_failing_now_and_then_is_no_verdict() -> None:
    bucket = _bucket(30, 0)
    bucket.add_attempts([(0, True)] * 2 + [(0, False)] * 28, served=0)
    assert traffic_state(summarize([bucket])) is HEALTHY


def test_per_url_counts_survive_the_aggregator_and_merge() -> None:
    aggregator = TrafficAggregator()
    aggregator.add("acct", "llm", "ok", 100.0, 1000.0, [(0, True), (1, False)], 1)
    aggregator.add("acct", "llm", "ok", 100.0, 1001.0, [(0, False)], 0)
    (counts,) = aggregator.drain()
    assert (counts.url_attempts, counts.url_failures, counts.url_served) == (
        {0: 2, 1: 1},
        {0: 1},
        {1: 1, 0: 1},
    )


def test_a_passing_check_that_finds_bad_traffic_announces_the_traffic() -> None:
    """The counters of a flush are visible before that flush evaluates them: a check in between
    moves the state, and the event must still name the signal that moved it."""
    store, events = MemoryStore(), Events()
    service = _service(store, events)
    store.add_traffic([_bucket(25, 6)])  # 24 % upstream errors, not evaluated yet
    change = service.observe_check("acct", "llm", _report(True))
    assert change is not None and change.record.state is DEGRADED
    assert events.published[0][1]["signal"] == "traffic"
    assert events.published[0][1]["reason"].startswith("24% of 25 requests")
