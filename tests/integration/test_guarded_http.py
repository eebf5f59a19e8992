"""The guarded HTTP client against fake backends and real loopback servers (SECURITY 1-4, 6, 29).

Nothing here leaves the machine: names resolve through fake resolvers, "public" answers go to
recording fake backends, and real sockets only ever reach servers on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.adapters import guarded_http
from llm_gateway.adapters.address_policy import AddressPolicy
from llm_gateway.adapters.guarded_http import GuardedHttp, registration_url_guard
from llm_gateway.errors import EndpointBlocked
from tests.security_cases import SECURITY_1_HOSTS

PUBLIC_IP = "93.184.215.14"  # only ever handed to fake backends
TLS_HOST = "llm.rebind.test"
CANARY_KEY = "sk-canary-5b8e0d2c"
PROXY_ENV = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- fakes ---------------------------------------------------------------------------------------


class FakeResolver:
    """Answers from a script (the last answer repeats) and records every lookup."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = [list(a) for a in answers] or [[PUBLIC_IP]]
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


@dataclass
class Recording:
    """What the network layer was asked to do: connects, TLS server names, bytes sent."""

    connects: list[tuple[str, int]] = field(default_factory=list)
    server_hostnames: list[str | None] = field(default_factory=list)
    sent: bytearray = field(default_factory=bytearray)

    def host_headers(self) -> list[str]:
        return [
            line.split(b":", 1)[1].strip().decode()
            for line in bytes(self.sent).split(b"\r\n")
            if line.lower().startswith(b"host:")
        ]


CANNED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class FakeStream(httpcore.NetworkStream):
    """Answers every complete request with ``CANNED``; TLS is a no-op that records the name."""

    def __init__(self, recording: Recording, address: tuple[str, int]) -> None:
        self.recording, self.address = recording, address
        self._pending = bytearray()
        self._replies: list[bytes] = []

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.recording.sent += buffer
        self._pending += buffer
        while b"\r\n\r\n" in self._pending:
            _, _, rest = bytes(self._pending).partition(b"\r\n\r\n")
            self._pending = bytearray(rest)
            self._replies.append(CANNED)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._replies.pop(0) if self._replies else b""

    def close(self) -> None:
        pass

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.recording.server_hostnames.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return {"server_addr": self.address, "is_readable": False}.get(info)


class FakeBackend(httpcore.NetworkBackend):
    """Never opens a socket; records the address it was asked to connect to."""

    def __init__(self) -> None:
        self.recording = Recording()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        self.recording.connects.append((host, port))
        return FakeStream(self.recording, (host, port))


