"""The stream app's request log writer: one record per finished stream, written in batches.

``stream_ended`` is called once per stream, after its last byte (or its error) went out; the
writing is ``PeriodicFlush``'s: ``BatchWriteItem`` of 25 items at a time (each record twice: the
LLM's list and the session's) and one ``UpdateItem`` per LLM and day for the usage counters.

A container that dies without its shutdown (killed, out of memory) loses the records it had not
flushed yet: at most one batch (``interval_s`` seconds or ``max_pending`` records). A flush that
fails is logged and dropped, like the health counters: a retry could count usage twice.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_gateway.adapters.periodic_flush import PeriodicFlush
from llm_gateway.domain.request_log import LoggedRequest, RequestBatch
from llm_gateway.models.request_log import RequestRecord


class BufferedRequestLog:
    def __init__(
        self,
        write: Callable[[RequestBatch], object],
        *,
        interval_s: float = 10.0,
        max_pending: int = 100,
    ) -> None:
        self._batch = RequestBatch()
        self._flush = PeriodicFlush(
            drain=self._take, size=len, write=write, name="request records", unit="records",
            interval_s=interval_s, max_pending=max_pending,
        )  # fmt: skip

    def _take(self) -> RequestBatch:
        batch, self._batch = self._batch, RequestBatch()
        return batch

    @property
    def flushes(self) -> int:
        return self._flush.flushes

    @property
    def written(self) -> int:
        return self._flush.written

    def stream_ended(self, account_id: str | None, record: RequestRecord | None) -> None:
        """Keep one finished request of ``account_id`` (the session's account, which owns the LLM or
        uses a built-in)."""
        if not account_id or record is None:
            return
        with self._flush.lock:
            self._batch.add(LoggedRequest(account_id, record))
            self._flush.added(len(self._batch))

    def flush_now(self) -> int:
        """Write what is pending now; returns how many records went out."""
        return self._flush.flush_now()

    def close(self, timeout_s: float = 1.0, *, flush: bool = True) -> None:
        self._flush.close(timeout_s, flush=flush)
