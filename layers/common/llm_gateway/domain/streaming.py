"""The relay: one upstream attempt (``try_once``) streamed out as OpenAI SSE; ``domain.failover``
decides which attempts run before the first byte. Framework-free async code: the ASGI app (or a
future native Lambda stream) drives it.

Rules (DESIGN.md §3): before the first byte every failure is a JSON error with a real status;
after it, a final ``data: {"error": …}`` event and close, never a clean end, unless the answer is
continued (``OpenStream.resume``: the text sent so far, prefilled, on a URL that continues it).
Silence gets a ``: ping`` every 15 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
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
#: 529 is Anthropic's ``overloaded_error``: no capacity right now, nothing generated.
RETRIABLE_STATUSES = frozenset({429, 502, 503, 504, 529})

#: Gateway status for each upstream failure code, before the first byte.
MESSAGES: dict[str, str] = {
    ErrorCode.UPSTREAM_UNAUTHORIZED: "The LLM endpoint rejected the stored credentials.",
    ErrorCode.UPSTREAM_MODEL_NOT_FOUND: "The LLM endpoint does not know the configured model or deployment.",
    ErrorCode.UPSTREAM_RATE_LIMITED: "The LLM endpoint is rate limiting requests; retry later.",
    ErrorCode.UPSTREAM_BAD_REQUEST: "The LLM endpoint rejected the request as invalid.",
    ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED: "The conversation is longer than the LLM's context window.",
    ErrorCode.UPSTREAM_CONTENT_FILTERED: "The LLM provider's content filter refused the request.",
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
        budget_spent: bool = False,
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
        #: No first token within the attempt's own budget (not an upstream's timeout status).
        self.budget_spent = budget_spent
        #: Every attempt of the request that ended in this failure (set by the failover).
        self.summary: AttemptSummary | None = None


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
class AttemptRecord:
    """One upstream attempt of a request: which URL, when, and how it ended (``code`` None: it won)."""

    url_index: int  # the URL's position in the LLM's registered ``urls``
    started: float
    hedge: bool = False
    first_output: float | None = None
    code: str | None = None
    upstream_status: int | None = None
    #: Stopped because another attempt answered first (a hedge race lost: slow, not failed).
    cancelled: bool = False

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_output is None else self.first_output - self.started


@dataclass
class AttemptSummary:
    """What it took to answer one request, for the log line, ``server-timing``, metrics, health and
    the per-request record: every attempt (failed ones too), the hedge, continuations, the LLM."""

    attempts: list[AttemptRecord] = field(default_factory=list)
    url_index: int | None = None  # the registered index of the URL that answered
    hedged: bool = False
    continued: int = 0
    #: The fallback LLM that answered (None: the session's own LLM did), and what the session's own
    #: LLM tried first (its URLs' attempts count for its health, the fallback's do not).
    fallback_llm_id: str | None = None
    fallback_model: str | None = None
    fallback_from: AttemptSummary | None = None

    @property
    def failed(self) -> list[AttemptRecord]:
        return [a for a in self.attempts if a.code is not None]


@dataclass
class Timings:
    started: float
    upstream_sent: float | None = None
    upstream_headers: float | None = None
    first_output: float | None = None
    attempts: int = 0
    url_index: int = 0
    summary: AttemptSummary = field(default_factory=AttemptSummary)
    #: The first answer token (content or a tool call) and the first thought the relay saw: time to
    #: first token is measured to the answer, never to a reasoning model's thoughts.
    first_answer: float | None = None
    first_thought: float | None = None

    def note(self, relay: StreamRelay, now: float) -> None:
        """After a relay step: when the first answer token and the first thought went by."""
        if self.first_answer is None and relay.answer_started:
            self.first_answer = now
        if self.first_thought is None and relay.thought_started:
            self.first_thought = now

    def server_timing(self, request_started: float) -> str:
        """Gateway work before the upstream call, the upstream's time to its response headers, the
        times to the first answer token and first thought when known as the headers go out, and
        what the answer took: attempts, whether it was hedged, which URL answered, continuations."""
        sent = self.upstream_sent if self.upstream_sent is not None else request_started
        parts = [f"gateway;dur={max(0.0, (sent - request_started) * 1000):.2f}"]
        if self.upstream_sent is not None and self.upstream_headers is not None:
            parts.append(f"upstream-ttfb;dur={(self.upstream_headers - self.upstream_sent) * 1000:.2f}")
        for name, at in (("ttft", self.first_answer), ("first-thought", self.first_thought)):
            if at is not None:
                parts.append(f"{name};dur={max(0.0, (at - request_started) * 1000):.2f}")
        summary = self.summary
        parts.append(f'attempts;desc="{max(self.attempts, len(summary.attempts))}"')
        parts.append(f'url;desc="{self.url_index if summary.url_index is None else summary.url_index}"')
        parts.append(f'hedged;desc="{int(summary.hedged)}"')
        parts.append(f'continued;desc="{summary.continued}"')
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
    #: Continue a broken answer: the text sent so far in, a stream of what follows out (None: cannot).
    resume: Callable[[str], Awaitable[OpenStream | None]] | None = None
    _sent: list[bytes] = field(default_factory=list, init=False, repr=False)
    _broken: str | None = field(default=None, init=False, repr=False)

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The rest of the stream: relayed chunks, pings in silences, then ``[DONE]`` or an error.
        With ``resume``, a break after the first byte is continued (one answer, one ``[DONE]``)."""
        try:
            if self.first:
                yield self._keep(self.first)
            if self.relay.complete:
                self.outcome = OUTCOME_OK
                return
            while True:
                async for piece in self._relay_rest():
                    if piece:
                        yield self._keep(piece) if self.resume is not None else piece
                if self._broken is None:
                    return
                first = await self._continue()
                if first is None:
                    yield error_event(self._broken)
                    return
                if first:
                    yield self._keep(first)
                if self.relay.complete:
                    self.outcome = OUTCOME_OK
                    return
        finally:
            self.response.close()

    def _keep(self, piece: bytes) -> bytes:
        if self.resume is not None:
            self._sent.append(piece)
        return piece

    async def _continue(self) -> bytes | None:
        """The continuation's first output (its preamble dropped), or None: the break stands."""
        assert self.resume is not None
        text = answer_text(self._sent)
        if text is None or self.timings.summary.continued >= MAX_CONTINUATIONS:
            return None
        try:
            resumed = await self.resume(text)
        except UpstreamFailure:
            resumed = None
        if resumed is None:
            return None
        self.response.close()
        self.response, self.relay = resumed.response, resumed.relay
        self.timings.summary.continued += 1
        self._broken, self.outcome = None, None
        return without_preamble(resumed.first)

    async def _relay_rest(self) -> AsyncIterator[bytes]:
        limits, relay, clock, timings = self.limits, self.relay, self.clock, self.timings
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
                timings.note(relay, clock())
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
            if timings.first_answer is None:
                timings.note(relay, last_data)
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
        if self.resume is not None and code != ErrorCode.GATEWAY_DEADLINE:
            self._broken = code  # the error event waits: a continuation may yet answer
            return b""
        return error_event(code)


