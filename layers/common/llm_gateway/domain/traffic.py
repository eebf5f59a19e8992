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

from collections.abc import Iterable
from dataclasses import dataclass, field

from llm_gateway.errors import ErrorCode
from llm_gateway.models.health import HealthState, HealthWindow

#: ``OpenStream.outcome`` of a stream that ended properly (``domain.streaming.OUTCOME_OK``).
OUTCOME_OK = "ok"
BUCKET_SECONDS = 300
#: The passive signal looks at the current bucket and the two before it (10 to 15 minutes).
WINDOW_BUCKETS = 3
MIN_REQUESTS = 20
DEGRADED_ERROR_RATE = 0.2
FAILING_ERROR_RATE = 0.5

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

    def merge(self, other: TrafficCounts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for code, count in other.errors_by_code.items():
            self.errors_by_code[code] = self.errors_by_code.get(code, 0) + count
        self.ttft = [a + b for a, b in zip(self.ttft, other.ttft, strict=True)]


class TrafficAggregator:
    """In-memory counters of one container, drained by each flush (not thread-safe on its own)."""

    def __init__(self, bucket_seconds: int = BUCKET_SECONDS) -> None:
        self.bucket_seconds = bucket_seconds
        self._counts: dict[tuple[str, str, int], TrafficCounts] = {}
        self.pending = 0

    def add(
        self, account_id: str, llm_id: str, outcome: str | None, ttft_ms: float | None, at: float
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
    for bucket in buckets:
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
    )


def traffic_state(window: HealthWindow) -> HealthState:
    """≥ 50 % upstream errors over ≥ 20 requests: failing; ≥ 20 %: degraded; fewer requests: no verdict
    (healthy), so an LLM whose traffic stopped is judged by its re-validations alone."""
    if window.requests < MIN_REQUESTS or window.error_rate is None:
        return HealthState.HEALTHY
    if window.error_rate >= FAILING_ERROR_RATE:
        return HealthState.FAILING
    if window.error_rate >= DEGRADED_ERROR_RATE:
        return HealthState.DEGRADED
    return HealthState.HEALTHY
