"""The one HTTP client for every outbound call: SSRF-checked, DNS-pinned, never redirected.

Per request the transport checks the URL, resolves the host once through the injected
resolver, checks every answer, and only then lets httpcore connect. The network backend
swaps the host name for a checked address at connect time, so the socket goes exactly where
the check looked, while TLS (SNI and certificate) and the Host header keep the host name.
Connections are pooled per host name, so a Lambda container reuses keep-alive connections.
"""

from __future__ import annotations

import contextvars
import functools
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
import httpcore
import httpx

from llm_gateway.adapters.address_policy import (
    AddressPolicy,
    Endpoint,
    IPAddress,
    ResolvedTarget,
)
from llm_gateway.errors import EndpointBlocked, EndpointUnresolvable

__all__ = [
    "AddressGuard",
    "GuardedHttp",
    "ResolvedTarget",
    "Resolver",
    "registration_url_guard",
    "system_resolver",
]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30.0)


class Resolver(Protocol):
    """Turns a host name into its addresses; called once per request, never by the connector."""

    def __call__(self, host: str, port: int) -> Sequence[str | IPAddress]: ...


def system_resolver(host: str, port: int) -> list[str]:
    """The OS resolver (``getaddrinfo``), TCP answers only, in the order it returned them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class AddressGuard:
    """Policy plus resolver: the piece any connector (httpx here, aiohttp later) can use."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    def _lookup(self, endpoint: Endpoint) -> Sequence[str | IPAddress]:
        try:
            return self.resolver(endpoint.host, endpoint.port)
        except (OSError, UnicodeError):
            raise EndpointUnresolvable("The endpoint host could not be resolved.") from None

    def resolve(self, endpoint: Endpoint) -> ResolvedTarget:
        """Resolve once and check every answer (IP literals skip DNS)."""
        if endpoint.ip_literal is not None:
            return self.policy.check_resolved(endpoint, [endpoint.ip_literal])
        return self.policy.check_resolved(endpoint, self._lookup(endpoint))

    async def aresolve(self, endpoint: Endpoint) -> ResolvedTarget:
        """``resolve`` for async callers: the blocking resolver runs in a worker thread."""
        if endpoint.ip_literal is not None:
            return self.policy.check_resolved(endpoint, [endpoint.ip_literal])
        answers = await anyio.to_thread.run_sync(functools.partial(self._lookup, endpoint))
        return self.policy.check_resolved(endpoint, answers)

    def check_request(self, request: httpx.Request) -> Endpoint:
        """Check a request exactly as the transport will send it (no DNS yet)."""
        url = request.url
        host = url.raw_host.decode("ascii")
        endpoint = self.policy.check_origin(
            scheme=url.scheme, userinfo=url.userinfo.decode("ascii"), host=host, port=url.port
        )
        host_headers = request.headers.get_list("host")
        if host_headers != [url.netloc.decode("ascii")]:
            raise EndpointBlocked(
                "The Host header must match the endpoint URL.", details={"reason": "host_header"}
            )
        sni_hostname = request.extensions.get("sni_hostname")
        if sni_hostname is not None and sni_hostname != host:
            raise EndpointBlocked(
                "The TLS server name must match the endpoint URL.", details={"reason": "sni_hostname"}
            )
        return endpoint


# -- pinning ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pin:
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


# Set by the transport around one request; connects happen inside that call, in the same
# thread (sync) or task (async), so the backend sees only the pin of the request it serves.
_current_pin: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar(
    "llm_gateway_guarded_http_pin", default=None
)


@contextmanager
def _pinned(target: ResolvedTarget) -> Iterator[None]:
    token = _current_pin.set(_Pin(target.host, target.port, target.addresses))
    try:
        yield
    finally:
        _current_pin.reset(token)


