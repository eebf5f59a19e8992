"""Sending a body piece by piece with pacing and transport-level faults, and noticing disconnects.

Starlette's StreamingResponse only notices a gone client when it next writes, and a stalled stream
never writes; so this response watches ``receive()`` for ``http.disconnect`` alongside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .faults import Fault
from .state import FakeState

# The app stores the server's transport here (see app.FakeProviderApp) so a fault can reset it.
TRANSPORT_SCOPE_KEY = "fake_provider.transport"


def find_transport(send: Any) -> Any:
    """uvicorn's ``send`` is a bound method of its RequestResponseCycle, which holds the transport."""
    return getattr(getattr(send, "__self__", None), "transport", None)


async def abort_connection(scope: Scope) -> None:
    """Reset the TCP connection (RST, not FIN): SO_LINGER 0 makes close() abort."""
    transport = scope.get(TRANSPORT_SCOPE_KEY)
    if transport is None:
        # Not under uvicorn: an exception mid-response still makes the server drop the connection.
        raise ConnectionAbortedError("fake-provider reset fault (no transport access)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let connection_lost run so the server marks the cycle disconnected before the app returns.
    await asyncio.sleep(0.01)


class AbortResponse(Response):
    """Reset the connection without sending any response (``reset:0``)."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await abort_connection(scope)


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class PacedBody(Response):
    """A 200 body sent piece by piece; records opened/closed/aborted/reset in the state."""

    def __init__(
        self,
        *,
        state: FakeState,
        label: str,
        pieces: Sequence[bytes],
        content_type: str | None,
        headers: dict[str, str],
        interval_s: float,
        fault: Fault | None,
        max_stall_s: float,
        reset_flush_s: float,
    ) -> None:
        super().__init__(status_code=200)
        self.state = state
        self.label = label
        self.pieces = list(pieces)
        self.content_type = content_type
        self.extra_headers = headers
        self.interval_s = interval_s
        self.fault = fault
        self.max_stall_s = max_stall_s
        self.reset_flush_s = reset_flush_s
        self.resetting = False
        self.stalled_out = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream_id = self.state.stream_opened(self.label)
        producer = asyncio.ensure_future(self._produce(scope, send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        outcome = "aborted"
        try:
            done, _ = await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if producer in done:
                outcome = producer.result()
            elif self.resetting or self.stalled_out:
                # Our own abort makes the server report a disconnect; it is not the client leaving.
                outcome = "reset" if self.resetting else "stalled_out"
        finally:
            for task in (producer, watcher):
                task.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
            self.state.stream_finished(stream_id, outcome)

    def _raw_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.extra_headers.items()]
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type.encode("latin-1")))
        return headers

    async def _produce(self, scope: Scope, send: Send) -> str:
        fault = self.fault
        name = fault.name if fault else ""
        await send({"type": "http.response.start", "status": 200, "headers": self._raw_headers()})
        if name == "drip":
            await self._drip(send, fault.int_arg(1000) / 1000 if fault else 1.0)
            return "closed"
        if name == "buffered":
            await asyncio.sleep(fault.int_arg(2500) / 1000 if fault else 2.5)
            await send({"type": "http.response.body", "body": b"".join(self.pieces), "more_body": False})
            return "closed"
        limit = fault.int_arg(1) if fault and name in ("stall", "reset") else None
        # Events leave on the model's own clock (start + i * interval), as a real LLM's tokens do:
        # a slow reader delays nothing but its own copy, so pacing does not drift with the consumer.
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i, piece in enumerate(self.pieces):
            if limit is not None and i >= limit:
                break
            if i and self.interval_s > 0:
                await asyncio.sleep(max(0.0, started + i * self.interval_s - loop.time()))
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if name == "stall":
            await asyncio.sleep(self.max_stall_s)
            self.stalled_out = True
            await abort_connection(scope)
            return "stalled_out"
        if name == "reset":
            await asyncio.sleep(self.reset_flush_s)
            self.resetting = True
            await abort_connection(scope)
            return "reset"
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return "closed"

    async def _drip(self, send: Send, byte_interval_s: float) -> None:
        data = b"".join(self.pieces)
        for i in range(len(data)):
            if i:
                await asyncio.sleep(byte_interval_s)
            await send({"type": "http.response.body", "body": data[i : i + 1], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
