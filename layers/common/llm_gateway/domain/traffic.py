"""Passive health from real traffic: what a finished stream counts for, per LLM and 5-minute bucket.

Pure: the stream app hands each finished stream to a recorder (an adapter) that aggregates here
in memory and flushes batches; nothing here does I/O.

Which outcomes count (README, "Health"):

- ``requests`` counts every stream that reached for the LLM: answered (``ok``), failed by the
  upstream, cut by the client (``client_disconnected``) or by our own deadline (``gateway_deadline``).
- ``errors`` counts only upstream errors: every ``upstream_*`` code and ``endpoint_blocked`` (the
  endpoint's host now resolves somewhere the gateway may not call). A client that goes away, our
  own deadline, and errors of our own before the upstream was called (a bad token, a body we
  refuse, ``loop_detected``) say nothing about the LLM: the first two count as requests only, the
  last are not counted at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llm_gateway.errors import ErrorCode
from llm_gateway.models.health import HealthState, HealthWindow, UrlWindow

#: ``OpenStream.outcome`` of a stream that ended properly (``domain.streaming.OUTCOME_OK``).
OUTCOME_OK = "ok"
BUCKET_SECONDS = 300
#: The passive signal looks at the current bucket and the two before it (10 to 15 minutes).
WINDOW_BUCKETS = 3
MIN_REQUESTS = 20
DEGRADED_ERROR_RATE = 0.2
FAILING_ERROR_RATE = 0.5
#: A URL whose attempts fail this often (over at least this many) makes the LLM ``degraded`` even
#: when another URL rescued every request: the caller paid for it in time.
URL_DEGRADED_FAILURE_RATE = 0.2
URL_MIN_ATTEMPTS = 10

UPSTREAM_ERRORS = frozenset(
    {code for code in ErrorCode if code.value.startswith("upstream_")} | {ErrorCode.ENDPOINT_BLOCKED}
)
#: Counted as requests, never as errors: the LLM was not at fault.
NOT_THE_UPSTREAM = frozenset({ErrorCode.CLIENT_DISCONNECTED, ErrorCode.GATEWAY_DEADLINE})
#: Upper bounds (ms) of the time-to-first-token histogram; a last bin holds everything slower.
TTFT_BOUNDS_MS: tuple[float, ...] = (100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
TTFT_BINS = len(TTFT_BOUNDS_MS) + 1


def classify(outcome: str | None) -> tuple[bool, str | None]:
    """``(counted, error_code)`` for a stream's outcome (see the module docstring)."""
    if outcome == OUTCOME_OK or outcome in NOT_THE_UPSTREAM:
        return True, None
    if outcome in UPSTREAM_ERRORS:
        return True, outcome
    return False, None


def ttft_bin(ttft_ms: float) -> int:
    for index, bound in enumerate(TTFT_BOUNDS_MS):
        if ttft_ms < bound:
            return index
    return len(TTFT_BOUNDS_MS)


