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
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from llm_gateway.composition import StreamServices
from llm_gateway.domain.completion import AnswerTooLarge, CompletionAggregator
from llm_gateway.domain.proxy import StreamProxy
from llm_gateway.domain.streaming import OUTCOME_OK, OpenStream, Timings, UpstreamFailure, error_event
from llm_gateway.errors import (
    ErrorCode,
    GatewayError,
    InternalError,
    LoopDetected,
    PayloadTooLarge,
    Unauthorized,
)
from llm_gateway.models.chat import ChatRequest
from llm_gateway.observability import get_logger

if TYPE_CHECKING:
    from llm_gateway.adapters.metrics import StreamMetrics

MAX_BODY_BYTES = 1_048_576
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
    value = _header(scope, b"authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Send the session token as Authorization: Bearer <sessionToken>.", code="token_missing"
        )
    return token.strip()


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


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 1)


@dataclass
class StreamRecord:
    """The one log line of a stream request: ids, outcome and timings; never content or keys."""

    request_id: str
    started: float
    account_id: str | None = None
    llm_id: str | None = None
    outcome: str = "unknown"
    upstream_status: int | None = None
    timings: Timings | None = None
    chunks: int = 0

    def fields(self, ended: float) -> dict[str, Any]:
        t = self.timings
        return {
            "request_id": self.request_id,
            "account_id": self.account_id,
            "llm_id": self.llm_id,
            "outcome": self.outcome,
            "upstream_status": self.upstream_status,
            "upstream_ttfb_ms": _ms(t.upstream_sent, t.upstream_headers) if t else None,
            "ttft_ms": _ms(self.started, t.first_output) if t else None,
            "total_ms": _ms(self.started, ended),
            "chunks": self.chunks,
            "attempts": t.attempts if t else 0,
        }

    def fail(self, error: GatewayError) -> None:
        self.outcome = error.code
        if isinstance(error, UpstreamFailure):
            self.upstream_status = error.upstream_status

    def write(self) -> None:
        """After the last byte (or the error) went out: off the stream's hot path."""
        get_logger().info("stream request", extra={"stream": self.fields(time.monotonic())})


class StreamRuntime:
    """One app's services (given, or built from the environment on first use) and its proxy."""

    def __init__(self, services: StreamServices | None = None) -> None:
        self._services = services
        self.proxy: StreamProxy | None = None

    @property
    def services(self) -> StreamServices:
        if self._services is None:
            self._services = StreamServices.from_environ()  # a missing variable fails here, named
        return self._services

    @property
    def started(self) -> bool:
        return self._services is not None

    async def ready_proxy(self) -> StreamProxy:
        """Only when the app runs without its lifespan (``warm_up`` did not run): off the event loop."""
        if self.proxy is None:
            self.proxy = await asyncio.to_thread(lambda: self.services.stream_proxy)
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
        self.proxy = services.stream_proxy
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
        if "session_state_store" in built:
            await self._services.session_state_store.aclose()


class _Response:
    """``send``, remembering how far the response got (so a failure answers the right way)."""

    __slots__ = ("_send", "ended", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = self.ended = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
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
        request_id = _header(scope, b"x-request-id") or str(uuid.uuid4())
        record = StreamRecord(request_id=request_id, started=started)
        response = _Response(send)
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
            record.write()
            if self.runtime.started:
                self.runtime.services.traffic_recorder.stream_ended(
                    record.account_id,
                    record.llm_id,
                    record.outcome,
                    record.fields(time.monotonic())["ttft_ms"],
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
            session = await proxy.authorize(token)  # who asks comes first: 401/403/409 before a 400
            record.account_id, record.llm_id = session.record.account_id, session.llm.id
            chat = await proxy.parse_request(session, body)
            upstream_chat = chat if chat.stream else with_usage(chat)
            opened = await proxy.open(session, upstream_chat, lambda_deadline=_lambda_deadline(scope))
        except GatewayError as error:
            record.fail(error)
            metrics.failed(error.code)
            await _send_error(send, error, request_id)
            return
        record.timings, record.upstream_status = opened.timings, opened.response.status
        headers = [
            (b"x-request-id", request_id.encode()),
            (b"server-timing", opened.timings.server_timing(started).encode()),
        ]
        if not chat.stream:
            await _answer_whole(opened, send, record, headers, session.llm.model_name, metrics)
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
            metrics.finished(opened, started)


def with_usage(chat: ChatRequest) -> ChatRequest:
    """A non-streaming answer reports usage, as OpenAI's does: ask the upstream stream for it."""
    if chat.stream_options is not None:
        return chat
    return chat.model_copy(update={"stream_options": {"include_usage": True}})


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
        yield
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
