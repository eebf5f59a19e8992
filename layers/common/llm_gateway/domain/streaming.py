"""The relay: one upstream call (with retries and failover before the first byte) streamed out as
OpenAI SSE. Framework-free async code: the ASGI app (or a future native Lambda stream) drives it.

Rules (DESIGN.md §3): before the first byte every failure is a JSON error with a real status;
after it, a final ``data: {"error": …}`` event and close, never a clean end. Retries happen only
before the first byte. Silence gets a ``: ping`` every 15 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llm_gateway.errors import ERROR_TABLE, ErrorCode, GatewayError
from llm_gateway.providers.base import StreamRelay
from llm_gateway.providers.request import UpstreamRequest

PING = b": ping\n\n"
#: ``OpenStream.outcome`` of a stream that ended properly; any other outcome is an ``ErrorCode``.
OUTCOME_OK = "ok"
PING_INTERVAL_S = 15.0
MAX_ERROR_BODY = 64 * 1024
RETRIABLE_STATUSES = frozenset({429, 502, 503, 504})

#: Gateway status for each upstream failure code, before the first byte.
MESSAGES: dict[str, str] = {
    ErrorCode.UPSTREAM_UNAUTHORIZED: "The LLM endpoint rejected the stored credentials.",
    ErrorCode.UPSTREAM_MODEL_NOT_FOUND: "The LLM endpoint does not know the configured model or deployment.",
    ErrorCode.UPSTREAM_RATE_LIMITED: "The LLM endpoint is rate limiting requests; retry later.",
    ErrorCode.UPSTREAM_BAD_REQUEST: "The LLM endpoint rejected the request as invalid.",
    ErrorCode.UPSTREAM_SERVER_ERROR: "The LLM endpoint failed while answering.",
    ErrorCode.UPSTREAM_TIMEOUT: "The LLM endpoint did not answer in time.",
    ErrorCode.UPSTREAM_UNREACHABLE: "The LLM endpoint could not be reached.",
    ErrorCode.UPSTREAM_PROTOCOL_ERROR: "The LLM endpoint sent a stream the gateway could not read.",
    ErrorCode.ENDPOINT_BLOCKED: "The LLM endpoint resolves to an address the gateway does not call.",
    ErrorCode.LOOP_DETECTED: "The request came back to this gateway: the LLM endpoint points at it.",
    ErrorCode.GATEWAY_DEADLINE: "The answer was cut off at the gateway's time limit.",
}


class UpstreamFailure(GatewayError):
    """A failure attributed to the customer's LLM endpoint; never carries upstream text."""

    def __init__(
        self,
        code: str,
        *,
        retry_after_s: float | None = None,
        retriable: bool = False,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(MESSAGES.get(code, "The LLM endpoint failed."), code=code)
        entry = ERROR_TABLE.get(code)
        # The stream's own status for the code (a URL refused at stream time is the endpoint's fault).
        self.status = (entry.stream_status or entry.status) if entry is not None else 502
        self.retry_after_s = retry_after_s
        #: The HTTP status the upstream answered, when it answered at all (for the request log).
        self.upstream_status = upstream_status
        #: Safe to try again before the first byte: nothing was generated (connect error, 429, 502-504).
        self.retriable = retriable


def error_event(code: str) -> bytes:
    body = {
        "error": {"code": code, "message": MESSAGES.get(code, "The stream failed."), "type": "upstream_error"}
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The next bytes available (b"" at the end of the body)."""
        ...

    def close(self) -> None:
        """Abort the connection at once (the upstream sees it go)."""
        ...


class UpstreamTransport(Protocol):
    async def open(self, call: UpstreamRequest, connect_timeout_s: float) -> UpstreamResponse:
        """Send the request; return once the status line and headers are in.

        Raises ``UpstreamFailure`` (``upstream_unreachable``, ``endpoint_blocked``,
        ``upstream_timeout``) when that does not happen.
        """
        ...


@dataclass(frozen=True)
class Limits:
    connect_s: float
    first_token_s: float
    idle_s: float
    deadline: float  # monotonic time by which the whole answer must be done
    max_attempts: int = 3
    max_retry_wait_s: float = 5.0
    ping_interval_s: float = PING_INTERVAL_S


@dataclass
class Timings:
    started: float
    upstream_sent: float | None = None
    upstream_headers: float | None = None
    first_output: float | None = None
    attempts: int = 0
    url_index: int = 0

    def server_timing(self, request_started: float) -> str:
        """Gateway work before the upstream call, and the upstream's time to its response headers."""
        sent = self.upstream_sent if self.upstream_sent is not None else request_started
        parts = [f"gateway;dur={max(0.0, (sent - request_started) * 1000):.2f}"]
        if self.upstream_sent is not None and self.upstream_headers is not None:
            parts.append(f"upstream-ttfb;dur={(self.upstream_headers - self.upstream_sent) * 1000:.2f}")
        return ", ".join(parts)


@dataclass
class OpenStream:
    """An upstream stream that produced its first output: commit 200 and drain ``body()``."""

    response: UpstreamResponse
    relay: StreamRelay
    limits: Limits
    first: bytes
    timings: Timings
    clock: Callable[[], float] = time.monotonic
    outcome: str | None = field(default=None, init=False)  # None while running; OUTCOME_OK or an ErrorCode

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The rest of the stream: relayed chunks, pings in silences, then ``[DONE]`` or an error."""
        try:
            if self.first:
                yield self.first
            if self.relay.complete:
                self.outcome = OUTCOME_OK
                return
            async for piece in self._relay_rest():
                yield piece
        finally:
            self.response.close()

    async def _relay_rest(self) -> AsyncIterator[bytes]:
        limits, relay, clock = self.limits, self.relay, self.clock
        last_data = last_emit = clock()
        while True:
            now = clock()
            idle_at, ping_at = last_data + limits.idle_s, last_emit + limits.ping_interval_s
            wake = min(idle_at, ping_at, limits.deadline)
            try:
                async with asyncio.timeout(max(0.0, wake - now)):
                    chunk = await self.response.read()
            except TimeoutError:
                now = clock()
                if now >= limits.deadline:
                    yield self._fail(ErrorCode.GATEWAY_DEADLINE)
                    return
                if now >= idle_at:
                    yield self._fail(ErrorCode.UPSTREAM_TIMEOUT)
                    return
                last_emit = now
                yield PING
                continue
            except UpstreamFailure as failure:
                yield self._fail(failure.code)
                return
            if not chunk:
                tail = relay.finish()
                if relay.failure is not None or not relay.complete:
                    if tail:
                        yield tail
                    yield self._fail(relay.failure or ErrorCode.UPSTREAM_PROTOCOL_ERROR)
                    return
                self.outcome = OUTCOME_OK
                if tail:
                    yield tail
                return
            out = relay.feed(chunk)
            last_data = clock()
            if relay.failure is not None:
                if out:
                    yield out
                yield self._fail(relay.failure)
                return
            if out:
                last_emit = last_data
                yield out
                if relay.complete:
                    self.outcome = OUTCOME_OK
                    return

    def _fail(self, code: str) -> bytes:
        self.outcome = code
        return error_event(code)


Sleep = Callable[[float], Awaitable[None]]


async def open_stream(
    calls: Sequence[UpstreamRequest],
    transport: UpstreamTransport,
    make_relay: Callable[[], StreamRelay],
    limits: Limits,
    classify: Callable[[int, bytes, Mapping[str, str]], tuple[str, float | None]],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_attempt: Callable[[int, float | None, str | None], None] | None = None,
) -> OpenStream:
    """Try the URLs in order (retrying only retriable failures) until one yields its first output.

    ``on_attempt(url_index, ttfb_seconds_or_None, failure_code_or_None)`` feeds URL ranking.
    Raises ``UpstreamFailure`` with the last failure when every attempt failed.
    """
    timings = Timings(started=clock())
    last: UpstreamFailure | None = None
    attempt = 0
    while attempt < limits.max_attempts:
        index = attempt % len(calls)
        attempt += 1
        timings.attempts, timings.url_index = attempt, index
        try:
            opened = await _try_once(calls[index], transport, make_relay, limits, classify, timings, clock)
        except UpstreamFailure as failure:
            if on_attempt:
                on_attempt(index, None, failure.code)
            last = failure
            if not failure.retriable or attempt >= limits.max_attempts:
                raise
            # A URL not tried yet goes at once; going back to one that failed waits (Retry-After or jitter).
            wait = _backoff(failure, attempt, moving_on=attempt < len(calls))
            if wait > limits.max_retry_wait_s or clock() + wait >= limits.deadline:
                raise
            if wait:
                await sleep(wait)
            continue
        if on_attempt and timings.upstream_headers is not None and timings.upstream_sent is not None:
            on_attempt(index, timings.upstream_headers - timings.upstream_sent, None)
        return opened
    assert last is not None
    raise last


def _backoff(failure: UpstreamFailure, attempt: int, *, moving_on: bool) -> float:
    """No wait when a fresh URL is next; otherwise honour Retry-After, else full jitter."""
    if moving_on:
        return 0.0
    if failure.retry_after_s is not None:
        return failure.retry_after_s
    return random.uniform(0, min(1.0, 0.1 * 2**attempt))


async def _try_once(
    call: UpstreamRequest,
    transport: UpstreamTransport,
    make_relay: Callable[[], StreamRelay],
    limits: Limits,
    classify: Callable[[int, bytes, Mapping[str, str]], tuple[str, float | None]],
    timings: Timings,
    clock: Callable[[], float],
) -> OpenStream:
    first_token_at = min(clock() + limits.first_token_s, limits.deadline)
    timings.upstream_sent = clock()
    try:
        async with asyncio.timeout(max(0.0, first_token_at - clock())):
            response = await transport.open(call, min(limits.connect_s, max(0.0, first_token_at - clock())))
    except TimeoutError:
        raise UpstreamFailure(ErrorCode.UPSTREAM_TIMEOUT) from None
    timings.upstream_headers = clock()
    if response.status != 200:
        body = await _read_error_body(response, first_token_at, clock)
        # 508 is a gateway (this one, behind some alias or relay) refusing its own hop marker.
        code, retry_after = (
            (ErrorCode.LOOP_DETECTED, None)
            if response.status == 508
            else classify(response.status, body, response.headers)
        )
        raise UpstreamFailure(
            code,
            retry_after_s=retry_after,
            retriable=response.status in RETRIABLE_STATUSES,
            upstream_status=response.status,
        )
    relay = make_relay()
    try:
        first = await _first_output(response, relay, first_token_at, limits, clock)
    except BaseException:
        response.close()
        raise
    timings.first_output = clock()
    return OpenStream(
        response=response, relay=relay, limits=limits, first=first, timings=timings, clock=clock
    )


async def _first_output(
    response: UpstreamResponse,
    relay: StreamRelay,
    first_token_at: float,
    limits: Limits,
    clock: Callable[[], float],
) -> bytes:
    """Read until the relay has something to send. Failures here still get a JSON status."""
    while True:
        try:
            async with asyncio.timeout(max(0.0, first_token_at - clock())):
                chunk = await response.read()
        except TimeoutError:
            raise UpstreamFailure(ErrorCode.UPSTREAM_TIMEOUT) from None
        if not chunk:
            tail = relay.finish()
            if relay.failure is not None or not relay.complete:
                raise UpstreamFailure(relay.failure or ErrorCode.UPSTREAM_PROTOCOL_ERROR)
            return tail
        out = relay.feed(chunk)
        if relay.failure is not None:
            raise UpstreamFailure(relay.failure)
        if out:
            return out


async def _read_error_body(response: UpstreamResponse, until: float, clock: Callable[[], float]) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(max(0.1, min(until - clock(), 5.0))):
            while size < MAX_ERROR_BODY:
                chunk = await response.read()
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
    except (TimeoutError, UpstreamFailure):
        pass
    finally:
        response.close()
    return b"".join(parts)[:MAX_ERROR_BODY]
