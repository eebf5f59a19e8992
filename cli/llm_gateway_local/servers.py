"""The stack's servers: the API's uvicorn thread and the child processes (moto, the fake provider),
on loopback sockets this process binds, and the start-up errors they raise."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class StackStartError(Exception):
    """A start-up problem of the machine, not of the code: printed as one line, never a traceback."""


class PortInUse(StackStartError):
    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use (another `llm-gateway dev`?); "
            f"stop that process or pick another port with --port N (--port 0 picks a free one)"
        )
        self.port = port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bind_loopback(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port) from None
        if exc.errno == errno.EACCES:
            raise StackStartError(
                f"port {port} needs privileges this user lacks; pick one above 1023 with --port N"
            ) from None
        raise
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@dataclass
class ServerThread:
    """A uvicorn server on a socket we bound (so ``--port 0`` works), in a daemon thread."""

    app: Any
    port: int
    server: Any = None
    thread: threading.Thread | None = None
    sock: socket.socket | None = None

    def start(self) -> int:
        import uvicorn

        if self.sock is None:
            self.sock = bind_loopback(self.port)
        # Lifespan on: the app's shutdown closes what it opened (the upstream HTTP session).
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", access_log=False, timeout_keep_alive=75,
            http="httptools", loop="uvloop",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return int(self.sock.getsockname()[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.sock is not None:
            self.sock.close()


@dataclass
class ChildServer:
    """A server of the stack in its own process (``python -m llm_gateway_local.child``).

    This process binds the listening socket and hands it down, so the URL is known at once and
    requests made before the child is up wait in the backlog instead of failing.
    """

    server: str
    log_file: Path
    health_path: str
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self) -> str:
        sock = bind_loopback(0)
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            # moto names its queue URLs after MOTO_PORT: the port handed down, set for that child only.
            env = os.environ | {"MOTO_PORT": str(sock.getsockname()[1])} if self.server == "moto" else None
            with self.log_file.open("ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "llm_gateway_local.child", self.server,
                     "--fd", str(sock.fileno()), "--parent-pid", str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),), env=env,
                )  # fmt: skip
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            sock.close()  # the child owns it now: if the child dies, connecting fails at once
        return self.url

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Until it answers ``health_path``; a child that exited is an error naming its log."""
        import http.client

        deadline = time.monotonic() + timeout_s
        port = int(self.url.rsplit(":", 1)[1])
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise StackStartError(f"{self.server} exited at start; see {self.log_file}")
            connection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=max(0.1, deadline - time.monotonic())
            )
            try:
                connection.request("GET", self.health_path)
                if connection.getresponse().status < 500:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            if time.monotonic() > deadline:
                raise StackStartError(
                    f"{self.server} did not answer within {timeout_s:.0f} s; see {self.log_file}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
