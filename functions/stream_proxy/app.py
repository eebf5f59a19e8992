"""Stream proxy: a Starlette ASGI app behind the Lambda Web Adapter (response streaming).

``POST /v1/chat/completions`` with ``Authorization: Bearer <session token>`` answers an OpenAI
``chat.completion.chunk`` stream from the session's LLM, whatever its spec. The relay itself lives
in ``llm_gateway.domain.streaming`` (no framework); this module only speaks ASGI.

Nothing is built at import: ``create_app`` is the factory uvicorn calls (``app:create_app
--factory`` in run.sh), and the app's start-up (its lifespan, before the Web Adapter's readiness
check passes) builds the function's services from its settings (``StreamSettings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from llm_gateway.composition import StreamServices
from llm_gateway.domain.completion import AnswerTooLarge, CompletionAggregator
from llm_gateway.domain.concurrency import ConcurrentStreams
from llm_gateway.domain.proxy import StreamProxy, with_usage
from llm_gateway.domain.request_log import token_usage
from llm_gateway.domain.streaming import (
    OUTCOME_OK,
    AttemptSummary,
    OpenStream,
    Timings,
    UpstreamFailure,
    error_event,
)
from llm_gateway.domain.tokens import SessionClaims
from llm_gateway.errors import (
    ErrorCode,
    GatewayError,
    InternalError,
    LoopDetected,
    PayloadTooLarge,
    Unauthorized,
)
from llm_gateway.models.request_log import RequestRecord
from llm_gateway.observability import get_logger
from llm_gateway.request_log_wiring import request_log_writer

if TYPE_CHECKING:
    from llm_gateway.adapters.metrics import StreamMetrics
    from llm_gateway.adapters.request_recorder import BufferedRequestLog

MAX_BODY_BYTES = 1_048_576
#: Seconds between two samples of the concurrent-streams gauge (managed instances only).
GAUGE_INTERVAL_S = 60.0
INTERNAL_ERROR = InternalError.code
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _bearer(scope: Scope) -> str:
    """The session token of the request's one ``Authorization`` header; several are refused (as
    the management API's authorizer refuses them), never resolved by picking one."""
    values = [value for key, value in scope["headers"] if key == b"authorization"]
    if len(values) > 1:
        raise Unauthorized("Send exactly one Authorization header.", code="token_malformed")
    value = values[0].decode("latin-1") if values else ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Send the session token as Authorization: Bearer <sessionToken>.", code="token_missing"
        )
    return token.strip()


_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def _request_id(given: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a plain id, else one of ours: it goes into the
    logs, the request log and its keys, which hold no free text."""
    return given if given is not None and _REQUEST_ID.match(given) else str(uuid.uuid4())


def _lambda_deadline(scope: Scope) -> float | None:
    """The invocation's deadline (monotonic seconds) from the Web Adapter's context header."""
    raw = _header(scope, b"x-amzn-lambda-context")
    if not raw:
        return None
    try:
        deadline_ms = float(json.loads(raw)["deadline"])
    except (ValueError, KeyError, TypeError):
        return None
    return time.monotonic() + (deadline_ms / 1000 - time.time())


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _send_error(send: Send, error: GatewayError, request_id: str) -> None:
    body = json.dumps(error.to_body()).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _failed_attempts(summary: AttemptSummary | None) -> list[dict[str, Any]]:
    """The session's own LLM's failed attempts, then a fallback's (marked)."""
    if summary is None:
        return []
    own, fallback = (summary.fallback_from, summary) if summary.fallback_llm_id else (summary, None)
    entries = [
        {"url_index": a.url_index, "code": a.code, "upstream_status": a.upstream_status}
        for a in (own.failed if own else [])
    ]
    entries += [
        {"url_index": a.url_index, "code": a.code, "upstream_status": a.upstream_status, "fallback": True}
        for a in (fallback.failed if fallback else [])
    ]
    return entries


def _attempt_count(summary: AttemptSummary | None) -> int:
    """Every upstream attempt of the request, the session's own LLM's and a fallback's."""
    if summary is None:
        return 0
    before = summary.fallback_from
    return len(summary.attempts) + (len(before.attempts) if before is not None else 0)


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 1)