def quantile(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a TTFT histogram, interpolated inside its bin; ``None`` when empty.
    The open last bin answers its lower bound (the true value is at least that)."""
    total = sum(histogram)
    if not total:
        return None
    target = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= target:
            lower = TTFT_BOUNDS_MS[index - 1] if index else 0.0
            if index >= len(TTFT_BOUNDS_MS):
                return float(lower)
            upper = TTFT_BOUNDS_MS[index]
            return round(lower + (upper - lower) * max(0.0, target - seen) / count, 1)
        seen += count
    return float(TTFT_BOUNDS_MS[-1])  # pragma: no cover - the loop always reaches the target


def bucket_start(epoch_s: float, bucket_seconds: int = BUCKET_SECONDS) -> int:
    return int(epoch_s // bucket_seconds) * bucket_seconds


@dataclass
class TrafficCounts:
    """One LLM's counters for one bucket: what a flush adds to the table, and what it reads back."""

    account_id: str
    llm_id: str
    bucket_start: int
    requests: int = 0
    errors: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    ttft: list[int] = field(default_factory=lambda: [0] * TTFT_BINS)
    #: Per registered URL index: attempts, failed attempts, and streams it served.
    url_attempts: dict[int, int] = field(default_factory=dict)
    url_failures: dict[int, int] = field(default_factory=dict)
    url_served: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.account_id, self.llm_id, self.bucket_start

    def add(self, error_code: str | None, ttft_ms: float | None) -> None:
        self.requests += 1
        if error_code is not None:
            self.errors += 1
            self.errors_by_code[error_code] = self.errors_by_code.get(error_code, 0) + 1
        if ttft_ms is not None:
            self.ttft[ttft_bin(ttft_ms)] += 1

    def add_attempts(self, attempts: Sequence[tuple[int, bool]], served: int | None) -> None:
        """``attempts``: (URL index, failed) per upstream attempt; ``served``: the URL that answered."""
        for index, failed in attempts:
            self.url_attempts[index] = self.url_attempts.get(index, 0) + 1
            if failed:
                self.url_failures[index] = self.url_failures.get(index, 0) + 1
        if served is not None:
            self.url_served[served] = self.url_served.get(served, 0) + 1

    def merge(self, other: TrafficCounts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for code, count in other.errors_by_code.items():
            self.errors_by_code[code] = self.errors_by_code.get(code, 0) + count
        self.ttft = [a + b for a, b in zip(self.ttft, other.ttft, strict=True)]
        for mine, theirs in (
            (self.url_attempts, other.url_attempts),
            (self.url_failures, other.url_failures),
            (self.url_served, other.url_served),
        ):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count


class TrafficAggregator:
    """In-memory counters of one container, drained by each flush (not thread-safe on its own)."""

    def __init__(self, bucket_seconds: int = BUCKET_SECONDS) -> None:
        self.bucket_seconds = bucket_seconds
        self._counts: dict[tuple[str, str, int], TrafficCounts] = {}
        self.pending = 0

    def add(
        self,
        account_id: str,
        llm_id: str,
        outcome: str | None,
        ttft_ms: float | None,
        at: float,
        attempts: Sequence[tuple[int, bool]] = (),
        served: int | None = None,
    ) -> bool:
        """Count one finished stream; False when its outcome does not count (see ``classify``)."""
        counted, error_code = classify(outcome)
        if not counted:
            return False
        start = bucket_start(at, self.bucket_seconds)
        key = (account_id, llm_id, start)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = TrafficCounts(account_id, llm_id, start)
        counts.add(error_code, ttft_ms)
        counts.add_attempts(attempts, served)
        self.pending += 1
        return True

    def merge(self, batch: Iterable[TrafficCounts]) -> None:
        """Put counts back (a flush that failed), to go out with the next one."""
        for counts in batch:
            mine = self._counts.get(counts.key)
            if mine is None:
                self._counts[counts.key] = counts
            else:
                mine.merge(counts)
            self.pending += counts.requests

    def drain(self) -> list[TrafficCounts]:
        batch, self._counts, self.pending = list(self._counts.values()), {}, 0
        return batch


def summarize(buckets: Iterable[TrafficCounts]) -> HealthWindow:
    """Requests, error rate, TTFT p50/p95 and errors by code over some buckets together."""
    requests = errors = 0
    by_code: dict[str, int] = {}
    histogram = [0] * TTFT_BINS
    per_url = TrafficCounts("", "", 0)
    for bucket in buckets:
        per_url.merge(TrafficCounts("", "", 0, url_attempts=bucket.url_attempts,
                                    url_failures=bucket.url_failures, url_served=bucket.url_served))  # fmt: skip
        requests += bucket.requests
        errors += bucket.errors
        for code, count in bucket.errors_by_code.items():
            by_code[code] = by_code.get(code, 0) + count
        histogram = [a + b for a, b in zip(histogram, bucket.ttft, strict=True)]
    return HealthWindow(
        requests=requests,
        error_rate=round(errors / requests, 4) if requests else None,
        ttft_p50_ms=quantile(histogram, 0.5),
        ttft_p95_ms=quantile(histogram, 0.95),
        errors_by_code=dict(sorted(by_code.items())),
        urls=[
            UrlWindow(
                index=index,
                attempts=count,
                failed=per_url.url_failures.get(index, 0),
                served=per_url.url_served.get(index, 0),
            )
            for index, count in sorted(per_url.url_attempts.items())
        ],
    )


def troubled_url(window: HealthWindow) -> UrlWindow | None:
    """The URL failing most, when it fails often enough to matter (see ``URL_DEGRADED_FAILURE_RATE``)."""
    troubled = [
        u for u in window.urls
        if u.attempts >= URL_MIN_ATTEMPTS and u.failed / u.attempts >= URL_DEGRADED_FAILURE_RATE
    ]  # fmt: skip
    return max(troubled, key=lambda u: u.failed / u.attempts, default=None)


def traffic_state(window: HealthWindow) -> HealthState:
    """≥ 50 % upstream errors over ≥ 20 requests: failing; ≥ 20 % (or one URL failing ≥ 20 % of its
    attempts while another rescued them): degraded; fewer requests: no verdict
    (healthy), so an LLM whose traffic stopped is judged by its re-validations alone."""
    if window.requests < MIN_REQUESTS or window.error_rate is None:
        return HealthState.HEALTHY
    if window.error_rate >= FAILING_ERROR_RATE:
        return HealthState.FAILING
    if window.error_rate >= DEGRADED_ERROR_RATE or troubled_url(window) is not None:
        return HealthState.DEGRADED
    return HealthState.HEALTHY
