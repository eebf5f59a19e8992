"""The stream proxy's upstream client: aiohttp, pooled keep-alive, pinned to checked addresses.

The SSRF rules are the guarded client's (``AddressGuard``): every request re-resolves the host once
and checks every answer; the connector then connects only to those addresses (via a resolver that
hands back the checked answer), while TLS verifies the original host name. aiohttp is used here
because it costs a fraction of httpx's CPU per streamed chunk (see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import ssl
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from llm_gateway.adapters.address_policy import ResolvedTarget
from llm_gateway.adapters.guarded_http import AddressGuard
from llm_gateway.domain.streaming import UpstreamFailure
from llm_gateway.errors import EndpointBlocked, EndpointUnresolvable, ErrorCode
from llm_gateway.providers.request import UpstreamRequest

_checked: contextvars.ContextVar[ResolvedTarget | None] = contextvars.ContextVar(
    "checked_target", default=None
)


class CheckedAddressResolver(AbstractResolver):
    """Answers only with the addresses this request's check approved; never asks DNS itself."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target = _checked.get()
        if target is None or target.host != host.lower() or target.port != port:
            raise OSError(f"refusing to connect to an unchecked host {host!r}")
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in target.addresses
        ]

    async def close(self) -> None:
        return None


class AiohttpUpstreamResponse:
    __slots__ = ("_eof", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in response.headers.items()}
        self._eof = False

    async def read(self) -> bytes:
        try:
            chunk = await self._response.content.readany()
        except (aiohttp.ClientError, OSError):
            raise UpstreamFailure(ErrorCode.UPSTREAM_SERVER_ERROR) from None
        if not chunk:
            self._eof = True
        return chunk

    def close(self) -> None:
        """Back to the pool after a complete body (aiohttp releases a fully buffered one by itself);
        otherwise abort, so the upstream stops at once."""
        if self._eof:
            self._response.release()
        else:
            self._response.close()


class AiohttpUpstream:
    """``UpstreamTransport`` for the relay. One per container; its pool is reused across requests.

    The pool has no connection limit by default (``pool_size=0``): how many streams one process
    holds is Lambda's to bound (one per environment, or ``PerExecutionEnvironmentMaxConcurrency``
    under managed instances), and a lower limit here only made the streams beyond it wait for a
    connection until their connect timeout failed them (BENCHMARKS.md, capacity at 512).
    """

    def __init__(
        self,
        guard: AddressGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
        pool_size: int = 0,
        hop_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._guard = guard
        #: The deployment's hop marker, on every request (the gateway refuses requests carrying it).
        self._hop_headers = dict(hop_headers or {})
        self._ssl = ssl_context or ssl.create_default_context()
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily, inside the running event loop that will use it (one loop per container).
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            connector = aiohttp.TCPConnector(
                resolver=CheckedAddressResolver(),
                use_dns_cache=False,
                limit=self._pool_size,
                keepalive_timeout=30,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def open(self, call: UpstreamRequest, connect_timeout_s: float) -> AiohttpUpstreamResponse:
        url = URL(call.url, encoded=True)
        try:
            endpoint = self._guard.policy.check_origin(
                scheme=url.scheme,
                userinfo=url.raw_user or "",
                host=url.raw_host or "",
                port=url.explicit_port,
            )
            target = await self._guard.aresolve(endpoint)
        except EndpointUnresolvable:
            raise UpstreamFailure(ErrorCode.UPSTREAM_UNREACHABLE) from None
        except EndpointBlocked:
            raise UpstreamFailure(ErrorCode.ENDPOINT_BLOCKED) from None
        token = _checked.set(target)
        try:
            response = await self._client().request(
                "POST",
                url,
                data=call.body,
                headers={**call.headers, **self._hop_headers} if self._hop_headers else call.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=connect_timeout_s, connect=connect_timeout_s
                ),
            )
        except (
            aiohttp.ClientConnectorError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            OSError,
        ):
            raise UpstreamFailure(ErrorCode.UPSTREAM_UNREACHABLE, retriable=True) from None
        except TimeoutError:
            raise UpstreamFailure(ErrorCode.UPSTREAM_UNREACHABLE, retriable=True) from None
        except aiohttp.ClientError:
            raise UpstreamFailure(ErrorCode.UPSTREAM_PROTOCOL_ERROR) from None
        finally:
            _checked.reset(token)
        return AiohttpUpstreamResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
