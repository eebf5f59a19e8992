"""Running the fake provider with uvicorn: blocking (CLI) or in a background thread (tests, local stack)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from .app import create_app
from .config import FakeProviderConfig
from .state import FakeState


def _bind(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn so port 0 resolves to a real port we can report at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _uvicorn_server(config: FakeProviderConfig | None, state: FakeState) -> uvicorn.Server:
    app = create_app(config, state)
    # A stalled stream must not block shutdown for its whole stall; give it a second, then cancel.
    uv_config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        http="h11",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(uv_config)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    config: FakeProviderConfig | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in the current thread until interrupted; ``on_ready(base_url)`` runs once the port is bound."""
    sock = _bind(host, port)
    server = _uvicorn_server(config, FakeState())
    if on_ready is not None:
        on_ready(_base_url(sock))
    server.run(sockets=[sock])


def serve_socket(sock: socket.socket, config: FakeProviderConfig | None = None) -> None:
    """Serve on a socket bound (and listening) elsewhere, e.g. handed down by ``llm-gateway dev``."""
    _uvicorn_server(config, FakeState()).run(sockets=[sock])


class FakeProviderHandle:
    """A fake provider running in a daemon thread; use as a context manager or call ``stop()``."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str, state: FakeState) -> None:
        self._server = server
        self._thread = thread
        self.url = url
        self.state = state

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout / 2)

    def __enter__(self) -> FakeProviderHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    port: int = 0,
    host: str = "127.0.0.1",
    config: FakeProviderConfig | None = None,
    *,
    startup_timeout: float = 10.0,
) -> FakeProviderHandle:
    """Start serving on ``host:port`` (0 picks a free port) and return once it accepts connections."""
    sock = _bind(host, port)
    state = FakeState()
    server = _uvicorn_server(config, state)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("fake provider did not start")
        time.sleep(0.01)
    return FakeProviderHandle(server, thread, _base_url(sock), state)
