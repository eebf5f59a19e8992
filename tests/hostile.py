"""A hostile endpoint of the test's own, on loopback: what a tenant who wants to hold the
gateway's shared capacity would register as an "LLM" or a webhook.

- ``/drip…`` answers ``HTTP/1.1 200 OK`` and then one header line per ``interval_s``, for at most
  ``limit_s`` (so a test never leaves it running), stopping when the client goes away;
- ``/flip…`` answers 500 at once until ``flipped`` is set, then drips (an endpoint that turns slow
  after it was validated);
- any other path answers 204 at once (a healthy webhook receiver).

Every request is counted per path, with its headers, so a test sees what reached it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    started: float
    #: Seconds until the client closed the connection (a drip only), or None while it is open.
    held_s: float | None = None


@dataclass
class HostileServer:
    host: str = "127.0.0.1"
    interval_s: float = 1.0
    limit_s: float = 90.0
    seen: list[Seen] = field(default_factory=list)
    flipped: bool = False
    _open: list[socket.socket] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> HostileServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(256)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def hits(self, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)]

    def cut_all(self) -> None:
        """End every connection being dripped to (probes still waiting on one end at once)."""
        for conn in list(self._open):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut_all()
        self._stop.set()
        if self._sock is not None:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            seen = self._read_request(conn)
            if seen is None:
                return
            if seen.path.startswith("/drip") or (seen.path.startswith("/flip") and self.flipped):
                self._open.append(conn)
                self._drip(conn, seen)
                self._open.remove(conn)
            elif seen.path.startswith("/flip"):
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _read_request(self, conn: socket.socket) -> Seen | None:
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines or len(lines[0].split()) < 2:
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        with contextlib.suppress(OSError):
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
        seen = Seen(path=lines[0].split()[1], headers=headers, started=time.monotonic())
        self.seen.append(seen)
        return seen

    def _drip(self, conn: socket.socket, seen: Seen) -> None:
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            sent = 0
            while time.monotonic() - seen.started < self.limit_s and not self._stop.is_set():
                time.sleep(self.interval_s)
                conn.sendall(f"X-Drip-{sent}: {'.' * 20}\r\n".encode())
                sent += 1
        except OSError:
            pass
        seen.held_s = time.monotonic() - seen.started
