"""The stream endpoint's request path: token → session → LLM and key → upstream calls → relay.

Nothing in the request body can choose the upstream URL, key, headers or model (SECURITY 18):
those come from the stored config alone. The persona's system prompt goes first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llm_gateway.domain.chat_body import parse_chat
from llm_gateway.domain.request_log import AttemptSummary
from llm_gateway.domain.sessions import ActiveSession, SessionAccess
from llm_gateway.domain.streaming import Limits, OpenStream, UpstreamTransport, open_stream
from llm_gateway.domain.tokens import SessionClaims
from llm_gateway.errors import GatewayError, InvalidRequest
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import Llm, Timeouts
from llm_gateway.providers.base import UnsupportedChatRequest
from llm_gateway.providers.dispatch import (
    EndpointSpec,
    UpstreamRequest,
    build_call,
    classify_status,
    make_relay,
)

#: Stop this long before the function's own deadline, so the client gets a terminal event.
LAMBDA_SAFETY_MARGIN_S = 3.0


@dataclass
class UrlStats:
    """Recent time to first byte per URL (EWMA): the fastest known URL is tried first."""

    alpha: float = 0.3
    _ewma: dict[str, float] = field(default_factory=dict)
    _penalty_s: float = 30.0

    def record(self, url: str, ttfb_s: float | None) -> None:
        sample = self._penalty_s if ttfb_s is None else ttfb_s
        previous = self._ewma.get(url)
        self._ewma[url] = sample if previous is None else previous + self.alpha * (sample - previous)

    def order(self, urls: list[str]) -> list[str]:
        # Unmeasured URLs keep their registered order and go before measured slow ones.
        return sorted(urls, key=lambda u: (self._ewma.get(u, 0.0), urls.index(u)))


def with_system_prompt(chat: ChatRequest, system_prompt: str | None) -> ChatRequest:
    if not system_prompt:
        return chat
    return chat.model_copy(
        update={"messages": [ChatMessage(role="system", content=system_prompt), *chat.messages]}
    )


def with_usage(chat: ChatRequest) -> ChatRequest:
    """Ask the upstream for its token counts (``stream_options.include_usage``): the request log
    records them; the relay passes the usage chunk on only when the client asked for it."""
    options = chat.stream_options or {}
    if options.get("include_usage") is True:
        return chat
    return chat.model_copy(update={"stream_options": {**options, "include_usage": True}})


def build_calls(specs: list[EndpointSpec], chat: ChatRequest, api_key: str) -> list[UpstreamRequest]:
    """The upstream requests; what the LLM's spec cannot take in the chat request is a 400."""
    try:
        return [build_call(spec, chat, api_key) for spec in specs]
    except UnsupportedChatRequest as exc:
        raise InvalidRequest(
            f"The body is not a valid request for this LLM: {exc}.",
            details=[{"field": "messages", "message": str(exc), "type": "unsupported"}],
        ) from None


def endpoint_specs(llm: Llm, urls: list[str]) -> list[EndpointSpec]:
    return [
        EndpointSpec(
            llm_format=llm.llm_format,
            url=url,
            model_name=llm.model_name,
            deployment_name=llm.deployment_name,
            api_version=llm.api_version,
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
            headers=llm.headers or None,
        )
        for url in urls
    ]


@dataclass
class StreamProxy:
    """Composes the session check, the provider modules and the relay.

    The upstream request is opened from the container's memory of the session, config and key
    while the request's freshness read runs (``SessionAccess``); the first byte goes out only
    once that read has passed. A refusal aborts the upstream request; a changed LLM reopens it.
    """

    verify_token: Callable[[str], SessionClaims]
    sessions: SessionAccess
    transport: UpstreamTransport
    stats: UrlStats = field(default_factory=UrlStats)
    clock: Callable[[], float] = time.monotonic

    async def authorize(
        self, token: str, on_verified: Callable[[SessionClaims], None] | None = None
    ) -> ActiveSession:
        """Offline token check (CPU only), then the session from memory (its freshness read under
        way) or, in a cold container, from one concurrent round of reads. ``on_verified`` learns
        the verified claims first (the request log names a refused session's account and LLM)."""
        claims = self.verify_token(token)
        if on_verified is not None:
            on_verified(claims)
        session = await self.sessions.begin(claims)
        session.require_server_side()
        return session

    async def parse_request(self, session: ActiveSession, body: bytes) -> ChatRequest:
        """The chat request in ``body``. A bad body is a 400, but a refused session is refused as
        such whatever its body: the freshness read is waited for before the 400 goes out."""
        try:
            return parse_chat(body)
        except GatewayError:
            await self.sessions.settle(session)
            raise

    async def open(
        self,
        session: ActiveSession,
        request: ChatRequest,
        *,
        lambda_deadline: float | None = None,
        summary: AttemptSummary | None = None,
    ) -> OpenStream:
        """``request`` comes from ``parse_request``: a bad body never gets here. ``summary`` counts
        the upstream attempts for the request log."""
        chat = with_system_prompt(request, session.record.persona.system_prompt)
        summary = summary if summary is not None else AttemptSummary()
        if session.pending is None:
            return await self._open(session, chat, lambda_deadline, summary)
        attempt = asyncio.create_task(self._open(session, chat, lambda_deadline, summary))
        try:
            current = await self.sessions.settle(session)
        except BaseException:
            await _abort(attempt)
            raise
        if current.upstream_view() != session.upstream_view():  # the LLM changed: the old request goes
            await _abort(attempt)
            return await self._open(current, chat, lambda_deadline, summary)
        opened = await attempt
        # The first output leaves now, if the read took longer than the upstream (logs, metrics).
        opened.timings.first_output = max(opened.timings.first_output or 0.0, self.clock())
        return opened

    async def _open(
        self,
        session: ActiveSession,
        chat: ChatRequest,
        lambda_deadline: float | None,
        summary: AttemptSummary,
    ) -> OpenStream:
        llm, endpoint = session.llm, session.endpoint
        assert endpoint is not None  # only client-side sessions have none, and they never get here
        ordered = self.stats.order(list(endpoint.urls))
        specs = endpoint_specs(llm, ordered)
        calls = build_calls(specs, with_usage(chat), endpoint.api_key)
        limits = self._limits(llm.timeouts, lambda_deadline)
        secrets = (endpoint.api_key,)

        def on_attempt(index: int, ttfb: float | None, failure: str | None) -> None:
            self.stats.record(ordered[index], ttfb)
            summary.attempted(endpoint.urls.index(ordered[index]))

        return await open_stream(
            calls,
            self.transport,
            lambda: make_relay(specs[0], chat),
            limits,
            lambda status, err_body, headers: classify_status(specs[0], status, err_body, headers, secrets),
            clock=self.clock,
            on_attempt=on_attempt,
        )

    def _limits(self, timeouts: Timeouts, lambda_deadline: float | None) -> Limits:
        now = self.clock()
        deadline = now + timeouts.total_ms / 1000
        if lambda_deadline is not None:
            deadline = min(deadline, lambda_deadline - LAMBDA_SAFETY_MARGIN_S)
        return Limits(
            connect_s=timeouts.connect_ms / 1000,
            first_token_s=timeouts.first_token_ms / 1000,
            idle_s=timeouts.idle_ms / 1000,
            deadline=deadline,
        )


async def _abort(attempt: asyncio.Task[OpenStream]) -> None:
    """Stop an upstream attempt whose session was refused or changed: the upstream sees it go."""
    attempt.cancel()
    await asyncio.wait([attempt])
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result().response.close()
