"""The stream app's passive-health recorder: counts in memory, writes in batches, off the request path.

``stream_ended`` is called once per stream, after its last byte went out; it takes a lock, bumps
a few counters and returns: no I/O, nothing awaited. A daemon thread of the container flushes the
counters (``HealthService.record_traffic``: one ``UpdateItem`` per LLM and bucket, then the
window evaluation) every ``interval_s`` seconds, sooner once ``max_pending`` streams wait, and
``close()`` flushes what is left when the container shuts down. In Lambda the thread is frozen
between invocations with everything else and resumes on the next thaw.

A flush that fails is logged and dropped: passive health is a best-effort signal, and putting
half-written counters back would count them twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Sequence

from llm_gateway.domain.traffic import TrafficAggregator, TrafficCounts
from llm_gateway.observability import get_logger


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
        self._flush = flush
        self._interval_s = max(0.05, interval_s)
        self._max_pending = max(1, max_pending)
        self._skip = skip_llms
        self._clock = clock
        self._aggregator = TrafficAggregator()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

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
        with self._lock:
            now = self._clock()
            if not self._aggregator.add(account_id, llm_id, outcome, ttft_ms, now, attempts, served):
                return
            full = self._aggregator.pending >= self._max_pending
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="traffic-flush", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def flush_now(self) -> int:
        """Write what is pending now; returns how many buckets went out."""
        with self._flushing:
            with self._lock:
                batch = self._aggregator.drain()
            if not batch:
                return 0
            try:
                self._flush(batch)
            except Exception as exc:
                get_logger().warning(
                    "traffic counters dropped",
                    extra={"error_type": type(exc).__name__, "buckets": len(batch)},
                )
                return 0
            return len(batch)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if not self._stopping:
                self.flush_now()

    def close(self, timeout_s: float = 1.0, *, flush: bool = True) -> None:
        """At shutdown: stop the thread and flush what is left (Lambda allows a few hundred ms);
        ``flush=False`` drops it instead (tests that swap the whole environment)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if flush:
            self.flush_now()
        else:
            with self._lock:
                self._aggregator.drain()
