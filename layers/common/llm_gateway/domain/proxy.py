"""The stream endpoint's request path: token → session → LLM and key → upstream calls → relay.

Nothing in the request body can choose the upstream URL, key, headers or model (SECURITY 18):
those come from the stored config alone. The persona's system prompt goes first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llm_gateway.catalog import BuiltinLlm
from llm_gateway.domain.chat_body import parse_chat as parse_chat  # re-exported: the stream app parses first
from llm_gateway.domain.sessions import ActiveSession
from llm_gateway.domain.streaming import Limits, OpenStream, UpstreamTransport, open_stream
from llm_gateway.domain.tokens import SessionClaims
from llm_gateway.errors import InvalidRequest
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import Llm, StoredLlm, Timeouts
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
    """Composes the session check, the key, the provider modules and the relay.

    Each lookup comes in two forms: ``cached_*`` answers from memory without I/O (the hot path),
    the other may read DynamoDB/Secrets Manager and runs in a worker thread, off the event loop.
    """

    verify_token: Callable[[str], SessionClaims]
    cached_session: Callable[[SessionClaims], ActiveSession | None]
    load_session: Callable[[SessionClaims], ActiveSession]
    cached_secret: Callable[[StoredLlm], str | None]
    load_secret: Callable[[StoredLlm], str]
    builtin_endpoint: Callable[[BuiltinLlm], tuple[list[str], str]]
    transport: UpstreamTransport
    stats: UrlStats = field(default_factory=UrlStats)
    clock: Callable[[], float] = time.monotonic

    async def authorize(self, token: str) -> ActiveSession:
        """Offline token check (CPU only), then the session gate: from memory, or from the table."""
        claims = self.verify_token(token)
        session = self.cached_session(claims)
        if session is None:
            session = await asyncio.to_thread(self.load_session, claims)
        session.require_server_side()
        return session

    async def open(
        self, session: ActiveSession, request: ChatRequest, *, lambda_deadline: float | None = None
    ) -> OpenStream:
        """``request`` comes from ``parse_chat``: the app answers a bad body before it gets here."""
        chat = with_system_prompt(request, session.record.persona.system_prompt)
        llm = session.llm
        api_key: str
        if session.builtin is not None:
            urls, api_key = await asyncio.to_thread(self.builtin_endpoint, session.builtin)
        else:
            assert isinstance(llm, StoredLlm)
            urls = [u.url for u in llm.urls]
            cached = self.cached_secret(llm)
            api_key = cached if cached is not None else await asyncio.to_thread(self.load_secret, llm)
        ordered = self.stats.order(urls)
        specs = endpoint_specs(llm, ordered)
        calls = build_calls(specs, chat, api_key)
        limits = self._limits(llm.timeouts, lambda_deadline)
        secrets = (api_key,)

        def on_attempt(index: int, ttfb: float | None, failure: str | None) -> None:
            self.stats.record(ordered[index], ttfb)

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
