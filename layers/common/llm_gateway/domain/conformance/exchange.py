"""One exchange with the endpoint: send once, read the raw bytes as they arrive, time the first
byte and the first token, and stop at the probe's deadlines. Never raises for what the endpoint
does: failures come back as a ``Failure`` on the ``Exchange``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from llm_gateway.domain.conformance.config import StreamingClient
from llm_gateway.domain.conformance.failures import (
    Failure,
    timeout_failure,
    transport_failure,
    unexpected_failure,
)
from llm_gateway.errors import EndpointBlocked, TransportError
from llm_gateway.models.llm import Timeouts
from llm_gateway.providers.base import Provider
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.providers.sse import SseLimitExceeded, SseParser

#: An error body is read up to this size (enough for any error object).
MAX_ERROR_BODY_BYTES = 64 * 1024


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
    ttft_s: float | None = None
    total_s: float | None = None
    failure: Failure | None = None
    oversized: bool = False

    @property
    def complete(self) -> bool:
        return self.failure is None and not self.oversized


class TokenWatch:
    """Finds the first event that carries model output (as the provider reads it), to time the first token."""

    def __init__(self, provider: Provider) -> None:
        self.carries_token = provider.carries_token
        self.parser: SseParser | None = SseParser(max_line_bytes=256 * 1024)
        self.seen = False

    def feed(self, chunk: bytes) -> bool:
        if self.seen or self.parser is None:
            return self.seen
        try:
            events = self.parser.feed(chunk)
        except SseLimitExceeded:
            self.parser = None  # the spec checks report it; timing just stops looking
            return False
        self.seen = any(self._carries_token(e.data) for e in events)
        return self.seen

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
) -> Exchange:
    """Send once and read the body as it arrives, timing the first byte and the first token."""
    out = Exchange()
    host = urlsplit(request.url).hostname or "?"
    start = monotonic()
    phase = "headers"
    timeout = (budget.connect_s, budget.read_s, budget.read_s, budget.connect_s)
    try:
        with client.stream(
            request.method, request.url, content=request.body, headers=request.headers, timeout=timeout
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
                if watch is not None and out.ttft_s is None and streaming and watch.feed(chunk):
                    out.ttft_s = now
                    phase = "stream"
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
    except Exception as exc:  # a client error no adapter typed: reported, never raised
        out.failure = unexpected_failure(exc, phase=phase)
    out.total_s = monotonic() - start
    return out