def _pin_for(host: str, port: int) -> _Pin:
    """The checked addresses for this connect; fail closed if the connect was not checked."""
    pin = _current_pin.get()
    if pin is None or pin.host != host or pin.port != port:
        raise EndpointBlocked(
            "Outbound connection refused: the address was not checked.",
            details={"reason": "unchecked_connect"},
        )
    return pin


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the checked addresses of the current request instead of resolving the name."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        pin = _pin_for(host, port)
        error: Exception | None = None
        for address in pin.addresses:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # a pin always holds at least one address
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise EndpointBlocked("Outbound connection refused.", details={"reason": "unix_socket"})

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    """Async twin of ``_PinnedBackend``."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _pin_for(host, port)
        error: Exception | None = None
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EndpointBlocked("Outbound connection refused.", details={"reason": "unix_socket"})

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pool_options(ssl_context: ssl.SSLContext, limits: httpx.Limits) -> dict[str, Any]:
    return {
        "ssl_context": ssl_context,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": True,
        "http2": False,
        "retries": 0,
    }


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport (request mapping, errors, streaming) over a pinned connection pool."""

    def __init__(
        self,
        guard: AddressGuard,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        network_backend: httpcore.NetworkBackend,
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self._guard = guard
        self._pool = httpcore.ConnectionPool(
            **_pool_options(ssl_context, limits), network_backend=_PinnedBackend(network_backend)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self._guard.resolve(self._guard.check_request(request))
        with _pinned(target):
            return super().handle_request(request)


class _AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """Async twin of ``_GuardedTransport``."""

    def __init__(
        self,
        guard: AddressGuard,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        network_backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self._guard = guard
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(ssl_context, limits), network_backend=_AsyncPinnedBackend(network_backend)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = await self._guard.aresolve(self._guard.check_request(request))
        with _pinned(target):
            return await super().handle_async_request(request)


_REDIRECTS_REFUSED = "The guarded client never follows redirects."


class _GuardedClient(httpx.Client):
    """Refuses per-request ``follow_redirects=True``: a redirect is answered, never followed."""

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if follow_redirects is True:
            raise ValueError(_REDIRECTS_REFUSED)
        return super().send(request, stream=stream, auth=auth, follow_redirects=False)


class _AsyncGuardedClient(httpx.AsyncClient):
    """Async twin of ``_GuardedClient``."""

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if follow_redirects is True:
            raise ValueError(_REDIRECTS_REFUSED)
        return await super().send(request, stream=stream, auth=auth, follow_redirects=False)


class GuardedHttp:
    """Factory for SSRF-safe httpx clients; build one per container and reuse its clients.

    ``network_backend`` / ``async_network_backend`` exist for tests (a recording backend);
    production uses httpcore's own socket backends underneath the pinning layer.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        network_backend: httpcore.NetworkBackend | None = None,
        async_network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        if context.verify_mode is not ssl.CERT_REQUIRED or not context.check_hostname:
            raise ValueError("GuardedHttp requires certificate and host name verification.")
        self.guard = AddressGuard(policy, resolver)
        self._ssl_context = context
        self._limits = limits
        self._network_backend = network_backend or httpcore.SyncBackend()
        self._async_network_backend = async_network_backend or httpcore.AnyIOBackend()

    @property
    def policy(self) -> AddressPolicy:
        return self.guard.policy

    def check_url(self, url: str) -> ResolvedTarget:
        """Registration-time check: strict URL rules, then one resolution, every answer checked."""
        return self.guard.resolve(self._endpoint(url))

    def check(self, url: str) -> None:
        """``domain.ports.UrlGuard``: raise ``EndpointBlocked`` unless ``url`` may be called."""
        self.check_url(url)

    async def acheck_url(self, url: str) -> ResolvedTarget:
        """``check_url`` for async callers."""
        return await self.guard.aresolve(self._endpoint(url))

    def _endpoint(self, url: str) -> Endpoint:
        """The policy's reading of ``url``, confirmed to be what httpx itself will connect to."""
        endpoint = self.policy.check_url(url)
        try:
            request = httpx.Request("GET", url)
        except (httpx.InvalidURL, UnicodeError):
            raise EndpointBlocked(
                "The endpoint URL is not valid.", details={"reason": "invalid_url"}
            ) from None
        client_view = self.guard.check_request(request)
        if (client_view.scheme, client_view.port, client_view.ip_literal) != (
            endpoint.scheme,
            endpoint.port,
            endpoint.ip_literal,
        ) or client_view.host.lower() != endpoint.host:
            raise EndpointBlocked("The endpoint URL is ambiguous.", details={"reason": "ambiguous_url"})
        return client_view

    def sync_client(
        self,
        *,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> httpx.Client:
        """A pooled client (keep-alive reused across requests); close it when the container ends."""
        transport = _GuardedTransport(self.guard, self._ssl_context, self._limits, self._network_backend)
        return _GuardedClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=timeout,
            headers=headers,
        )

    def async_client(
        self,
        *,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> httpx.AsyncClient:
        """Async twin of ``sync_client``; supports ``client.stream(...)``."""
        transport = _AsyncGuardedTransport(
            self.guard, self._ssl_context, self._limits, self._async_network_backend
        )
        return _AsyncGuardedClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=timeout,
            headers=headers,
        )


def registration_url_guard(*, allow_private: bool, resolver: Resolver = system_resolver) -> GuardedHttp:
    """A ``UrlGuard`` on a plain policy (tests, tools); the gateway's own is built from settings in
    ``composition.url_guard`` (public endpoints plus the local stack's listed private origins)."""
    return GuardedHttp(AddressPolicy(allow_private=allow_private), resolver=resolver)
