"""Write what the stream app gathered in memory, in batches, off the request path.

The passive-health counters and the request log both keep what each finished stream adds under a
lock (no I/O, nothing awaited) and leave the writing to one daemon thread of the container: every
``interval_s`` seconds, sooner once ``max_pending`` items wait, and once more at shutdown
(``close``). In Lambda the thread is frozen between invocations with everything else and resumes
on the next thaw. A write that fails is logged and dropped, never put back: a retry of
half-written counters would count them twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from llm_gateway.observability import get_logger

Batch = TypeVar("Batch")


class PeriodicFlush(Generic[Batch]):
    def __init__(
        self,
        *,
        drain: Callable[[], Batch],
        size: Callable[[Batch], int],
        write: Callable[[Batch], object],
        name: str,
        unit: str,
        interval_s: float = 10.0,
        max_pending: int = 100,
    ) -> None:
        self._drain, self._size, self._write = drain, size, write
        self._name, self._unit = name, unit
        self._interval_s = max(0.05, interval_s)
        self._max_pending = max(1, max_pending)
        #: Held while an item is added or the pending batch is taken.
        self.lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Flushes and items written since the container started (``make bench`` reads them).
        self.flushes = self.written = 0

    def added(self, pending: int) -> None:
        """Call with ``lock`` held, after adding: starts the thread; a full batch goes out now."""
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-flush", daemon=True)
            self._thread.start()
        if pending >= self._max_pending:
            self._wake.set()

    def flush_now(self) -> int:
        """Write what is pending now; returns how many items went out."""
        with self._flushing:
            with self.lock:
                batch = self._drain()
            count = self._size(batch)
            if not count:
                return 0
            try:
                self._write(batch)
            except Exception as exc:
                get_logger().warning(
                    f"{self._name} dropped", extra={"error_type": type(exc).__name__, self._unit: count}
                )
                return 0
            self.flushes += 1
            self.written += count
            return count

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if not self._stopping:
                self.flush_now()

    def close(self, timeout_s: float = 1.0, *, flush: bool = True) -> None:
        """At shutdown: stop the thread and write what is left (Lambda allows a few hundred ms);
        ``flush=False`` drops it instead (tests that swap the whole environment)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if flush:
            self.flush_now()
        else:
            with self.lock:
                self._drain()