@dataclass
class StreamRecord:
    """The one log line of a stream request, and its request log record: ids, outcome, timings,
    attempts and token counts; never content or keys."""

    request_id: str
    started: float
    started_at: float = field(default_factory=time.time)
    account_id: str | None = None
    llm_id: str | None = None
    session_id: str | None = None
    client_label: str | None = None
    outcome: str = "unknown"
    http_status: int | None = None
    upstream_status: int | None = None
    timings: Timings | None = None
    chunks: int = 0
    #: Every upstream attempt (a failed request's too): retries, the hedge, continuations.
    summary: AttemptSummary | None = None
    usage: Mapping[str, Any] | None = None

    def identify(self, claims: SessionClaims) -> None:
        """A verified token names the account, session and LLM (also of a session then refused)."""
        self.account_id, self.session_id, self.llm_id = claims.account_id, claims.session_id, claims.llm_id

    def fields(self, ended: float) -> dict[str, Any]:
        t = self.timings
        summary = self.summary or (t.summary if t else None)
        return {
            "request_id": self.request_id,
            "account_id": self.account_id,
            "llm_id": self.llm_id,
            "outcome": self.outcome,
            "upstream_status": self.upstream_status,
            "upstream_ttfb_ms": _ms(t.upstream_sent, t.upstream_headers) if t else None,
            "ttft_ms": _ms(self.started, t.first_answer) if t else None,  # to the answer, not a thought
            "first_thought_ms": _ms(self.started, t.first_thought) if t else None,
            "total_ms": _ms(self.started, ended),
            "chunks": self.chunks,
            "attempts": _attempt_count(summary),
            "url_index": summary.url_index if summary else None,
            "hedged": summary.hedged if summary else False,
            "continued": summary.continued if summary else 0,
            "fallback_llm_id": summary.fallback_llm_id if summary else None,
            "failed_attempts": _failed_attempts(summary),
        }

    def url_attempts(self) -> tuple[list[tuple[int, bool]], int | None]:
        """(URL index, failed) per attempt and the URL that answered, for the per-URL health counts
        (an attempt cut short by a hedge that won is not counted against its URL)."""
        summary = self.summary or (self.timings.summary if self.timings else None)
        if summary is None:
            return [], None
        own = summary.fallback_from if summary.fallback_llm_id else summary
        attempts = [
            (a.url_index, a.code is not None) for a in (own.attempts if own else []) if not a.cancelled
        ]
        return attempts, None if summary.fallback_llm_id else summary.url_index

    def request_record(self, ended: float) -> RequestRecord | None:
        """The request log's record (only once a verified token named the account and LLM)."""
        if self.account_id is None or self.llm_id is None:
            return None
        fields = self.fields(ended)
        return RequestRecord(
            at=datetime.fromtimestamp(self.started_at, UTC),
            request_id=self.request_id,
            session_id=self.session_id,
            client_label=self.client_label,
            llm_id=self.llm_id,
            fallback_llm_id=fields["fallback_llm_id"],
            outcome=self.outcome,
            http_status=self.http_status,
            upstream_status=self.upstream_status,
            upstream_ttfb_ms=fields["upstream_ttfb_ms"],
            ttft_ms=fields["ttft_ms"],
            total_ms=fields["total_ms"],
            attempts=fields["attempts"],
            url_index=fields["url_index"],
            hedged=fields["hedged"],
            continued=fields["continued"] > 0,
            chunks=self.chunks,
            usage=token_usage(self.usage),
        )

    def fail(self, error: GatewayError) -> None:
        self.outcome = error.code
        if isinstance(error, UpstreamFailure):
            self.upstream_status = error.upstream_status
            self.summary = error.summary

    def write(self) -> None:
        """After the last byte (or the error) went out: off the stream's hot path."""
        get_logger().info("stream request", extra={"stream": self.fields(time.monotonic())})


def _sharing_breakers(services: StreamServices) -> StreamProxy:
    """The services' proxy, writing the URL breakers it opens where every container's freshness
    read sees them (the LLM's ``HEALTH#`` partition, which the stream's role may write)."""
    proxy = services.stream_proxy
    proxy.share_breakers = services.health_store.put_url_breakers
    return proxy