class AsyncFakeStream(httpcore.AsyncNetworkStream):
    def __init__(self, recording: Recording, address: tuple[str, int]) -> None:
        self._sync = FakeStream(recording, address)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._sync.write(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return self._sync.read(max_bytes)

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self._sync.start_tls(ssl_context, server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return self._sync.get_extra_info(info)


class AsyncFakeBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.recording = Recording()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.recording.connects.append((host, port))
        return AsyncFakeStream(self.recording, (host, port))

    async def sleep(self, seconds: float) -> None:
        pass


class RecordingSocketBackend(httpcore.NetworkBackend):
    """The real socket backend, recording the connect address and TLS server name."""

    def __init__(self) -> None:
        self.recording = Recording()
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        self.recording.connects.append((host, port))
        return _RecordingTls(self._inner.connect_tcp(host, port, timeout), self.recording)


class _RecordingTls(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, recording: Recording) -> None:
        self._inner, self._recording = inner, recording

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._recording.sent += buffer
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self._recording.server_hostnames.append(server_hostname)
        return _RecordingTls(self._inner.start_tls(ssl_context, server_hostname, timeout), self._recording)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# -- loopback servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _make_pki(directory: Path, hostname: str) -> Pki:
    """A throwaway CA and a leaf for a made-up host name (never for 127.0.0.1)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "guarded-http test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "leaf.pem", directory / "leaf.key"
    cert_file.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pki(ca_cert.public_bytes(serialization.Encoding.PEM), cert_file, key_file)


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    client_port: int


SSE_BODY = b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _respond(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append(
            SeenRequest(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.client_address[1],
            )
        )
        if self.path.startswith("/redirect/"):
            self.send_response(int(self.path.rsplit("/", 1)[1]))
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, content_type = (
            (SSE_BODY, "text/event-stream") if self.path == "/stream" else (b"ok", "text/plain")
        )
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _respond


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP(S) server on 127.0.0.1 that records requests and TLS server names."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        self.seen: list[SeenRequest] = []
        self.sni: list[str | None] = []
        self.redirect_to = ""
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _make_pki(tmp_path_factory.mktemp("pki"), TLS_HOST)


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[LoopbackServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    with LoopbackServer(context) as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def attacker() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture(params=[False, True], ids=["no-proxy-env", "proxy-env"])
def proxy_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """With a proxy in the environment the client must still connect directly to the pin."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    if request.param:
        for name in PROXY_ENV:
            monkeypatch.setenv(name, "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "")
    return bool(request.param)


_DEFAULT_TLS = ssl.create_default_context()  # fake backends never handshake; build it once


def _strict(resolver: FakeResolver, backend: FakeBackend | None = None) -> GuardedHttp:
    return GuardedHttp(
        AddressPolicy(), resolver=resolver, ssl_context=_DEFAULT_TLS,
        network_backend=backend or FakeBackend(), async_network_backend=AsyncFakeBackend(),
    )  # fmt: skip


def _local(resolver: FakeResolver, pki: Pki | None = None, backend: Any = None) -> GuardedHttp:
    """Private addresses allowed, so a pin to the loopback test server is permitted."""
    return GuardedHttp(
        AddressPolicy(allow_private=True),
        resolver=resolver,
        ssl_context=pki.client_context() if pki else None,
        network_backend=backend,
    )


# -- SECURITY 1: rejected before any TCP connect -----------------------------------------------------


@pytest.mark.parametrize("host", SECURITY_1_HOSTS)
def test_security_1_blocked_before_connect_sync(host: str) -> None:
    resolver, backend = FakeResolver(["127.0.0.1"]), FakeBackend()
    guarded = _strict(resolver, backend)
    url = f"https://{host}/v1/chat/completions"
    with pytest.raises(EndpointBlocked):
        guarded.check_url(url)
    with guarded.sync_client() as client, pytest.raises((EndpointBlocked, httpx.InvalidURL)):
        client.post(url, json={}, headers={"Authorization": f"Bearer {CANARY_KEY}"})
    assert backend.recording.connects == []


@pytest.mark.anyio
@pytest.mark.parametrize("host", SECURITY_1_HOSTS)
async def test_security_1_blocked_before_connect_async(host: str) -> None:
    resolver, backend = FakeResolver(["127.0.0.1"]), AsyncFakeBackend()
    guarded = GuardedHttp(AddressPolicy(), resolver=resolver, async_network_backend=backend)
    url = f"https://{host}/v1/chat/completions"
    with pytest.raises(EndpointBlocked):
        await guarded.acheck_url(url)
    async with guarded.async_client() as client:
        with pytest.raises((EndpointBlocked, httpx.InvalidURL)):
            async with client.stream("POST", url, json={}):
                pass
    assert backend.recording.connects == []


@pytest.mark.parametrize("private", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1"])
def test_security_1_mixed_answer_set_is_rejected(private: str) -> None:
    for answers in ([PUBLIC_IP, private], [private, PUBLIC_IP]):
        resolver, backend = FakeResolver(answers), FakeBackend()
        guarded = _strict(resolver, backend)
        with pytest.raises(EndpointBlocked) as exc:
            guarded.check_url("https://mixed.example.com/v1")
        assert private not in exc.value.message
        with guarded.sync_client() as client, pytest.raises(EndpointBlocked):
            client.get("https://mixed.example.com/v1")
        assert backend.recording.connects == []


def test_name_resolving_to_a_private_address_is_rejected_before_connect() -> None:
    resolver, backend = FakeResolver(["10.1.2.3"]), FakeBackend()
    with _strict(resolver, backend).sync_client() as client, pytest.raises(EndpointBlocked):
        client.get("https://internal.example.com/")
    assert resolver.calls == [("internal.example.com", 443)]
    assert backend.recording.connects == []


def test_unresolvable_host_is_blocked() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    guarded = GuardedHttp(AddressPolicy(), resolver=failing, network_backend=FakeBackend())
    with pytest.raises(EndpointBlocked) as exc:
        guarded.check_url("https://nx.example.com/")
    assert exc.value.details == {"reason": "unresolvable"}


# -- SECURITY 2: rebinding, pinning, TLS against the host name ------------------------------------------


def test_security_2_rebinding_with_fake_backend() -> None:
    resolver, backend = FakeResolver([PUBLIC_IP], ["127.0.0.1"]), FakeBackend()
    with _strict(resolver, backend).sync_client() as client:
        response = client.get("https://llm.example.com/v1/models")
        assert response.text == "ok"
        assert resolver.calls == [("llm.example.com", 443)]
        assert backend.recording.connects == [(PUBLIC_IP, 443)]
        assert response.extensions["network_stream"].get_extra_info("server_addr") == (PUBLIC_IP, 443)
        assert backend.recording.server_hostnames == ["llm.example.com"]
        assert backend.recording.host_headers() == ["llm.example.com"]
        # SECURITY 6 at call time: the next request re-resolves, sees loopback, never connects.
        with pytest.raises(EndpointBlocked):
            client.get("https://llm.example.com/v1/models")
    assert len(resolver.calls) == 2
    assert backend.recording.connects == [(PUBLIC_IP, 443)]


def test_security_2_rebinding_https_loopback(tls_server: LoopbackServer, pki: Pki, proxy_env: bool) -> None:
    # First answer is the checked one; a second lookup would get 127.0.0.2, where nothing listens.
    resolver = FakeResolver(["127.0.0.1"], ["127.0.0.2"])
    backend = RecordingSocketBackend()
    url = f"https://{TLS_HOST}:{tls_server.port}/v1/models"
    with _local(resolver, pki, backend).sync_client() as client:
        response = client.get(url, headers={"Authorization": f"Bearer {CANARY_KEY}"})
        server_addr = response.extensions["network_stream"].get_extra_info("server_addr")
    assert response.status_code == 200
    assert resolver.calls == [(TLS_HOST, tls_server.port)]
    assert server_addr == ("127.0.0.1", tls_server.port)
    assert backend.recording.connects == [("127.0.0.1", tls_server.port)]
    assert backend.recording.server_hostnames == [TLS_HOST]
    assert tls_server.sni == [TLS_HOST]
    assert tls_server.seen[0].headers["host"] == f"{TLS_HOST}:{tls_server.port}"


def test_security_2_tls_verifies_against_the_hostname(tls_server: LoopbackServer, pki: Pki) -> None:
    # Same pinned address, other name: the certificate (issued for TLS_HOST only) must not verify.
    guarded = _local(FakeResolver(["127.0.0.1"]), pki)
    with (
        guarded.sync_client() as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://other.rebind.test:{tls_server.port}/")
    with (
        guarded.sync_client() as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://127.0.0.1:{tls_server.port}/")
    assert tls_server.seen == []


def test_security_2_rebinding_plain_http_loopback(http_server: LoopbackServer, proxy_env: bool) -> None:
    resolver = FakeResolver(["127.0.0.1"], ["127.0.0.2"])
    with _local(resolver).sync_client() as client:
        response = client.get(f"http://llm.local.test:{http_server.port}/v1/models")
        server_addr = response.extensions["network_stream"].get_extra_info("server_addr")
    assert response.status_code == 200
    assert resolver.calls == [("llm.local.test", http_server.port)]
    assert server_addr == ("127.0.0.1", http_server.port)
    assert http_server.seen[0].headers["host"] == f"llm.local.test:{http_server.port}"


@pytest.mark.anyio
async def test_security_2_rebinding_https_loopback_async_stream(
    tls_server: LoopbackServer, pki: Pki, proxy_env: bool
) -> None:
    resolver = FakeResolver(["127.0.0.1"], ["127.0.0.2"])
    guarded = GuardedHttp(
        AddressPolicy(allow_private=True), resolver=resolver, ssl_context=pki.client_context()
    )
    async with (
        guarded.async_client() as client,
        client.stream(
            "POST", f"https://{TLS_HOST}:{tls_server.port}/stream", json={"stream": True}
        ) as response,
    ):
        lines = [line async for line in response.aiter_lines() if line]
        server_addr = response.extensions["network_stream"].get_extra_info("server_addr")
    assert lines == ["data: one", "data: two", "data: [DONE]"]
    assert resolver.calls == [(TLS_HOST, tls_server.port)]
    assert server_addr[:2] == ("127.0.0.1", tls_server.port)
    assert tls_server.sni == [TLS_HOST]
    assert tls_server.seen[0].headers["host"] == f"{TLS_HOST}:{tls_server.port}"


def test_sync_streaming(tls_server: LoopbackServer, pki: Pki) -> None:
    guarded = _local(FakeResolver(["127.0.0.1"]), pki)
    with (
        guarded.sync_client() as client,
        client.stream("POST", f"https://{TLS_HOST}:{tls_server.port}/stream", json={}) as response,
    ):
        assert [line for line in response.iter_lines() if line] == ["data: one", "data: two", "data: [DONE]"]


def test_keep_alive_connections_are_reused_and_every_request_is_checked(
    tls_server: LoopbackServer, pki: Pki
) -> None:
    resolver, backend = FakeResolver(["127.0.0.1"]), RecordingSocketBackend()
    with _local(resolver, pki, backend).sync_client() as client:
        for _ in range(3):
            assert client.get(f"https://{TLS_HOST}:{tls_server.port}/").status_code == 200
    assert len(resolver.calls) == 3  # resolved and checked per request
    assert len(backend.recording.connects) == 1  # one pooled TCP connection
    assert len({seen.client_port for seen in tls_server.seen}) == 1


@pytest.mark.anyio
async def test_async_keep_alive_reuse(tls_server: LoopbackServer, pki: Pki) -> None:
    resolver = FakeResolver(["127.0.0.1"])
    guarded = GuardedHttp(
        AddressPolicy(allow_private=True), resolver=resolver, ssl_context=pki.client_context()
    )
    async with guarded.async_client() as client:
        for _ in range(3):
            assert (await client.get(f"https://{TLS_HOST}:{tls_server.port}/")).status_code == 200
    assert len(resolver.calls) == 3
    assert len({seen.client_port for seen in tls_server.seen}) == 1


def test_falls_back_to_the_next_checked_address(http_server: LoopbackServer) -> None:
    resolver = FakeResolver(["127.0.0.2", "127.0.0.1"])  # nothing listens on 127.0.0.2
    with _local(resolver).sync_client() as client:
        response = client.get(f"http://multi.test:{http_server.port}/")
        assert response.extensions["network_stream"].get_extra_info("server_addr") == (
            "127.0.0.1",
            http_server.port,
        )


# -- SECURITY 3: redirects are never followed ------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_security_3_redirect_not_followed(
    status: int, tls_server: LoopbackServer, attacker: LoopbackServer, pki: Pki
) -> None:
    tls_server.redirect_to = f"http://127.0.0.1:{attacker.port}/steal"
    guarded = _local(FakeResolver(["127.0.0.1"]), pki)
    url = f"https://{TLS_HOST}:{tls_server.port}/redirect/{status}"
    auth = {"Authorization": f"Bearer {CANARY_KEY}"}
    with guarded.sync_client() as client:
        response = client.post(url, json={}, headers=auth)
        assert response.status_code == status
        assert response.is_redirect
        with pytest.raises(ValueError, match="never follows redirects"):
            client.post(url, json={}, headers=auth, follow_redirects=True)
    assert attacker.seen == []
    assert len(tls_server.seen) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_security_3_redirect_not_followed_async(
    status: int, tls_server: LoopbackServer, attacker: LoopbackServer, pki: Pki
) -> None:
    tls_server.redirect_to = f"http://127.0.0.1:{attacker.port}/steal"
    guarded = GuardedHttp(
        AddressPolicy(allow_private=True),
        resolver=FakeResolver(["127.0.0.1"]),
        ssl_context=pki.client_context(),
    )
    url = f"https://{TLS_HOST}:{tls_server.port}/redirect/{status}"
    auth = {"Authorization": f"Bearer {CANARY_KEY}"}
    async with guarded.async_client() as client:
        async with client.stream("POST", url, json={}, headers=auth) as response:
            assert response.status_code == status
        with pytest.raises(ValueError, match="never follows redirects"):
            await client.post(url, json={}, headers=auth, follow_redirects=True)
    assert attacker.seen == []


# -- SECURITY 4 at call time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://llm.example.com/v1",
        "https://user:pass@llm.example.com/v1",
        f"https://key:{CANARY_KEY}@llm.example.com/v1",
        "https://llm.example.com:22/",
        "https://llm.example.com:6379/",
        "https://llm.example.com:9001/",
    ],
)
def test_security_4_rejected_by_the_client(url: str) -> None:
    resolver, backend = FakeResolver(), FakeBackend()
    guarded = _strict(resolver, backend)
    with pytest.raises(EndpointBlocked) as exc:
        guarded.check_url(url)
    assert CANARY_KEY not in exc.value.message
    with guarded.sync_client() as client, pytest.raises(EndpointBlocked):
        client.get(url)
    assert resolver.calls == []
    assert backend.recording.connects == []


def test_request_level_host_and_sni_overrides_are_refused() -> None:
    resolver, backend = FakeResolver(), FakeBackend()
    with _strict(resolver, backend).sync_client() as client:
        with pytest.raises(EndpointBlocked):
            client.get("https://llm.example.com/", headers={"Host": "169.254.169.254"})
        with pytest.raises(EndpointBlocked):
            client.get("https://llm.example.com/", extensions={"sni_hostname": "other.example.com"})
    assert backend.recording.connects == []


def test_connect_without_a_checked_pin_fails_closed() -> None:
    backend = FakeBackend()
    with pytest.raises(EndpointBlocked):
        guarded_http._PinnedBackend(backend).connect_tcp("llm.example.com", 443)
    assert backend.recording.connects == []


def test_verification_cannot_be_disabled() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    with pytest.raises(ValueError, match="verification"):
        GuardedHttp(AddressPolicy(), ssl_context=context)


# -- SECURITY 6: public at registration, private at call time ---------------------------------------------


@pytest.mark.parametrize(
    "later", [["127.0.0.1"], ["169.254.169.254"], [PUBLIC_IP, "10.0.0.1"], ["::ffff:7f00:1"]]
)
def test_security_6_registration_public_call_time_private(later: list[str]) -> None:
    resolver, backend = FakeResolver([PUBLIC_IP], later), FakeBackend()
    guard = registration_url_guard(allow_private=False, resolver=resolver)
    guard.check("https://llm.example.com/v1")  # registration: public, accepted
    with _strict(resolver, backend).sync_client() as client, pytest.raises(EndpointBlocked):
        client.get("https://llm.example.com/v1")
    assert len(resolver.calls) == 2
    assert backend.recording.connects == []


@pytest.mark.anyio
async def test_security_6_async_proxy_time() -> None:
    resolver, backend = FakeResolver([PUBLIC_IP], ["10.0.0.7"]), AsyncFakeBackend()
    guarded = GuardedHttp(AddressPolicy(), resolver=resolver, async_network_backend=backend)
    await guarded.acheck_url("https://llm.example.com/v1")
    async with guarded.async_client() as client:
        with pytest.raises(EndpointBlocked):
            await client.post("https://llm.example.com/v1", json={})
    assert backend.recording.connects == []


# -- SECURITY 29: differential, approved host == connected host ---------------------------------------------

_LABELS = [
    "api",
    "example",
    "com",
    "LLM",
    "127",
    "1",
    "8",
    "0x7f",
    "0251",
    "2852039166",
    "xn--bcher-kva",
    "a-b",
    "",
]
_SEPARATORS = [
    *["."] * 16,
    "。",
    "．",
    "%2e",
    "\\",
    "@",
    ":",
    "[",
    "]",
    "%40",
    "/",
    "#",
    "?",
    " ",
    "..",
    "\t",
]
_SCHEMES = [*["https://"] * 8, "HTTPS://", "http://", "https:/", "https:\\\\", "https:///", "https:"]
_PORTS = [*[""] * 6, ":443", ":8443", ":22", ":", ":0443", ":65536", ":9001"]
_TAILS = [*["", "/", "/v1/chat"] * 3, "?key=x", "#frag", "\\tail", "/@evil.example.net", "#@evil.example.net"]


@st.composite
def odd_urls(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(_LABELS))]
    for _ in range(draw(st.integers(0, 5))):
        parts += [draw(st.sampled_from(_SEPARATORS)), draw(st.sampled_from(_LABELS))]
    if draw(st.booleans()):
        parts.append(".")
    host = "".join(parts)
    if draw(st.integers(0, 9)) == 0:
        host = draw(st.text(alphabet="0123456789abcdefx.:[]%@\\。-", max_size=24))
    userinfo = draw(st.sampled_from([*[""] * 12, "user@", "user:pw@", "api.example.com@"]))
    return (
        draw(st.sampled_from(_SCHEMES))
        + userinfo
        + host
        + draw(st.sampled_from(_PORTS))
        + draw(st.sampled_from(_TAILS))
    )


_ODD_TOKENS = ["。", "．", "%2e", "\\", "@", ":", "[", "]", "%", ".", "..", "#", " ", "0x", "ß", "\u200b"]


_LABEL = st.builds(
    lambda head, body: head + body,
    st.sampled_from("aAz09"),
    st.text(alphabet="abcxyz0189-", max_size=6).filter(lambda t: not t.endswith("-")),
)


@st.composite
def nearly_valid_urls(draw: st.DrawFn) -> str:
    """A plausible endpoint URL, half the time with one odd token spliced into its authority."""
    host = ".".join(draw(st.lists(_LABEL, min_size=1, max_size=4)))
    authority = host + draw(st.sampled_from(_PORTS))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(authority)))
        authority = authority[:at] + draw(st.sampled_from(_ODD_TOKENS)) + authority[at:]
    return "https://" + authority + draw(st.sampled_from(_TAILS))


