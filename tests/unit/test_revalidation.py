"""Scheduled re-validation: every LLM once per interval, spread over it, never a staged key, and a
failing re-validation moves health, not status."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.domain.revalidation import (
    MAX_WINDOW_SECONDS,
    REVALIDATION_DUE,
    LlmKey,
    RevalidationScheduler,
    Revalidator,
    message_body,
    seconds_until_due,
)
from llm_gateway.domain.validation import CURRENT
from llm_gateway.models.health import HealthRecord
from llm_gateway.models.llm import LlmStatus, StoredLlm
from llm_gateway.models.report import Report

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
SIX_HOURS = 6 * 3600


class Candidates:
    def __init__(self, keys: list[LlmKey]) -> None:
        self.keys = keys

    def revalidation_candidates(self) -> Any:
        yield from self.keys


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[LlmKey, int]] = []
        self.calls = 0

    def enqueue(self, due: list[tuple[LlmKey, int]]) -> None:
        self.calls += 1
        self.sent.extend(due)


def _keys(n: int) -> list[LlmKey]:
    return [LlmKey(f"acct_{i % 7}", str(uuid.UUID(int=i * 7919 + 1)), 1) for i in range(n)]


def _run_interval(
    keys: list[LlmKey], interval_s: int, window_s: int, start: datetime = T0
) -> list[tuple[int, LlmKey, int]]:
    """Every window of one interval, as the schedule would run them: (window index, key, delay)."""
    out = []
    for index in range(interval_s // window_s):
        window_start = start + timedelta(seconds=index * window_s)
        queue = Queue()
        scheduler = RevalidationScheduler(Candidates(keys), queue, interval_s, now=lambda ws=window_start: ws)
        scheduler.enqueue_due(window_start, window_s)
        out += [(index, key, delay) for key, delay in queue.sent]
    return out


def test_each_llm_is_due_exactly_once_per_interval() -> None:
    keys = _keys(500)
    sent = _run_interval(keys, SIX_HOURS, MAX_WINDOW_SECONDS)
    assert Counter(key for _, key, _ in sent) == Counter(keys)


def test_the_fleet_is_spread_over_the_interval() -> None:
    keys = _keys(2400)
    per_window = Counter(index for index, _, _ in _run_interval(keys, SIX_HOURS, MAX_WINDOW_SECONDS))
    expected = len(keys) / (SIX_HOURS / MAX_WINDOW_SECONDS)  # 100 per window
    assert len(per_window) == SIX_HOURS // MAX_WINDOW_SECONDS
    assert all(0.5 * expected < count < 1.6 * expected for count in per_window.values()), per_window


def test_delays_fit_sqs_and_land_on_the_due_time() -> None:
    for index, key, delay in _run_interval(_keys(300), SIX_HOURS, MAX_WINDOW_SECONDS):
        assert 0 <= delay < MAX_WINDOW_SECONDS
        window_start = int(T0.timestamp()) + index * MAX_WINDOW_SECONDS
        assert seconds_until_due(key.llm_id, window_start, MAX_WINDOW_SECONDS, SIX_HOURS) == delay


def test_a_late_run_shortens_the_delays_instead_of_shifting_the_window() -> None:
    keys = _keys(200)
    queue = Queue()
    late = RevalidationScheduler(Candidates(keys), queue, SIX_HOURS, now=lambda: T0 + timedelta(seconds=60))
    late.enqueue_due(T0, MAX_WINDOW_SECONDS)
    on_time = Queue()
    RevalidationScheduler(Candidates(keys), on_time, SIX_HOURS, now=lambda: T0).enqueue_due(
        T0, MAX_WINDOW_SECONDS
    )
    assert queue.sent and {k for k, _ in queue.sent} == {k for k, _ in on_time.sent}
    for key, delay in queue.sent:
        due = seconds_until_due(key.llm_id, int(T0.timestamp()), MAX_WINDOW_SECONDS, SIX_HOURS)
        assert due is not None and delay == max(0, due - 60)


@settings(max_examples=25, deadline=None)
@given(interval=st.integers(min_value=1, max_value=4 * 3600), window=st.integers(min_value=1, max_value=900))
def test_any_interval_and_window_cover_each_llm_once(interval: int, window: int) -> None:
    window = min(window, interval)
    keys = _keys(40)
    rounds = -(-interval // window)
    seen: Counter[LlmKey] = Counter()
    for index in range(rounds):
        start = int(T0.timestamp()) + index * window
        for key in keys:
            width = min(window, interval - index * window)
            if seconds_until_due(key.llm_id, start, width, interval) is not None:
                seen[key] += 1
    assert seen == Counter(keys)


def test_messages_are_read_by_the_validator_like_bus_events() -> None:
    body = message_body(LlmKey("acct_1", "llm-1", 3))
    assert body["detail-type"] == REVALIDATION_DUE
    assert body["detail"] == {"accountId": "acct_1", "llmId": "llm-1", "version": 3}


def test_the_scheduler_sends_in_batches() -> None:
    queue = Queue()
    RevalidationScheduler(Candidates(_keys(1000)), queue, 900, now=lambda: T0, batch_size=100).enqueue_due(
        T0, 900
    )
    assert len(queue.sent) == 1000 and queue.calls == 10


# ---------------------------------------------------------------- the re-validation itself


def _llm(status: LlmStatus) -> StoredLlm:
    return StoredLlm.model_validate(
        {
            "id": "llm-1",
            "display_name": "prod",
            "llm_format": "openai",
            "urls": [{"url": "https://llm.example.com/v1/chat/completions"}],
            "model_name": "m",
            "status": status,
            "version": 4,
            "account_id": "acct_1",
            "secret_ref": "arn:secret",
        }
    )


def _report(ok: bool) -> Report:
    return Report(
        compatible=ok, llm_format="openai", endpoint="https://llm.example.com", checked_at=T0, checks=[]
    )


class Fakes:
    def __init__(self, status: LlmStatus, probe_ok: bool) -> None:
        self.llm = _llm(status)
        self.probe_ok = probe_ok
        self.stages_read: list[str] = []
        self.reports: list[Report] = []
        self.observed: list[bool] = []
        self.full_runs = 0

    def get(self, account_id: str, llm_id: str) -> StoredLlm | None:
        return self.llm

    def read(self, account_id: str, llm_id: str, secret_ref: str, stage: str = CURRENT) -> str:
        self.stages_read.append(stage)
        return "key"

    def add(self, account_id: str, llm_id: str, report: Report) -> None:
        self.reports.append(report)

    def observe_check(self, account_id: str, llm_id: str, report: Report) -> None:
        self.observed.append(report.compatible)

    def revalidator(self) -> Revalidator:
        def full(account_id: str, llm_id: str) -> Report:
            self.full_runs += 1
            return _report(True)

        return Revalidator(
            llms=self,
            reports=self,  # type: ignore[arg-type]
            credentials=self,  # type: ignore[arg-type]
            probe=lambda llm, key: _report(self.probe_ok),
            health=self,  # type: ignore[arg-type]
            full_validation=full,
        )


def test_a_failing_revalidation_of_a_valid_llm_moves_health_not_status() -> None:
    fakes = Fakes(LlmStatus.VALID, probe_ok=False)
    report = fakes.revalidator().revalidate("acct_1", "llm-1")
    assert report is not None and not report.compatible
    assert fakes.observed == [False]
    assert fakes.full_runs == 0
    assert fakes.reports[0].details == {"trigger": "schedule"}


def test_only_the_key_in_service_is_read() -> None:
    fakes = Fakes(LlmStatus.VALID, probe_ok=True)
    fakes.revalidator().revalidate("acct_1", "llm-1")
    assert fakes.stages_read == [CURRENT]


def test_an_invalid_llm_that_passes_gets_the_full_suite() -> None:
    fakes = Fakes(LlmStatus.INVALID, probe_ok=True)
    fakes.revalidator().revalidate("acct_1", "llm-1")
    assert fakes.full_runs == 1
    assert fakes.observed == [True, True]


def test_a_pending_llm_is_left_to_its_validation() -> None:
    fakes = Fakes(LlmStatus.PENDING, probe_ok=True)
    assert fakes.revalidator().revalidate("acct_1", "llm-1") is None
    assert not fakes.stages_read and not fakes.reports


class BackoffFakes(Fakes):
    """A health store whose record says how the last checks went."""

    def __init__(self, failures: int, checked_ago_s: float) -> None:
        super().__init__(LlmStatus.INVALID, probe_ok=False)
        self.record = HealthRecord(
            consecutive_failures=failures, last_checked_at=T0 - timedelta(seconds=checked_ago_s)
        )
        self.store = self

    def get_state(self, account_id: str, llm_id: str) -> HealthRecord:
        return self.record

    def revalidator(self) -> Revalidator:
        base = super().revalidator()
        base.interval_s, base.clock = 3600, lambda: T0
        return base


@pytest.mark.parametrize(
    ("failures", "checked_ago_s", "probed"),
    [
        (1, 3600, True),  # one failure: the base interval
        (2, 3600, False),  # two in a row: every 2 h, and 1 h has passed
        (2, 7200, True),
        (3, 7200, False),  # every 4 h
        (9, 16 * 3600 - 1000, True),  # at most 16 times the base
    ],
)
def test_a_failing_llm_backs_off(failures: int, checked_ago_s: float, probed: bool) -> None:
    fakes = BackoffFakes(failures, checked_ago_s)
    report = fakes.revalidator().revalidate("acct_1", "llm-1")
    assert (report is not None) is probed
    assert bool(fakes.reports) is probed
