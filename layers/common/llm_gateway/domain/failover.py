"""Attempt orchestration before the first byte: failover, backoff and the hedged first token.

Rules (README, "When an upstream fails"):

- a failure that is not the request's fault (5xx, 429, 408, connect/reset/TLS/protocol errors, no
  headers or no first token within the attempt's budget) moves to the next URL at once; going
  back to a URL that failed waits for its ``Retry-After`` (at most ``max_retry_wait_s``, longer
  means "not in this request") or a jittered backoff; a URL that used its whole first-token budget
  is not tried again in the same request (the caller already waited that long for it);
- a request the upstream refused as invalid (400, 413, 422, context length, content filter) is
  not retried anywhere; 401, 403, 404 (one URL's own configuration) move on, never back;
- when the running attempt has no first output after its URL's hedge delay, the same request
  also starts on the next URL; the first to produce output wins and the other is closed at once.
  At most one hedge per request, and only before the client has a byte (this is all before it).

Attempts stay within ``Limits.max_attempts`` (at least one per URL) and the request's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.providers.base import StreamRelay
from llm_gateway.providers.request import UpstreamRequest

from .streaming import (
    AttemptRecord,
    AttemptSummary,
    Limits,
    OpenStream,
    Timings,
    UpstreamFailure,
    UpstreamTransport,
    try_once,
)

Sleep = Callable[[float], Awaitable[None]]
Classify = Callable[[int, bytes, Mapping[str, str]], tuple[str, float | None]]

#: The upstream refused the request itself: every URL (and a retry) would refuse it the same way.
REQUEST_FAULTS = frozenset(
    {
        ErrorCode.UPSTREAM_BAD_REQUEST,
        ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED,
        ErrorCode.UPSTREAM_CONTENT_FILTERED,
    }
)
#: One URL's own configuration (key, model, path, address): the next URL may work, this one won't.
CONFIG_FAULTS = frozenset(
    {ErrorCode.UPSTREAM_UNAUTHORIZED, ErrorCode.UPSTREAM_MODEL_NOT_FOUND, ErrorCode.ENDPOINT_BLOCKED}
)


class FailureKind(StrEnum):
    REQUEST = "request"  # stop: the request is at fault
    CONFIG = "config"  # next URL, never back
    SPENT = "spent"  # the attempt used its whole first-token budget: next URL, never back
    TRANSIENT = "transient"  # next URL, back after Retry-After or jittered backoff
    FATAL = "fatal"  # stop: a loop


def failure_kind(failure: UpstreamFailure) -> FailureKind:
    code, status = failure.code, failure.upstream_status
    if code == ErrorCode.LOOP_DETECTED:
        return FailureKind.FATAL
    if status in (404, 405) or code in CONFIG_FAULTS:
        return FailureKind.CONFIG
    if code in REQUEST_FAULTS:
        return FailureKind.REQUEST
    if failure.budget_spent:
        return FailureKind.SPENT
    return FailureKind.TRANSIENT


def jitter_s(attempt: int) -> float:
    """Full jitter: uniform in [0, min(1 s, 0.1 s * 2**attempt)]."""
    return random.uniform(0, min(1.0, 0.1 * 2**attempt))


@dataclass
class AttemptPlan:
    """Which URL goes next, and when. ``calls`` are in the order to try (ranked by the proxy)."""

    size: int
    limits: Limits
    clock: Callable[[], float]
    used: int = 0
    ready_at: list[float] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ready_at = [0.0] * self.size
        self.closed = [False] * self.size

    @property
    def budget(self) -> int:
        return max(self.limits.max_attempts, self.size)

    def failed(self, index: int, failure: UpstreamFailure, kind: FailureKind) -> None:
        if kind is not FailureKind.TRANSIENT:
            self.closed[index] = True
            return
        wait = failure.retry_after_s if failure.retry_after_s is not None else jitter_s(self.used)
        if wait > self.limits.max_retry_wait_s:
            self.closed[index] = True  # it asked for longer than a caller can wait
        self.ready_at[index] = self.clock() + wait

    def next(self, busy: Sequence[int] = (), *, ready_now: bool = False) -> tuple[int, float] | None:
        """The next URL and how long to wait for it; None when no attempt is left."""
        if self.used >= self.budget:
            return None
        now = self.clock()
        open_ = [i for i in range(self.size) if not self.closed[i] and i not in busy]
        if ready_now:
            open_ = [i for i in open_ if self.ready_at[i] <= now]
        if not open_:
            return None
        index = min(open_, key=lambda i: (self.ready_at[i], i))
        wait = max(0.0, self.ready_at[index] - now)
        if now + wait >= self.limits.deadline:
            return None
        return index, wait


@dataclass
class _Attempts:
    """The attempt tasks of one request (at most two at a time: the first and its hedge)."""

    calls: Sequence[UpstreamRequest]
    start_attempt: Callable[[UpstreamRequest, Timings], Coroutine[Any, Any, OpenStream]]
    registered: Sequence[int]
    clock: Callable[[], float]
    summary: AttemptSummary = field(default_factory=AttemptSummary)
    running: dict[asyncio.Task[OpenStream], tuple[int, AttemptRecord, Timings]] = field(default_factory=dict)

    def start(self, index: int, *, hedge: bool = False) -> None:
        record = AttemptRecord(url_index=self.registered[index], started=self.clock(), hedge=hedge)
        timings = Timings(started=record.started)
        self.summary.attempts.append(record)
        self.summary.hedged = self.summary.hedged or hedge
        task = _start_eagerly(self.start_attempt(self.calls[index], timings))
        self.running[task] = (index, record, timings)

    async def close(self, on_attempt: Callable[[AttemptRecord], None] | None) -> None:
        """Cancel what still runs (the loser of a hedge); a loser that had opened its stream is
        closed, so the upstream sees the connection go."""
        running = list(self.running.items())
        self.running.clear()
        for task, _ in running:
            task.cancel()
        for task, (_, record, _) in running:
            record.cancelled = True
            with contextlib.suppress(BaseException):
                opened = await task
                opened.response.close()
            _report(on_attempt, record)


def _start_eagerly(coro: Coroutine[Any, Any, OpenStream]) -> asyncio.Task[OpenStream]:
    """The attempt as a task (a hedge may run beside it). On Python 3.12+ it starts at once and runs
    up to its first wait, so the request goes out in this loop turn; 3.11 schedules it."""
    if sys.version_info >= (3, 12):
        eager: dict[str, Any] = {"loop": asyncio.get_running_loop(), "eager_start": True}
        return asyncio.Task(coro, **eager)
    return asyncio.ensure_future(coro)


async def open_stream(
    calls: Sequence[UpstreamRequest],
    transport: UpstreamTransport,
    make_relay: Callable[[], StreamRelay],
    limits: Limits,
    classify: Classify,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_attempt: Callable[[AttemptRecord], None] | None = None,
    hedge_delays: Sequence[float | None] = (),
    registered: Sequence[int] | None = None,
) -> OpenStream:
    """The first URL (in ``calls`` order) to produce output, under the rules above.

    ``hedge_delays[i]``: seconds without output from ``calls[i]`` before the hedge starts (None or
    missing: no hedge). ``registered[i]``: the registered index of ``calls[i]`` (for the summary).
    ``on_attempt`` sees every finished attempt (URL health, ranking, hedge delays). Raises
    ``UpstreamFailure`` with the last failure when every attempt failed.
    """
    plan = AttemptPlan(len(calls), limits, clock)
    attempts = _Attempts(
        calls,
        lambda call, timings: try_once(call, transport, make_relay, limits, classify, timings, clock),
        registered if registered is not None else range(len(calls)),
        clock,
    )
    last: UpstreamFailure | None = None
    try:
        while True:
            if not attempts.running:
                step = plan.next()
                if step is None:
                    assert last is not None
                    raise last
                index, wait = step
                if wait:
                    await sleep(wait)
                plan.used += 1
                attempts.start(index)
            done = await _wait(attempts, plan, hedge_delays, clock)
            opened, failure = _settle(done, attempts, plan, on_attempt)
            if opened is not None:
                return opened
            last = failure or last
    except UpstreamFailure as failure:
        failure.summary = attempts.summary  # what was tried, for the log line and URL health
        raise
    finally:
        await attempts.close(on_attempt)


async def _wait(
    attempts: _Attempts,
    plan: AttemptPlan,
    hedge_delays: Sequence[float | None],
    clock: Callable[[], float],
) -> set[asyncio.Task[OpenStream]]:
    """The attempts that finished; starts the hedge when its delay passes first."""
    hedge_at = _hedge_at(attempts, hedge_delays)
    while True:
        timeout = None if hedge_at is None else max(0.0, hedge_at - clock())
        done, _ = await asyncio.wait(attempts.running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if done:
            return done
        hedge_at = None
        busy = [index for index, _, _ in attempts.running.values()]
        step = plan.next(busy, ready_now=True)
        if step is not None:
            plan.used += 1
            attempts.start(step[0], hedge=True)


def _hedge_at(attempts: _Attempts, hedge_delays: Sequence[float | None]) -> float | None:
    if attempts.summary.hedged or len(attempts.running) != 1:
        return None
    ((index, record, _),) = attempts.running.values()
    delay = hedge_delays[index] if index < len(hedge_delays) else None
    return None if delay is None or delay <= 0 else record.started + delay


def _settle(
    done: set[asyncio.Task[OpenStream]],
    attempts: _Attempts,
    plan: AttemptPlan,
    on_attempt: Callable[[AttemptRecord], None] | None,
) -> tuple[OpenStream | None, UpstreamFailure | None]:
    """The winner among ``done`` (the others' streams closed), or the last failure seen."""
    winner: OpenStream | None = None
    failure: UpstreamFailure | None = None
    for task in done:
        index, record, timings = attempts.running.pop(task)
        error = task.exception()
        if error is None:
            opened = task.result()
            if winner is not None:
                record.cancelled = True
                opened.response.close()  # both produced output in the same turn: one wins
            else:
                record.first_output = timings.first_output
                winner = opened
                _finish_summary(opened, attempts.summary, record)
        elif isinstance(error, UpstreamFailure):
            record.code, record.upstream_status = error.code, error.upstream_status
            kind = failure_kind(error)
            plan.failed(index, error, kind)
            failure = error
            if kind in (FailureKind.REQUEST, FailureKind.FATAL) and winner is None:
                _report(on_attempt, record)
                raise error
        else:
            raise error
        _report(on_attempt, record)
    return winner, failure


def _report(on_attempt: Callable[[AttemptRecord], None] | None, record: AttemptRecord) -> None:
    if on_attempt is not None:
        on_attempt(record)


def _finish_summary(opened: OpenStream, summary: AttemptSummary, record: AttemptRecord) -> None:
    summary.url_index = record.url_index
    timings = opened.timings
    timings.summary = summary
    timings.started = summary.attempts[0].started
    timings.attempts, timings.url_index = len(summary.attempts), record.url_index
