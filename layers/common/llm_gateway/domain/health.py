"""An LLM's health from two signals, and the ``LlmHealthChanged`` event when it moves.

- **Checks**: every conformance run against the stored config (scheduled re-validations and
  validations). One failure: ``degraded``; three in a row: ``failing``; a pass resets the count.
- **Traffic**: the last 15 minutes of real streams (``domain.traffic``): ≥ 20 % upstream errors
  over ≥ 20 requests: ``degraded``; ≥ 50 %: ``failing``.

The state is the worse of the two, so it recovers by itself once both are good again. Whoever
observes a signal (the validator after a check, any stream container after a flush) reads the
window from the shared counters, computes the new record and writes it conditionally on the
revision it read: with many containers evaluating at once, exactly one write moves the state,
and only that writer announces it. A lost race is simply evaluated again on fresh data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from llm_gateway.domain.ports import EventPublisher, VersionConflict
from llm_gateway.domain.traffic import (
    BUCKET_SECONDS,
    WINDOW_BUCKETS,
    TrafficCounts,
    summarize,
    traffic_state,
    troubled_url,
)
from llm_gateway.models.health import (
    CheckOutcome,
    FailedCheck,
    HealthBucket,
    HealthRecord,
    HealthState,
    HealthWindow,
    LlmHealth,
    LlmHealthHistory,
)
from llm_gateway.models.report import CheckStatus, Report

LLM_HEALTH_CHANGED = "LlmHealthChanged"
FAILING_AFTER_CHECKS = 3
MAX_FAILED_CHECKS_SHOWN = 5
_WRITE_ATTEMPTS = 4
Signal = Literal["check", "traffic"]


class HealthStore(Protocol):
    def get_state(self, account_id: str, llm_id: str) -> HealthRecord | None: ...
    def put_state(self, account_id: str, llm_id: str, record: HealthRecord, expected_revision: int) -> None:
        """Write ``record`` unless the stored revision moved on (``VersionConflict``)."""
        ...

    def add_traffic(self, batch: Iterable[TrafficCounts]) -> None:
        """Add each bucket's counters atomically (concurrent containers add to the same bucket)."""
        ...

    def buckets(self, account_id: str, llm_id: str, since: int) -> list[TrafficCounts]:
        """The buckets of one LLM that start at ``since`` (epoch seconds) or later, oldest first."""
        ...


def check_state(consecutive_failures: int) -> HealthState:
    if consecutive_failures >= FAILING_AFTER_CHECKS:
        return HealthState.FAILING
    return HealthState.DEGRADED if consecutive_failures else HealthState.HEALTHY


def check_outcome(report: Report) -> CheckOutcome:
    failed = [c for c in report.checks if c.status is CheckStatus.FAIL][:MAX_FAILED_CHECKS_SHOWN]
    return CheckOutcome(
        checked_at=report.checked_at,
        compatible=report.compatible,
        error_code=report.error_code,
        failed_checks=[FailedCheck(id=c.id, message=c.message, hint=c.hint) for c in failed],
    )


def _settled(before: HealthRecord, after: HealthRecord, now: datetime) -> HealthRecord:
    state = HealthState.worst(check_state(after.consecutive_failures), after.traffic_state)
    since = after.since if state is before.state and after.since else now
    return after.model_copy(update={"state": state, "since": since})


def apply_check(
    record: HealthRecord, outcome: CheckOutcome, window: HealthWindow, now: datetime
) -> HealthRecord:
    """A probe's verdict, with the traffic window read at the same time (both signals stay fresh)."""
    failures = 0 if outcome.compatible else record.consecutive_failures + 1
    after = record.model_copy(
        update={
            "consecutive_failures": failures,
            "last_check": outcome,
            "last_checked_at": outcome.checked_at,
            "traffic_state": traffic_state(window),
            "traffic_evaluated_at": now,
            "window": window,
        }
    )
    return _settled(record, after, now)


def apply_traffic(record: HealthRecord, window: HealthWindow, now: datetime) -> HealthRecord:
    after = record.model_copy(
        update={"traffic_state": traffic_state(window), "traffic_evaluated_at": now, "window": window}
    )
    return _settled(record, after, now)


def _moved_by(before: HealthRecord, after: HealthRecord, observer: Signal) -> Signal:
    """The signal whose verdict moved the state. A check reads the traffic window too: when it
    finds the counters of another container's flush worse before that flush's own evaluation, the
    move is the traffic's, though the check's writer announces it."""
    check_moved = check_state(before.consecutive_failures) is not check_state(after.consecutive_failures)
    traffic_moved = before.traffic_state is not after.traffic_state
    if traffic_moved != check_moved:
        return "traffic" if traffic_moved else "check"
    return observer


def reason(record: HealthRecord, signal: Signal) -> str:
    """One sentence a customer can act on: which signal moved the state, and what it saw."""
    window, check = record.window, record.last_check
    traffic_bad = record.traffic_state is not HealthState.HEALTHY
    check_bad = record.consecutive_failures > 0 and check is not None
    if record.state is HealthState.HEALTHY:
        return "The last check passed and real traffic is healthy."
    if check_bad and (signal == "check" or not traffic_bad):
        failed = check.failed_checks[0].message if check and check.failed_checks else "a check failed"
        count = record.consecutive_failures
        lead = f"{count} checks in a row failed" if count > 1 else "A check failed"
        return f"{lead}: {failed}"
    codes = ", ".join(f"{code} x{n}" for code, n in window.errors_by_code.items())
    rate = round((window.error_rate or 0) * 100)
    failing = f"{rate}% of {window.requests} requests in the last 15 minutes failed upstream ({codes})."
    url = troubled_url(window)
    if url is None:
        return failing
    others = [u for u in window.urls if u.index != url.index and u.served]
    served = max(others, key=lambda u: u.served, default=None)
    if served is None and window.errors_by_code:
        return failing  # no other URL answered: the requests' own failures say it all
    rescued = f", served by urls[{served.index}]" if served is not None else ""
    lead = f"urls[{url.index}]: {url.failed} of {url.attempts} attempts failed{rescued}."
    return f"{lead} {failing}" if window.errors_by_code else lead


