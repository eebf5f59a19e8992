"""One exchange with the endpoint: send once, read the raw bytes as they arrive, time the first
byte and the first token, and stop at the probe's deadlines. Never raises for what the endpoint
does: failures come back as a ``Failure`` on the ``Exchange``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from llm_gateway.domain.conformance.budget import RunClock
from llm_gateway.domain.conformance.config import StreamingClient
from llm_gateway.domain.conformance.failures import (
    Failure,
    budget_failure,
    timeout_failure,
    transport_failure,
    unexpected_failure,
)
from llm_gateway.domain.conformance.thoughts import ThoughtWatch
from llm_gateway.errors import EndpointBlocked, ErrorCode, TransportError
from llm_gateway.models.llm import Timeouts
from llm_gateway.providers.base import Provider
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.providers.sse import SseLimitExceeded, SseParser

#: An error body is read up to this size (enough for any error object).
MAX_ERROR_BODY_BYTES = 64 * 1024
#: A socket timeout may fire a hair before the deadline it was cut to.
_CLOCK_SLACK_S = 0.05


@dataclass(frozen=True, slots=True)
class Budget:
    connect_s: float
    first_token_s: float
    idle_s: float
    total_s: float

    @property
    def read_s(self) -> float:
        return min(self.first_token_s, self.idle_s, self.total_s)

    @classmethod
    def of(cls, timeouts: Timeouts | None, max_total_s: float) -> Budget:
        """The LLM's own timeouts, with the total capped at ``max_total_s``."""
        t = timeouts or Timeouts()
        total = max(0.1, min(t.total_ms / 1000, max_total_s))
        return cls(
            connect_s=min(t.connect_ms / 1000, total),
            first_token_s=min(t.first_token_ms / 1000, total),
            idle_s=min(t.idle_ms / 1000, total),
            total_s=total,
        )

    def capped(self, limit_s: float) -> Budget:
        return Budget(
            connect_s=self.connect_s,
            first_token_s=min(self.first_token_s, limit_s),
            idle_s=min(self.idle_s, limit_s),
            total_s=min(self.total_s, limit_s),
        )

    def within(self, left_s: float) -> Budget:
        """Every bound cut to what is ``left_s`` of the run (never below a few milliseconds)."""
        left = max(0.01, left_s)
        return Budget(
            connect_s=min(self.connect_s, left),
            first_token_s=min(self.first_token_s, left),
            idle_s=min(self.idle_s, left),
            total_s=min(self.total_s, left),
        )


#: The client's wall-clock deadline trails the exchange's own total bound by this: the checks
#: between chunks end a slow body first and say which bound it was; the deadline catches what
#: they cannot see (a server that drips its headers a line at a time).
_DEADLINE_SLACK_S = 0.5


class _Deadline(Exception):
    def __init__(self, phase: str, budget_s: float) -> None:
        super().__init__(phase)
        self.phase = phase
        self.budget_s = budget_s


@dataclass(slots=True)
class Exchange:
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ttfb_s: float | None = None
    ttft_s: float | None = None  # to the first answer token (a thought does not count)
    first_thought_s: float | None = None
    total_s: float | None = None
    failure: Failure | None = None
    oversized: bool = False
    #: How the stream was delivered: reads that completed at least one SSE event, the events,
    #: the token-carrying ones, and when the first read with an event came (for ``incremental``).
    event_reads: int = 0
    events: int = 0
    token_events: int = 0
    first_event_s: float | None = None

    @property
    def complete(self) -> bool:
        return self.failure is None and not self.oversized


class TokenWatch:
    """Reads the stream's SSE events as they arrive (as the provider reads them): the first one that
    carries model output times the first token, and the counts show whether delivery was incremental."""

    def __init__(self, provider: Provider, thoughts: ThoughtWatch | None = None) -> None:
        self.carries_token = provider.carries_token
        self.parser: SseParser | None = SseParser(max_line_bytes=256 * 1024)
        self.seen = False
        #: The spec's relay run alongside: it tells the answer from thoughts (else token events time it).
        self.thoughts = thoughts or ThoughtWatch(None)
        self.answered = False
        self.thought = False

    def feed(self, chunk: bytes) -> tuple[int, int]:
        """(events, token-carrying events) completed by ``chunk``."""
        if self.parser is None:
            return 0, 0
        try:
            events = self.parser.feed(chunk)
        except SseLimitExceeded:
            self.parser = None  # the spec checks report it; timing just stops looking
            return 0, 0
        tokens = sum(1 for e in events if self._carries_token(e.data))
        self.seen = self.seen or tokens > 0
        answered, thought = self.thoughts.feed(chunk)
        self.answered = answered if self.thoughts.active else self.seen
        self.thought = self.thought or thought
        return len(events), tokens

    def _carries_token(self, data: str) -> bool:
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        return isinstance(payload, dict) and self.carries_token(payload)


