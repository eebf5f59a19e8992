"""The probe's HTTP adapter against real loopback sockets: every way an exchange breaks below HTTP
arrives as one typed ``TransportError`` kind (the conformance engine reads nothing else)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from llm_gateway.adapters.address_policy import AddressPolicy
from llm_gateway.adapters.guarded_http import GuardedHttp
from llm_gateway.adapters.probe_http import ProbeHttpClient
from llm_gateway.errors import TransportError, TransportKind

TIMEOUT = (1.0, 0.5, 0.5, 1.0)


@pytest.fixture
def client() -> Iterator[ProbeHttpClient]:
    with ProbeHttpClient(GuardedHttp(AddressPolicy(allow_private=True)).sync_client()) as probe_client:
        yield probe_client


def serve_once(answer: Callable[[socket.socket], None]) -> tuple[str, threading.Thread]:
    """A loopback server that accepts one connection and lets ``answer`` do what it likes."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def run() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                answer(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{port}/v1/chat/completions", thread


def fetch(client: ProbeHttpClient, url: str) -> bytes:
    with client.stream("POST", url, content=b"{}", headers={}, timeout=TIMEOUT) as response:
        return b"".join(response.iter_bytes())


def failure_of(client: ProbeHttpClient, url: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        fetch(client, url)
    return caught.value


def test_a_refused_connection_is_connect_refused(client: ProbeHttpClient) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    error = failure_of(client, f"http://127.0.0.1:{port}/v1")
    assert (error.kind, error.reason) == (TransportKind.CONNECT, "refused")


def test_no_answer_is_a_timeout_not_a_connect_timeout(client: ProbeHttpClient) -> None:
    stop = threading.Event()
    url, _ = serve_once(lambda _: stop.wait(5))
    error = failure_of(client, url)
    stop.set()
    assert (error.kind, error.connecting) == (TransportKind.TIMEOUT, False)


def test_garbage_instead_of_http_is_a_protocol_error(client: ProbeHttpClient) -> None:
    url, _ = serve_once(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    assert failure_of(client, url).kind is TransportKind.PROTOCOL


def test_a_reset_while_the_body_streams_is_a_reset(client: ProbeHttpClient) -> None:
    def reset_mid_body(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 1000\r\n\r\ndata: {"
        )
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST

    url, _ = serve_once(reset_mid_body)
    # The RST reaches the client as a reset or, when the kernel saw the data first, as an early
    # close (h11 then reports the incomplete body as a protocol error): never as a timeout or success.
    assert failure_of(client, url).kind in (TransportKind.RESET, TransportKind.PROTOCOL)


def test_tls_to_a_plain_http_port_is_a_tls_error(client: ProbeHttpClient) -> None:
    url, _ = serve_once(lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
    error = failure_of(client, url.replace("http://", "https://"))
    assert error.kind is TransportKind.TLS


def test_a_blocked_address_is_blocked_with_its_reason() -> None:
    with ProbeHttpClient(GuardedHttp(AddressPolicy(allow_private=False)).sync_client()) as strict:
        error = failure_of(strict, "https://127.0.0.1/v1/chat/completions")
    assert error.kind is TransportKind.BLOCKED and error.reason


def test_a_good_answer_streams_through(client: ProbeHttpClient) -> None:
    body = b"data: [DONE]\n\n"
    header = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body)
    url, _ = serve_once(lambda conn: conn.sendall(header + body))
    assert fetch(client, url) == body


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_server_that_drips_is_cut_at_the_deadline_as_a_timeout(client: ProbeHttpClient, phase: str) -> None:
    """One byte every 0.2 s never trips the 0.5 s read timeout; the deadline ends it anyway, in
    the headers or in the body, and the server sees its connection closed."""
    closed = threading.Event()

    def drip(connection: socket.socket) -> None:
        try:
            if phase == "headers":
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                line = b"X-Drip: ....\r\n"
            else:
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                line = b": keep-alive\n"
            for _ in range(100):  # 20 s at most
                time.sleep(0.2)
                connection.sendall(line)
        except OSError:
            closed.set()

    url, _ = serve_once(drip)
    with (
        pytest.raises(TransportError) as caught,
        client.stream("POST", url, content=b"{}", headers={}, timeout=TIMEOUT, deadline_s=1.0) as r,
    ):
        b"".join(r.iter_bytes())
    assert caught.value.kind is TransportKind.TIMEOUT, caught.value
    assert "1 s deadline" in caught.value.detail
    assert closed.wait(5), "the server saw its connection end"
