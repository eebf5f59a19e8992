"""The stream endpoint's request path: token → session → LLM and key → upstream calls → relay.

Nothing in the request body can choose the upstream URL, key, headers or model (SECURITY 18):
those come from the stored config alone. The persona's system prompt goes first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from llm_gateway.domain.chat_body import parse_chat
from llm_gateway.domain.failover import open_stream
from llm_gateway.domain.fallback import fallback_session, falls_back
from llm_gateway.domain.sessions import ActiveSession, LlmRef, SessionAccess
from llm_gateway.domain.streaming import AttemptRecord, Limits, OpenStream, UpstreamFailure, UpstreamTransport
from llm_gateway.domain.tokens import SessionClaims
from llm_gateway.domain.url_health import UrlBoard
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
            reasoning_effort=llm.reasoning_effort,
            reasoning_format=llm.reasoning_format,
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
    board: UrlBoard = field(default_factory=UrlBoard)
    clock: Callable[[], float] = time.monotonic
    #: Writes an LLM's open URL breakers (account, LLM id, view) for other containers; off the loop.
    share_breakers: Callable[[str, str, dict[str, float]], None] | None = None
    epoch: Callable[[], float] = time.time
    _writes: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

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
    ) -> OpenStream:
        """``request`` comes from ``parse_request``: a bad body never gets here. When the LLM's URLs
        all fail before the first byte (or its context is too small), its fallbacks answer."""
        chat = with_system_prompt(request, session.record.persona.system_prompt)
        settled = [session]
        try:
            return await self._open_settled(session, chat, lambda_deadline, settled)
        except UpstreamFailure as failure:
            current = settled[-1]
            if not current.llm.fallback_llm_ids or not falls_back(failure):
                raise
            return await self._fall_back(current, chat, failure, lambda_deadline)

    async def _open_settled(
        self,
        session: ActiveSession,
        chat: ChatRequest,
        lambda_deadline: float | None,
        settled: list[ActiveSession],
    ) -> OpenStream:
        if session.pending is None:
            self._learn(session)
            return await self._open(session, chat, lambda_deadline)
        attempt = asyncio.create_task(self._open(session, chat, lambda_deadline))
        try:
            current = await self.sessions.settle(session)
        except BaseException:
            await _abort(attempt)
            raise
        settled.append(current)
        self._learn(current)  # other containers' breakers, for this request's later attempts and the next
        if current.upstream_view() != session.upstream_view():  # the LLM changed: the old request goes
            await _abort(attempt)
            return await self._open(current, chat, lambda_deadline)
        opened = await attempt
        # The first output leaves now, if the read took longer than the upstream (logs, metrics).
        timings = opened.timings
        timings.first_output = max(timings.first_output or 0.0, self.clock())
        if timings.first_answer is not None:
            timings.first_answer = max(timings.first_answer, timings.first_output)
        return opened

    async def _fall_back(
        self,
        session: ActiveSession,
        chat: ChatRequest,
        failure: UpstreamFailure,
        lambda_deadline: float | None,
    ) -> OpenStream:
        """The fallbacks in order, each read fresh; the last failure when none answers."""
        primary = failure.summary
        for llm_id in session.llm.fallback_llm_ids:
            fallback = await fallback_session(self.sessions, session, llm_id)
            if fallback is None:
                continue
            try:
                opened = await self._open(fallback, chat, lambda_deadline)
            except UpstreamFailure as again:
                if not falls_back(again):
                    raise
                failure = again
                continue
            summary = opened.timings.summary
            summary.fallback_llm_id, summary.fallback_from = llm_id, primary
            summary.fallback_model = fallback.llm.model_name
            return opened
        failure.summary = primary
        raise failure

    async def _open(
        self, session: ActiveSession, chat: ChatRequest, lambda_deadline: float | None
    ) -> OpenStream:
        llm, endpoint = session.llm, session.endpoint
        assert endpoint is not None  # only client-side sessions have none, and they never get here
        urls = list(endpoint.urls)
        ordered = self.board.order(urls, self.clock())
        specs = endpoint_specs(llm, ordered)
        calls = build_calls(specs, with_usage(chat), endpoint.api_key)
        limits = self._limits(llm.timeouts, lambda_deadline)
        secrets = (endpoint.api_key,)
        hedge_ms = llm.timeouts.hedge_ms

        def on_attempt(record: AttemptRecord) -> None:
            self.board.observe(urls[record.url_index], record, self.clock())

        try:
            opened = await open_stream(
                calls,
                self.transport,
                lambda: make_relay(specs[0], chat),
                limits,
                lambda status, err_body, headers: classify_status(
                    specs[0], status, err_body, headers, secrets
                ),
                clock=self.clock,
                on_attempt=on_attempt,
                hedge_delays=[self.board.hedge_delay_s(url, hedge_ms) for url in ordered],
                registered=[urls.index(url) for url in ordered],
            )
        finally:
            self._share(session, urls)
        if llm.validation.continuation_urls:
            opened.resume = lambda text: self._continuation(session, chat, text, opened, limits)
        return opened

    async def _continuation(
        self, session: ActiveSession, chat: ChatRequest, text: str, opened: OpenStream, limits: Limits
    ) -> OpenStream | None:
        """The same conversation with the text already sent as a trailing assistant turn (each spec's
        prefill form comes from its provider), on the URLs whose ``continuation`` check passed: the
        others first, the one that broke last. None when none answers before the deadline."""
        llm, endpoint = session.llm, session.endpoint
        assert endpoint is not None
        urls = list(endpoint.urls)
        broke = opened.timings.summary.url_index
        capable = [i for i in llm.validation.continuation_urls if i < len(urls)]
        order = sorted(capable, key=lambda i: i == broke)
        if not order:
            return None
        messages = [*chat.messages, ChatMessage(role="assistant", content=text)] if text else chat.messages
        prefilled = chat.model_copy(update={"messages": messages})
        specs = endpoint_specs(llm, [urls[i] for i in order])
        try:
            calls = build_calls(specs, prefilled, endpoint.api_key)
            secrets = (endpoint.api_key,)
            return await open_stream(
                calls,
                self.transport,
                lambda: make_relay(specs[0], prefilled),
                replace(limits, max_attempts=len(calls)),
                lambda status, err_body, headers: classify_status(
                    specs[0], status, err_body, headers, secrets
                ),
                clock=self.clock,
                registered=order,
            )
        except GatewayError:
            return None

    def _learn(self, session: ActiveSession) -> None:
        if session.url_breakers and session.endpoint is not None:
            urls = list(session.endpoint.urls)
            self.board.merge_shared(urls, session.url_breakers, self.clock(), self.epoch())

    def _share(self, session: ActiveSession, urls: list[str]) -> None:
        """A breaker of this LLM opened or closed here: write the view, off the event loop."""
        ref = None if session.builtin is not None else LlmRef(session.claims.account_id, session.llm.id)
        if self.share_breakers is None or ref is None or not self.board.take_changes(urls):
            return
        view = self.board.shared_view(urls, self.clock(), self.epoch())
        write = asyncio.ensure_future(
            asyncio.to_thread(self.share_breakers, ref.account_id, ref.llm_id, view)
        )
        self._writes.add(write)
        write.add_done_callback(_written(self._writes))

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


def _written(writes: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    """Forget a finished breaker write; a failed one is dropped (the next change writes again)."""

    def done(task: asyncio.Task[None]) -> None:
        writes.discard(task)
        if not task.cancelled():
            task.exception()

    return done


async def _abort(attempt: asyncio.Task[OpenStream]) -> None:
    """Stop an upstream attempt whose session was refused or changed: the upstream sees it go."""
    attempt.cancel()
    await asyncio.wait([attempt])
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result().response.close()