#: Continuations per stream: another URL, or the same one once more.
MAX_CONTINUATIONS = 2


def _events(pieces: bytes) -> list[bytes]:
    return [event for event in pieces.split(b"\n\n") if event]


def answer_text(pieces: list[bytes], *, ended: bool = False) -> str | None:
    """The text of our own OpenAI SSE output so far; None unless it is text only, one choice, not
    finished (a tool call in progress, or an answer that ended, is never continued); ``ended``
    reads a whole answer (its finish is expected)."""
    text: list[str] = []
    for event in _events(b"".join(pieces)):
        if not event.startswith(b"data: {"):
            continue
        try:
            payload = json.loads(event[6:])
        except ValueError:
            return None
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {}
            finished = choice.get("finish_reason") and not ended
            if choice.get("index", 0) != 0 or finished or delta.get("tool_calls"):
                return None
            text.append(delta.get("content") or "")
    return "".join(text)


def without_preamble(piece: bytes) -> bytes:
    """A continuation's first output minus what only opens a stream (the role delta): the client
    already has its start."""
    kept = []
    for event in _events(piece):
        if event.startswith(b"data: {"):
            try:
                choices = json.loads(event[6:]).get("choices") or []
            except ValueError:
                choices = []
            opening = [
                c for c in choices if not (c.get("delta") or {}).get("content") and not c.get("finish_reason")
            ]
            if choices and len(opening) == len(choices):
                continue
        kept.append(event + b"\n\n")
    return b"".join(kept)


async def try_once(
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
        raise UpstreamFailure(ErrorCode.UPSTREAM_TIMEOUT, budget_spent=True) from None
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
    timings.note(relay, timings.first_output)
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
            raise UpstreamFailure(ErrorCode.UPSTREAM_TIMEOUT, budget_spent=True) from None
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