class StreamRuntime:
    """One app's services (given, or built from the environment on first use) and its proxy."""

    def __init__(self, services: StreamServices | None = None) -> None:
        self._services = services
        self.proxy: StreamProxy | None = None
        self._request_log: BufferedRequestLog | None = None
        #: Streams this process serves now (the managed-instances gauge).
        self.streams = ConcurrentStreams()

    @property
    def services(self) -> StreamServices:
        if self._services is None:
            self._services = StreamServices.from_environ()  # a missing variable fails here, named
        return self._services

    @property
    def started(self) -> bool:
        return self._services is not None

    @property
    def request_log(self) -> BufferedRequestLog:
        """The request log's writer for these services (built on the first finished stream)."""
        if self._request_log is None:
            services = self.services
            self._request_log = request_log_writer(services.settings, services.aws)
        return self._request_log

    async def ready_proxy(self) -> StreamProxy:
        """Only when the app runs without its lifespan (``warm_up`` did not run): off the event loop."""
        if self.proxy is None:
            self.proxy = await asyncio.to_thread(lambda: _sharing_breakers(self.services))
        return self.proxy

    async def warm_up(self) -> None:
        """Container init, before the Web Adapter's readiness check passes: nothing of it is left
        for a request. The token public key (one KMS ``GetPublicKey``) loads while the request
        path's clients are built, and the first DynamoDB connection is opened."""
        services = await asyncio.to_thread(lambda: self.services)

        async def clients_and_connection() -> None:
            await asyncio.to_thread(services.warm_clients)
            # Best effort: a request would open the connection itself (a failing key load, though,
            # fails the init: without the key no token can be verified).
            with contextlib.suppress(Exception):
                await services.session_state_store.check("init", None)  # a key that never exists

        await asyncio.gather(asyncio.to_thread(lambda: services.public_key_set), clients_and_connection())
        self.proxy = _sharing_breakers(services)
        # What init built lives as long as the container: frozen, the collector's full passes never
        # walk it again. Unfrozen, each full pass under load walked every module, schema and client
        # and stopped the event loop (and every stream on it) for 170-240 ms in the local stack.
        gc.freeze()

    async def shutdown(self) -> None:
        """Close the HTTP sessions that were opened (a clean exit, no unclosed-session warning)."""
        if self._services is None:
            return
        built = self._services.__dict__
        if "upstream_transport" in built:
            await self._services.upstream_transport.aclose()
        if "traffic_recorder" in built:  # the last traffic counters
            await asyncio.to_thread(self._services.traffic_recorder.close)
        if self._request_log is not None:  # the last request records
            await asyncio.to_thread(self._request_log.close)
        if "session_state_store" in built:
            await self._services.session_state_store.aclose()


class _Response:
    """``send``, remembering how far the response got (so a failure answers the right way)."""

    __slots__ = ("_send", "ended", "started", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = self.ended = False
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        elif not message.get("more_body", False):
            self.ended = True
        await self._send(message)


class ChatCompletions:
    """Pure ASGI endpoint: the response status is decided only once the first output exists.

    One outermost guard: whatever goes wrong unexpectedly is a JSON 500 ``internal_error`` with
    the request id (or, once the stream has started, a final error event), logged through the
    redacting logger, never a bare 500 from the server.
    """

    def __init__(self, runtime: StreamRuntime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        request_id = _request_id(_header(scope, b"x-request-id"))
        record = StreamRecord(request_id=request_id, started=started)
        response = _Response(send)
        self.runtime.streams.started()
        try:
            await self._serve(scope, receive, response, record)
        except Exception as exc:
            record.outcome = INTERNAL_ERROR
            _log_unexpected(exc, request_id)
            with contextlib.suppress(Exception):
                if not response.started:
                    await _send_error(response, InternalError(request_id), request_id)
                elif not response.ended:
                    await response({"type": "http.response.body", "body": error_event(INTERNAL_ERROR)})
        finally:
            self.runtime.streams.ended()
            record.http_status = response.status
            record.write()
            if self.runtime.started:
                attempts, served = record.url_attempts()
                self.runtime.services.traffic_recorder.stream_ended(
                    record.account_id,
                    record.llm_id,
                    record.outcome,
                    record.fields(time.monotonic())["ttft_ms"],
                    attempts=attempts,
                    served=served,
                )
                self.runtime.request_log.stream_ended(
                    record.account_id, record.request_record(time.monotonic())
                )

    async def _serve(self, scope: Scope, receive: Receive, send: Send, record: StreamRecord) -> None:
        request_id, services = record.request_id, self.runtime.services
        try:
            if services.hop_marker.seen_in(scope["headers"]):
                raise LoopDetected()  # before any lookup: the gateway is calling itself
            token = _bearer(scope)
            body = await _read_body(receive)
            proxy = self.runtime.proxy or await self.runtime.ready_proxy()
        except GatewayError as error:
            record.fail(error)
            services.stream_metrics.failed(error.code)
            await _send_error(send, error, request_id)
            return
        except asyncio.CancelledError:
            record.outcome = "client_disconnected"
            raise
        # From here on a client that goes away cancels the work at once, even while the upstream
        # is still thinking about its first token (the upstream request is aborted with it).
        task = asyncio.current_task()
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            if task is not None:
                task.cancel()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await self._answer(proxy, scope, send, token, body, record)
        except asyncio.CancelledError:
            if not disconnected.is_set():
                raise
            if record.outcome == "unknown":
                record.outcome = "client_disconnected"
        finally:
            watcher.cancel()

    async def _answer(
        self,
        proxy: StreamProxy,
        scope: Scope,
        send: Send,
        token: str,
        body: bytes,
        record: StreamRecord,
    ) -> None:
        started, request_id, metrics = record.started, record.request_id, self.runtime.services.stream_metrics
        try:
            # who asks comes first: 401/403/409 before a 400
            session = await proxy.authorize(token, on_verified=record.identify)
            record.account_id, record.llm_id = session.record.account_id, session.llm.id
            record.client_label = session.record.client_label
            chat = await proxy.parse_request(session, body)
            upstream_chat = chat if chat.stream else with_usage(chat)
            opened = await proxy.open(session, upstream_chat, lambda_deadline=_lambda_deadline(scope))
        except GatewayError as error:
            record.fail(error)
            metrics.failed(error.code, getattr(error, "summary", None))
            await _send_error(send, error, request_id)
            return
        record.timings, record.upstream_status = opened.timings, opened.response.status
        summary = opened.timings.summary
        headers = [
            (b"x-request-id", request_id.encode()),
            (b"server-timing", opened.timings.server_timing(started).encode()),
            (b"x-llm-id", (summary.fallback_llm_id or session.llm.id).encode()),
        ]
        if not chat.stream:
            model = summary.fallback_model or session.llm.model_name
            await _answer_whole(opened, send, record, headers, model, metrics)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, *headers]})
        try:
            async with contextlib.aclosing(opened.body()) as pieces:
                async for piece in pieces:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                    record.chunks += 1
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            opened.outcome = opened.outcome or ErrorCode.CLIENT_DISCONNECTED
            raise
        finally:
            record.outcome = opened.outcome or "unknown"
            record.usage = opened.relay.usage
            metrics.finished(opened, started)


