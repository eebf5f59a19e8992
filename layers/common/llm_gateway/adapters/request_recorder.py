"""The stream app's request log writer: records in memory, written in batches, off the request path.

``stream_ended`` is called once per stream, after its last byte (or its error) went out: it takes
a lock, appends the record and returns (no I/O, nothing awaited). A daemon thread flushes every
``interval_s`` seconds, sooner once ``max_pending`` records wait: ``BatchWriteItem`` of 25 items at
a time (each record twice: the LLM's list and the session's) and one ``UpdateItem`` per LLM and
day for the usage counters. ``close()`` flushes what is left when the container shuts down.

A container that dies without its shutdown (killed, out of memory) loses the records it had not
flushed yet: at most one batch (``interval_s`` seconds or ``max_pending`` records). A flush that
fails is logged and dropped, like the health counters: a retry could count usage twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from llm_gateway.domain.request_log import LoggedRequest, RequestBatch
from llm_gateway.models.request_log import RequestRecord
from llm_gateway.observability import get_logger


class BufferedRequestLog:
    def __init__(
        self,
        write: Callable[[RequestBatch], object],
        *,
        interval_s: float = 10.0,
        max_pending: int = 100,
    ) -> None:
        self._write = write
        self._interval_s = max(0.05, interval_s)
        self._max_pending = max(1, max_pending)
        self._batch = RequestBatch()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Flushes and records written since the container started (``make bench`` reads them).
        self.flushes = self.written = 0

    def stream_ended(self, account_id: str | None, record: RequestRecord | None) -> None:
        """Keep one finished request of ``account_id`` (the session's account, which owns the LLM or
        uses a built-in)."""
        if not account_id or record is None:
            return
        with self._lock:
            self._batch.add(LoggedRequest(account_id, record))
            full = len(self._batch) >= self._max_pending
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="request-log-flush", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def flush_now(self) -> int:
        """Write what is pending now; returns how many records went out."""
        with self._flushing:
            with self._lock:
                batch, self._batch = self._batch, RequestBatch()
            if not len(batch):
                return 0
            try:
                self._write(batch)
            except Exception as exc:
                get_logger().warning(
                    "request records dropped", extra={"error_type": type(exc).__name__, "records": len(batch)}
                )
                return 0
            self.flushes += 1
            self.written += len(batch)
            return len(batch)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if not self._stopping:
                self.flush_now()

    def close(self, timeout_s: float = 1.0, *, flush: bool = True) -> None:
        """At shutdown: stop the thread and flush what is left; ``flush=False`` drops it (tests)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if flush:
            self.flush_now()
        else:
            with self._lock:
                self._batch = RequestBatch()