_CLIENT_REJECTIONS = (EndpointBlocked, httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=st.one_of(odd_urls(), nearly_valid_urls()))
def test_security_29_differential(url: str) -> None:
    resolver, backend = FakeResolver([PUBLIC_IP]), FakeBackend()
    guarded = _strict(resolver, backend)
    try:
        approved = guarded.check_url(url)
    except EndpointBlocked:
        approved = None
    resolver.calls.clear()

    with guarded.sync_client() as client:
        try:
            response = client.get(url)
        except _CLIENT_REJECTIONS:
            response = None

    if response is not None:
        # Whatever the client sent went where its one lookup (or the literal) pointed, under one name.
        recording = backend.recording
        connected_ip, connected_port = recording.connects[0]
        assert len(recording.connects) == 1
        assert recording.server_hostnames[0] is not None
        sent_host = recording.server_hostnames[0]
        assert recording.host_headers()[0] in (sent_host, f"{sent_host}:{connected_port}", f"[{sent_host}]")
        if resolver.calls:
            assert resolver.calls == [(sent_host, connected_port)]
            assert connected_ip == PUBLIC_IP
        else:
            assert ipaddress.ip_address(connected_ip) == ipaddress.ip_address(sent_host)
        assert ipaddress.ip_address(connected_ip).is_global

    if approved is None:
        return
    # The registration check approved it: the client must connect to exactly that host.
    assert response is not None
    assert backend.recording.server_hostnames == [approved.host]
    assert backend.recording.connects == [(str(approved.addresses[0]), approved.port)]
    assert urllib.parse.urlsplit(url).hostname == approved.host.lower()
    assert httpx.URL(url).raw_host.decode() == approved.host
    if resolver.calls:
        assert resolver.calls == [(approved.host, approved.port)]
        with pytest.raises(OSError):
            socket.inet_aton(approved.host)  # the OS resolver can't read it as a number either