@dataclass(frozen=True)
class HealthChange:
    account_id: str
    llm_id: str
    previous: HealthState
    record: HealthRecord
    signal: Signal

    def detail(self) -> dict[str, Any]:
        """The ``LlmHealthChanged`` event detail (and the webhook's ``data``): never a secret or evidence."""
        record = self.record
        return {
            "accountId": self.account_id,
            "llmId": self.llm_id,
            "previousState": self.previous.value,
            "state": record.state.value,
            "since": record.since.isoformat() if record.since else None,
            "signal": self.signal,
            "reason": reason(record, self.signal),
            "consecutiveFailedChecks": record.consecutive_failures,
            "lastCheck": record.last_check.to_json_dict() if record.last_check else None,
            "window": record.window.to_json_dict(),
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: A failing LLM's re-validations thin out: from its second failed check in a row, each one doubles
#: its interval, up to this many times the base (6 h -> 96 h by default); a pass resets it.
MAX_BACKOFF_FACTOR = 16


def backoff_interval_s(interval_s: int, consecutive_failures: int) -> int:
    """How often an LLM with that many failed checks in a row is re-validated."""
    factor: int = min(MAX_BACKOFF_FACTOR, 2 ** max(0, consecutive_failures - 1))
    return interval_s * factor


@dataclass
class HealthService:
    store: HealthStore
    events: EventPublisher
    now: Callable[[], datetime] = _utcnow
    bucket_seconds: int = BUCKET_SECONDS
    #: The re-validation schedule's base interval (seconds), to say each LLM's in its health.
    revalidation_interval_s: int | None = None

    def window(self, account_id: str, llm_id: str, now: datetime) -> HealthWindow:
        current = int(now.timestamp()) // self.bucket_seconds * self.bucket_seconds
        since = current - (WINDOW_BUCKETS - 1) * self.bucket_seconds
        return summarize(self.store.buckets(account_id, llm_id, since))

    def observe_check(self, account_id: str, llm_id: str, report: Report) -> HealthChange | None:
        outcome = check_outcome(report)
        return self._update(
            account_id, llm_id, "check", lambda rec, win, now: apply_check(rec, outcome, win, now)
        )

    def record_traffic(self, batch: list[TrafficCounts]) -> list[HealthChange]:
        """A flush: add the counters, then evaluate each LLM the batch touched."""
        if not batch:
            return []
        self.store.add_traffic(batch)
        touched = dict.fromkeys((c.account_id, c.llm_id) for c in batch)
        changes = [self._update(account, llm, "traffic", apply_traffic) for account, llm in touched]
        return [change for change in changes if change is not None]

    def _update(
        self,
        account_id: str,
        llm_id: str,
        signal: Signal,
        step: Callable[[HealthRecord, HealthWindow, datetime], HealthRecord],
    ) -> HealthChange | None:
        for _ in range(_WRITE_ATTEMPTS):
            now = self.now()
            current = self.store.get_state(account_id, llm_id) or HealthRecord()
            updated = step(current, self.window(account_id, llm_id, now), now)
            if signal == "traffic" and _same_verdict(current, updated):
                return None  # nothing moved: no write (each flush of each container lands here)
            updated = updated.model_copy(update={"revision": current.revision + 1})
            try:
                self.store.put_state(account_id, llm_id, updated, expected_revision=current.revision)
            except VersionConflict:
                continue  # another container wrote first: evaluate again on what it wrote
            if updated.state is current.state:
                return None
            change = HealthChange(
                account_id, llm_id, current.state, updated, _moved_by(current, updated, signal)
            )
            self.events.publish(LLM_HEALTH_CHANGED, change.detail())
            return change
        return None

    def summary(self, account_id: str, llm_id: str) -> LlmHealth:
        """``health`` on the LLM object: the stored state with the window as it is now."""
        record = self.store.get_state(account_id, llm_id) or HealthRecord()
        interval = self.revalidation_interval_s
        return LlmHealth(
            state=record.state,
            since=record.since,
            last_checked_at=record.last_checked_at,
            window=self.window(account_id, llm_id, self.now()),
            revalidation_interval_seconds=(
                backoff_interval_s(interval, record.consecutive_failures) if interval else None
            ),
        )

    def history(self, account_id: str, llm_id: str, hours: int) -> LlmHealthHistory:
        now = self.now()
        since = int((now - timedelta(hours=hours)).timestamp()) // self.bucket_seconds * self.bucket_seconds
        buckets = [
            HealthBucket(start=datetime.fromtimestamp(b.bucket_start, UTC), **summarize([b]).model_dump())
            for b in self.store.buckets(account_id, llm_id, since)
        ]
        return LlmHealthHistory(
            **self.summary(account_id, llm_id).model_dump(),
            hours=hours,
            bucket_seconds=self.bucket_seconds,
            buckets=buckets,
        )


def _same_verdict(before: HealthRecord, after: HealthRecord) -> bool:
    return before.state is after.state and before.traffic_state is after.traffic_state
