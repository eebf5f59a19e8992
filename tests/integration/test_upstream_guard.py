"""SECURITY 1, 2 and 6 on the stream proxy's own client (aiohttp): blocked hosts are refused before
any TCP connect, DNS is asked once per request, and the connection goes to the checked answer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import aiohttp
import pytest

from llm_gateway.adapters.address_policy import AddressPolicy, IPAddress
from llm_gateway.adapters.guarded_http import AddressGuard
from llm_gateway.adapters.upstream_http import AiohttpUpstream
from llm_gateway.domain.streaming import UpstreamFailure
from llm_gateway.providers.request import UpstreamRequest
from tests.security_cases import SECURITY_1_HOSTS


class ScriptedResolver:
    """Answers from a script, one answer per call, and counts the calls."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str | IPAddress]:
        self.calls.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def call(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"Content-Type": "application/json"}, b"{}")


@pytest.mark.parametrize("host", SECURITY_1_HOSTS)
def test_blocked_hosts_never_reach_a_connect(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[object] = []

    async def no_connect(self: object, *args: object, **kwargs: object) -> None:
        connects.append(args)
        raise AssertionError("connect attempted")

    monkeypatch.setattr(aiohttp.TCPConnector, "connect", no_connect)
    resolver = ScriptedResolver(["93.184.215.14", "169.254.169.254"])  # a mixed answer for names
    transport = AiohttpUpstream(AddressGuard(AddressPolicy(allow_private=False), resolver))

    async def run() -> str:
        try:
            await transport.open(call(f"https://{host}/v1/chat/completions"), 1.0)
        except UpstreamFailure as failure:
            return failure.code
        finally:
            await transport.aclose()
        return "connected"

    assert asyncio.run(run()) == "endpoint_blocked"
    assert connects == []


def test_dns_is_asked_once_per_request_and_the_answer_is_where_it_connects() -> None:
    """Rebinding: each request resolves once, and the socket goes to that request's answer."""

    async def run() -> tuple[list[str], list[str]]:
        peers: list[str] = []

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("sockname")[0])
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "0.0.0.0", 0, family=socket.AF_INET)
        port = server.sockets[0].getsockname()[1]
        resolver = ScriptedResolver(["127.0.0.1"], ["127.0.0.2"])
        transport = AiohttpUpstream(AddressGuard(AddressPolicy(allow_private=True), resolver))
        try:
            for _ in range(2):
                response = await transport.open(
                    call(f"http://llm.rebind.test:{port}/v1/chat/completions"), 2.0
                )
                while await response.read():
                    pass
                response.close()
        finally:
            await transport.aclose()
            server.close()
        return resolver.calls, peers

    calls, peers = asyncio.run(run())
    assert calls == ["llm.rebind.test", "llm.rebind.test"]
    assert peers == ["127.0.0.1", "127.0.0.2"]


def test_a_host_that_now_resolves_private_is_refused_at_proxy_time() -> None:
    resolver = ScriptedResolver(["10.1.2.3"])
    transport = AiohttpUpstream(AddressGuard(AddressPolicy(allow_private=False), resolver))

    async def run() -> str:
        try:
            await transport.open(call("https://llm.example.com/v1/chat/completions"), 1.0)
        except UpstreamFailure as failure:
            return failure.code
        finally:
            await transport.aclose()
        return "connected"

    assert asyncio.run(run()) == "endpoint_blocked"
