"""The stream app's passive-health recorder: counts per LLM and bucket, written in batches.

``stream_ended`` is called once per stream, after its last byte went out; it bumps a few
counters under the lock and returns. The writing is ``PeriodicFlush``'s:
``HealthService.record_traffic`` (one ``UpdateItem`` per LLM and bucket, then the window
evaluation). Passive health is a best-effort signal: a flush that fails is logged and dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Sequence

from llm_gateway.adapters.periodic_flush import PeriodicFlush
from llm_gateway.domain.traffic import TrafficAggregator, TrafficCounts


class BufferedTrafficRecorder:
    def __init__(
        self,
        flush: Callable[[list[TrafficCounts]], object],
        *,
        interval_s: float = 10.0,
        max_pending: int = 100,
        skip_llms: Container[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._skip = skip_llms
        self._clock = clock
        self._aggregator = TrafficAggregator()
        self._flush = PeriodicFlush(
            drain=self._aggregator.drain, size=len, write=flush, name="traffic counters", unit="buckets",
            interval_s=interval_s, max_pending=max_pending,
        )  # fmt: skip

    def stream_ended(
        self,
        account_id: str | None,
        llm_id: str | None,
        outcome: str | None,
        ttft_ms: float | None,
        *,
        attempts: Sequence[tuple[int, bool]] = (),
        served: int | None = None,
    ) -> None:
        """Count one finished stream (built-ins and outcomes that say nothing about the LLM are not);
        ``attempts`` (URL index, failed) and ``served`` feed the per-URL counts."""
        if not account_id or not llm_id or llm_id in self._skip:
            return
        with self._flush.lock:
            now = self._clock()
            if self._aggregator.add(account_id, llm_id, outcome, ttft_ms, now, attempts, served):
                self._flush.added(self._aggregator.pending)

    def flush_now(self) -> int:
        """Write what is pending now; returns how many buckets went out."""
        return self._flush.flush_now()

    def close(self, timeout_s: float = 1.0, *, flush: bool = True) -> None:
        self._flush.close(timeout_s, flush=flush)
