"""The conformance engine's HTTP client: a (guarded) httpx client whose failures arrive typed.

httpx, httpcore, ssl and the OS each have their own exceptions; the engine must not know any of
them. This adapter turns them into ``TransportError(kind=…)`` as they happen, while sending and
while the body streams, so the engine reads one kind instead of class names or message text.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from llm_gateway.errors import EndpointBlocked, TransportError, TransportKind

__all__ = ["ProbeHttpClient", "transport_error"]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def transport_error(exc: BaseException) -> TransportError | None:
    """The typed form of an HTTP client failure; None for anything that is not one (a bug)."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, EndpointBlocked):
        return TransportError.refused_by_guard(exc)
    chain = _chain(exc)
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TransportError(TransportKind.TIMEOUT, detail, connecting=isinstance(exc, httpx.ConnectTimeout))
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return TransportError(TransportKind.TLS, detail)
    if any(isinstance(e, socket.gaierror) for e in chain):
        return TransportError(TransportKind.DNS, detail)
    if isinstance(exc, httpx.ConnectError):
        refused = any(isinstance(e, ConnectionRefusedError) for e in chain)
        return TransportError(TransportKind.CONNECT, detail, reason="refused" if refused else None)
    if isinstance(exc, httpx.ProtocolError):
        return TransportError(TransportKind.PROTOCOL, detail)
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return TransportError(TransportKind.RESET, detail)
    return None


@contextmanager
def _typed() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        typed = transport_error(exc)
        if typed is None or typed is exc:
            raise
        raise typed from exc


class _Watchdog:
    """A wall-clock deadline for one exchange: at the deadline it shuts the connection's socket
    (which it learns from httpcore's trace as the connection opens), so a read blocked on a server
    that sends a byte just often enough to never time out returns at once; the failure then
    reads as the timeout it is. Probes never reuse a connection (``composition.probe_http``), so
    every exchange opens the one it may cut."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self.fired = False
        self._stream: Any = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline_s), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            with self._lock:
                self._stream = info.get("return_value")
                fired = self.fired
            if fired:
                self._shut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
        self._shut()

    def _shut(self) -> None:
        sock = self._stream.get_extra_info("socket") if self._stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()

    @contextmanager
    def typed(self) -> Iterator[None]:
        try:
            with _typed():
                yield
        except TransportError as exc:
            if not self.fired or exc.kind is TransportKind.TIMEOUT:
                raise
            raise self._timeout() from exc
        if self.fired:  # a body read until the connection closes just ends: it was cut all the same
            raise self._timeout()

    def _timeout(self) -> TransportError:
        return TransportError(
            TransportKind.TIMEOUT, f"no complete answer within the {self.deadline_s:.3g} s deadline"
        )


class _Response:
    """The streamed response, with read failures typed."""

    def __init__(self, response: Any, watchdog: _Watchdog | None = None) -> None:
        self._response = response
        self._watchdog = watchdog

    @property
    def status_code(self) -> int:
        return int(self._response.status_code)

    @property
    def headers(self) -> Mapping[str, str]:
        headers: Mapping[str, str] = self._response.headers
        return headers

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body as sent: probes ask for ``Accept-Encoding: identity`` and take nothing else,
        so a compressed answer (a gzip bomb inflates 1,000-fold, a whole chunk at a time) is a
        protocol error, never inflated."""
        encoding = str(self._response.headers.get("content-encoding", "identity")).strip().lower()
        if encoding not in ("", "identity"):
            raise TransportError(
                TransportKind.PROTOCOL,
                f"the endpoint answered with Content-Encoding: {encoding[:40]} although the request "
                "asked for identity (uncompressed)",
            )
        with self._watchdog.typed() if self._watchdog else _typed():
            yield from self._response.iter_raw(chunk_size)


class ProbeHttpClient:
    """``StreamingClient`` for the conformance engine over any httpx-like client (production:
    ``GuardedHttp.sync_client()``); connect, TLS, timeout and read failures become ``TransportError``.
    ``hop_headers`` (the deployment's hop marker) go on every request."""

    def __init__(self, client: Any, *, hop_headers: Mapping[str, str] | None = None) -> None:
        self._client = client
        #: The deployment's hop marker, on every probe (the gateway refuses requests carrying it).
        self._hop_headers = dict(hop_headers or {})
        #: A real httpx client reports its connections (httpcore's trace), so a deadline can cut them.
        self._traceable = isinstance(client, httpx.Client)

    @contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float, float, float],
        deadline_s: float | None = None,
    ) -> Iterator[_Response]:
        watchdog = _Watchdog(deadline_s) if deadline_s is not None and self._traceable else None
        extra: dict[str, Any] = {"extensions": {"trace": watchdog.trace}} if watchdog else {}
        with ExitStack() as stack:
            if watchdog is not None:
                stack.callback(watchdog.cancel)
            with watchdog.typed() if watchdog else _typed():
                response = stack.enter_context(
                    self._client.stream(
                        method,
                        url,
                        content=content,
                        headers={**headers, **self._hop_headers},
                        timeout=timeout,
                        **extra,
                    )
                )
            yield _Response(response, watchdog)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ProbeHttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
