"""The request log: one record per stream request for the account that owns the LLM, and token
usage per LLM and UTC day. Pure: the stream app hands each finished request to a recorder (an
adapter) that buffers here and writes batches after the streams ended; the API reads through
``RequestLogService``.

A record never holds content, prompts, system prompts, headers or keys: only ids the gateway
made (request, session), the client label the account gave the session, the outcome, statuses,
timings, attempt facts and the token counts the upstream reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from llm_gateway.domain.traffic import OUTCOME_OK, TTFT_BINS, quantile, ttft_bin
from llm_gateway.errors import BadRequest, NotFound
from llm_gateway.models.request_log import LlmUsage, RequestPage, RequestRecord, TokenUsage, UsageDay

MAX_PAGE = 100
DEFAULT_RETENTION_DAYS = 7
_CURSOR = re.compile(r"^\d{13}#[A-Za-z0-9_.:-]{1,100}$")


def token_usage(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    """OpenAI's ``usage`` object (the Gemini relay converts ``usageMetadata`` into it) as counts."""
    if not isinstance(usage, Mapping):
        return None

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    prompt, completion = count("prompt_tokens"), count("completion_tokens")
    return TokenUsage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=count("total_tokens") or prompt + completion,
    )


@dataclass(frozen=True)
class LoggedRequest:
    """A record and the account it belongs to (the LLM's owner)."""

    account_id: str
    record: RequestRecord


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


@dataclass
class UsageCounts:
    """One LLM's counters for one UTC day: what a flush adds, and what the usage route reads back."""

    account_id: str
    llm_id: str
    day: date
    requests: int = 0
    errors: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    ttft: list[int] = field(default_factory=lambda: [0] * TTFT_BINS)

    @property
    def key(self) -> tuple[str, str, date]:
        return self.account_id, self.llm_id, self.day

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        if record.outcome != OUTCOME_OK:
            self.errors += 1
            self.errors_by_code[record.outcome] = self.errors_by_code.get(record.outcome, 0) + 1
        if record.usage is not None:
            self.input_tokens += record.usage.input_tokens
            self.output_tokens += record.usage.output_tokens
        if record.ttft_ms is not None and record.outcome == OUTCOME_OK:
            self.ttft[ttft_bin(record.ttft_ms)] += 1

    def merge(self, other: UsageCounts) -> None:
        """Another shard's counters of the same LLM and day."""
        self.requests += other.requests
        self.errors += other.errors
        for code, count in other.errors_by_code.items():
            self.errors_by_code[code] = self.errors_by_code.get(code, 0) + count
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.ttft = [a + b for a, b in zip(self.ttft, other.ttft, strict=True)]

    def to_day(self) -> UsageDay:
        return UsageDay(
            day=self.day,
            requests=self.requests,
            errors=self.errors,
            errors_by_code=dict(sorted(self.errors_by_code.items())),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            ttft_p50_ms=quantile(self.ttft, 0.5),
            ttft_p95_ms=quantile(self.ttft, 0.95),
        )


class RequestBatch:
    """One container's records and day counters since the last flush (not thread-safe on its own)."""

    def __init__(self) -> None:
        self.records: list[LoggedRequest] = []
        self.usage: dict[tuple[str, str, date], UsageCounts] = {}

    def add(self, logged: LoggedRequest) -> None:
        self.records.append(logged)
        record = logged.record
        key = (logged.account_id, record.llm_id, day_of(record.at))
        counts = self.usage.get(key)
        if counts is None:
            counts = self.usage[key] = UsageCounts(*key)
        counts.add(record)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class RequestQuery:
    """Filters of a request list: a time range, an outcome, a session; a page size and cursor."""

    since: datetime
    until: datetime
    outcome: str | None = None
    session_id: str | None = None
    limit: int = 50
    cursor: str | None = None


def check_cursor(cursor: str | None) -> str | None:
    """A cursor is the sort key of the last record of the previous page (opaque to clients)."""
    if cursor is not None and not _CURSOR.match(cursor):
        raise BadRequest("The cursor is not one this API returned.", code="invalid_cursor")
    return cursor


class RequestLogStore(Protocol):
    def put(self, batch: RequestBatch) -> None:
        """Write the records and add the day counters (concurrent containers add to the same day)."""
        ...

    def llm_requests(
        self, account_id: str, llm_id: str, query: RequestQuery, active_days: Iterable[date]
    ) -> RequestPage:
        """Newest first, across every partition of the days that saw traffic."""
        ...

    def session_requests(self, account_id: str, session_id: str, query: RequestQuery) -> RequestPage: ...

    def usage(self, account_id: str, llm_id: str, since: date) -> list[UsageCounts]:
        """The day counters from ``since`` on, oldest first."""
        ...


class SessionOwner(Protocol):
    def owns_session(self, account_id: str, session_id: str) -> bool: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RequestLogService:
    """The API's reads. The caller has checked the LLM belongs to the account (404 otherwise)."""

    store: RequestLogStore
    sessions: SessionOwner
    retention_days: int = DEFAULT_RETENTION_DAYS
    now: Any = _utcnow

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RequestQuery:
        now = self.now()
        until = min(until or now, now)
        since = max(
            since or now - timedelta(days=self.retention_days), now - timedelta(days=self.retention_days)
        )
        if since > until:
            raise BadRequest("`since` is after `until`.", code="invalid_time_range")
        return RequestQuery(
            since, until, outcome, session_id, max(1, min(limit, MAX_PAGE)), check_cursor(cursor)
        )

    def llm_requests(self, account_id: str, llm_id: str, query: RequestQuery) -> RequestPage:
        active = [
            c.day
            for c in self.store.usage(account_id, llm_id, day_of(query.since))
            if c.requests and c.day <= day_of(query.until)
        ]
        return self.store.llm_requests(account_id, llm_id, query, reversed(active))

    def session_requests(self, account_id: str, session_id: str, query: RequestQuery) -> RequestPage:
        """Another account's session (or none at all) is a 404, like every other id."""
        page = self.store.session_requests(account_id, session_id, query)
        if not page.data and query.cursor is None and not self.sessions.owns_session(account_id, session_id):
            raise NotFound(f"No session with id {session_id!r}.", code="session_not_found")
        return page

    def usage(self, account_id: str, llm_id: str, days: int) -> LlmUsage:
        today = day_of(self.now())
        first = today - timedelta(days=days - 1)
        stored = {c.day: c for c in self.store.usage(account_id, llm_id, first)}
        data = [
            (stored.get(day) or UsageCounts(account_id, llm_id, day)).to_day()
            for day in (first + timedelta(days=n) for n in range(days))
        ]
        return LlmUsage(
            llm_id=llm_id,
            days=days,
            data=data,
            requests=sum(d.requests for d in data),
            input_tokens=sum(d.input_tokens for d in data),
            output_tokens=sum(d.output_tokens for d in data),
        )