async def _answer_whole(
    opened: OpenStream,
    send: Send,
    record: StreamRecord,
    headers: list[tuple[bytes, bytes]],
    model: str,
    metrics: StreamMetrics,
) -> None:
    """``stream: false``: drain the relay into one ``chat.completion``; a failure on the way is a
    JSON error with a real status (nothing was sent yet)."""
    aggregator = CompletionAggregator(model)
    try:
        async with contextlib.aclosing(opened.body()) as pieces:
            async for piece in pieces:
                aggregator.feed(piece)
                record.chunks += 1
    except AnswerTooLarge:
        opened.outcome = ErrorCode.UPSTREAM_PROTOCOL_ERROR
    except asyncio.CancelledError:
        opened.outcome = opened.outcome or ErrorCode.CLIENT_DISCONNECTED
        raise
    finally:
        record.outcome = opened.outcome or "unknown"
        record.usage = opened.relay.usage
        metrics.finished(opened, record.started)
    if opened.outcome != OUTCOME_OK:
        await _send_error(
            send, UpstreamFailure(opened.outcome or ErrorCode.UPSTREAM_PROTOCOL_ERROR), record.request_id
        )
        return
    body = json.dumps(aggregator.result(), ensure_ascii=False, separators=(",", ":")).encode()
    start_headers = [(b"content-type", b"application/json"), *headers]
    await send({"type": "http.response.start", "status": 200, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


def _log_unexpected(exc: BaseException, request_id: str) -> None:
    """Our bug: the type and where it happened (file, line, function), never the message, which
    could quote a request's text or a key."""
    frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)]
    get_logger().error(
        "stream request failed unexpectedly",
        extra={"request_id": request_id, "error_type": type(exc).__name__, "where": frames[-8:]},
    )


def serves_many_streams(runtime: StreamRuntime) -> bool:
    """Lambda Managed Instances sets ``AWS_LAMBDA_MAX_CONCURRENCY`` (above 1): one environment
    serves many streams, so the app samples its own gauge; one stream per environment needs none."""
    return runtime.services.settings.lambda_max_concurrency > 1


async def sample_concurrent_streams(runtime: StreamRuntime, interval_s: float = GAUGE_INTERVAL_S) -> None:
    """Until cancelled: one ``ConcurrentStreams`` sample per interval (the interval's peak)."""
    while True:
        await asyncio.sleep(interval_s)
        runtime.services.stream_metrics.concurrent_streams(runtime.streams.take_peak())


async def healthz(_: Request) -> PlainTextResponse:
    """Readiness for the Lambda Web Adapter."""
    return PlainTextResponse("ok")


def create_app(services: StreamServices | None = None) -> Starlette:
    """The app (uvicorn's ``--factory``): ``services`` given (the local stack, tests), or built from
    the environment at start-up, where a missing variable fails the Web Adapter's init, named."""
    runtime = StreamRuntime(services)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.warm_up()
        gauge = (
            asyncio.create_task(sample_concurrent_streams(runtime)) if serves_many_streams(runtime) else None
        )
        yield
        if gauge is not None:
            gauge.cancel()
        await runtime.shutdown()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", ChatCompletions(runtime), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
