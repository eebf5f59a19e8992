"""Scheduled re-validation: which LLMs are due when, and what a re-validation does.

**When.** Every LLM whose ``status`` is ``valid`` or ``invalid`` (``pending`` ones are being
validated already) is re-validated once per interval (6 h by default). Its due time is a fixed
offset inside the interval, from a hash of its id, so the whole fleet is spread evenly over the
interval and no two runs of the schedule enqueue the same LLM. The schedule fires once per
*window* (15 minutes deployed: a message's ``DelaySeconds`` is at most 900 s); each run enqueues
the LLMs due inside its window, each delayed to its own due time. So every window holds about
``interval / window`` of the fleet, at most one window of delay per message, and a schedule
invocation lists the LLMs once, whatever the interval.

**What.** The light probe set (one streaming request per URL, no wrong-key probe) with the key
in service: a staged key is never read, let alone promoted. The report is stored like any other
(``GET /v1/llms/{id}/validation`` shows it, marked ``details.trigger = "schedule"``) and its verdict
feeds the LLM's health. ``status`` is the verdict on the config and only a full validation sets
it: a re-validation of a ``valid`` LLM that fails moves ``health``, not ``status``; one of an
``invalid`` LLM that passes (the customer fixed the endpoint without touching the config) runs the
full suite, which then decides ``status`` as a registration would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from llm_gateway.domain.health import HealthService, backoff_interval_s
from llm_gateway.domain.validation import CURRENT, CredentialReader, ReportRepository
from llm_gateway.models.llm import LlmStatus, StoredLlm
from llm_gateway.models.report import Report

REVALIDATION_DUE = "LLM Revalidation Due"
SCHEDULER_SOURCE = "llm-gateway.scheduler"
#: SQS ``DelaySeconds`` tops out at 15 minutes: the longest window one schedule run can cover.
MAX_WINDOW_SECONDS = 900


@dataclass(frozen=True)
class LlmKey:
    account_id: str
    llm_id: str
    version: int


class RevalidationCandidates(Protocol):
    def revalidation_candidates(self) -> Iterator[LlmKey]:
        """Every ``valid`` or ``invalid`` LLM of every account, page by page."""
        ...


class RevalidationMarks(Protocol):
    """At most one scheduled run queued per LLM (``adapters.shared_limits.DynamoRevalidationMarks``)."""

    def claim(self, account_id: str, llm_id: str, hold_s: float) -> bool: ...
    def clear(self, account_id: str, llm_id: str) -> None: ...


#: How long a claimed mark waits for its run beyond the message's delay (a run that died frees it).
MARK_HOLD_S = 900


class RevalidationQueue(Protocol):
    def enqueue(self, due: list[tuple[LlmKey, int]]) -> None:
        """Send one message per LLM, each delayed by its seconds (0..900)."""
        ...


def due_offset(llm_id: str, interval_s: int) -> int:
    """Where in every interval this LLM is due (seconds), stable for its whole life."""
    digest = hashlib.sha256(llm_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % max(1, interval_s)


def seconds_until_due(llm_id: str, window_start: int, window_s: int, interval_s: int) -> int | None:
    """Seconds from ``window_start`` to the LLM's due time, if that falls inside the window."""
    until = (due_offset(llm_id, interval_s) - window_start) % max(1, interval_s)
    return until if until < window_s else None


def message_body(key: LlmKey) -> dict[str, object]:
    """An EventBridge-shaped envelope, so the validator reads it like ``LLM Registered``."""
    return {
        "source": SCHEDULER_SOURCE,
        "detail-type": REVALIDATION_DUE,
        "detail": {"accountId": key.account_id, "llmId": key.llm_id, "version": key.version},
    }


@dataclass
class RevalidationScheduler:
    candidates: RevalidationCandidates
    queue: RevalidationQueue
    interval_s: int
    now: Callable[[], datetime]
    batch_size: int = 100
    #: Skips an LLM whose last scheduled run has not finished (a schedule of seconds, a backlog).
    marks: RevalidationMarks | None = None

    def enqueue_due(self, window_start: datetime, window_s: int) -> int:
        """Enqueue the LLMs due in ``[window_start, window_start + window_s)``; how many were sent."""
        window_s = max(1, min(window_s, MAX_WINDOW_SECONDS, self.interval_s))
        start = int(window_start.timestamp())
        late = max(0, int(self.now().timestamp()) - start)  # this run started after its window did
        sent = 0
        batch: list[tuple[LlmKey, int]] = []
        for key in self.candidates.revalidation_candidates():
            until = seconds_until_due(key.llm_id, start, window_s, self.interval_s)
            if until is None:
                continue
            delay = max(0, min(MAX_WINDOW_SECONDS, until - late))
            if self.marks is not None and not self.marks.claim(
                key.account_id, key.llm_id, delay + MARK_HOLD_S
            ):
                continue  # its previous run is still queued or running
            batch.append((key, delay))
            if len(batch) >= self.batch_size:
                self.queue.enqueue(batch)
                sent, batch = sent + len(batch), []
        if batch:
            self.queue.enqueue(batch)
            sent += len(batch)
        return sent


class LlmReader(Protocol):
    def get(self, account_id: str, llm_id: str) -> StoredLlm | None: ...


#: Runs the light probe set against a stored config with the given key.
LightProbe = Callable[[StoredLlm, str], Report]


@dataclass
class Revalidator:
    llms: LlmReader
    reports: ReportRepository
    credentials: CredentialReader
    probe: LightProbe
    health: HealthService
    #: The full validation (``Validator.validate``): run when an ``invalid`` LLM passes again.
    full_validation: Callable[[str, str], Report | None]
    #: The schedule's interval (seconds): a failing LLM is probed only every ``backoff_interval_s``.
    interval_s: int = 0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def revalidate(self, account_id: str, llm_id: str) -> Report | None:
        """``None`` when there is nothing to re-validate (deleted, pending validation, or backing
        off: it failed its last checks and its longer interval has not passed)."""
        llm = self.llms.get(account_id, llm_id)
        if llm is None or llm.status is LlmStatus.PENDING or self._backing_off(account_id, llm_id):
            return None
        key = self.credentials.read(account_id, llm_id, llm.secret_ref, CURRENT)
        report = self.probe(llm, key)
        report.details = (report.details or {}) | {"trigger": "schedule"}
        self.reports.add(account_id, llm_id, report)
        self.health.observe_check(account_id, llm_id, report)
        if llm.status is LlmStatus.INVALID and report.compatible:
            full = self.full_validation(account_id, llm_id)
            self.after_validation(account_id, llm_id, full)
            return full or report
        return report

    def _backing_off(self, account_id: str, llm_id: str) -> bool:
        if not self.interval_s:
            return False
        record = self.health.store.get_state(account_id, llm_id)
        if record is None or record.last_checked_at is None:
            return False
        wait = backoff_interval_s(self.interval_s, record.consecutive_failures)
        since = (self.clock() - record.last_checked_at).total_seconds()
        return wait > self.interval_s and since < wait - self.interval_s / 2

    def after_validation(self, account_id: str, llm_id: str, report: Report | None) -> None:
        """A full validation's verdict is a check too (a fixed config recovers at once)."""
        if report is not None:
            self.health.observe_check(account_id, llm_id, report)