def exchange(
    client: StreamingClient,
    request: UpstreamRequest,
    budget: Budget,
    watch: TokenWatch | None,
    monotonic: Callable[[], float],
    *,
    max_body: int,
    run: RunClock | None = None,
) -> Exchange:
    """Send once and read the body as it arrives, timing the first byte and the first token.

    ``budget`` bounds this exchange; ``run`` (the whole run's deadline) cuts every bound to what is
    left of it, and a timeout caused by that cut is reported as the run's budget running out."""
    if run is not None:
        budget = budget.within(run.remaining())
    out = Exchange()
    phase = _read(client, request, budget, watch, monotonic, max_body, out)
    timed_out = out.failure is not None and out.failure.code is ErrorCode.UPSTREAM_TIMEOUT
    if run is not None and timed_out and run.remaining() <= _CLOCK_SLACK_S:
        out.failure = budget_failure(run.label, phase)
    return out


def _read(
    client: StreamingClient,
    request: UpstreamRequest,
    budget: Budget,
    watch: TokenWatch | None,
    monotonic: Callable[[], float],
    max_body: int,
    out: Exchange,
) -> str:
    """The exchange itself; fills ``out`` and returns the phase it ended in."""
    host = urlsplit(request.url).hostname or "?"
    start = monotonic()
    phase = "headers"
    timeout = (budget.connect_s, budget.read_s, budget.read_s, budget.connect_s)
    try:
        with client.stream(
            request.method,
            request.url,
            content=request.body,
            headers=request.headers,
            timeout=timeout,
            deadline_s=budget.total_s + _DEADLINE_SLACK_S,
        ) as response:
            out.ttfb_s = monotonic() - start
            out.status = response.status_code
            out.headers = [(str(k), str(v)) for k, v in response.headers.items()]
            streaming = 200 <= out.status < 300
            limit = max_body if streaming else min(max_body, MAX_ERROR_BODY_BYTES)
            phase = "first_token" if streaming and watch is not None else "stream"
            for chunk in response.iter_bytes():
                now = monotonic() - start
                out.body += chunk
                if watch is not None and streaming:
                    _watch(watch, chunk, now, out)
                    if out.ttft_s is not None or out.first_thought_s is not None:
                        phase = "stream"  # a model that thinks has started
                if len(out.body) >= limit:
                    del out.body[limit:]
                    out.oversized = streaming
                    break
                if phase == "first_token" and now > budget.first_token_s:
                    raise _Deadline("first_token", budget.first_token_s)
                if now > budget.total_s:
                    raise _Deadline("total", budget.total_s)
    except _Deadline as exc:
        out.failure = timeout_failure(exc.phase, exc.budget_s)
    except EndpointBlocked as exc:
        out.failure = transport_failure(
            TransportError.refused_by_guard(exc), host=host, phase=phase, budget_s=0
        )
    except TransportError as exc:
        phase_budget = budget.first_token_s if phase == "first_token" else budget.read_s
        if exc.connecting:
            phase_budget = budget.connect_s
        out.failure = transport_failure(exc, host=host, phase=phase, budget_s=phase_budget)
        phase = "connect" if exc.connecting else phase
    except Exception as exc:  # a client error no adapter typed: reported, never raised
        out.failure = unexpected_failure(exc, phase=phase)
    out.total_s = monotonic() - start
    return phase


def _watch(watch: TokenWatch, chunk: bytes, now: float, out: Exchange) -> None:
    events, tokens = watch.feed(chunk)
    if events:
        out.event_reads += 1
        out.events += events
        out.token_events += tokens
        if out.first_event_s is None:
            out.first_event_s = now
    if watch.answered and out.ttft_s is None:
        out.ttft_s = now
    if watch.thought and out.first_thought_s is None:
        out.first_thought_s = now
