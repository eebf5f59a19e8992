"""The stream proxy's upstream connections are pooled: consecutive streams reuse one TCP
connection (a new connect per stream would add a round trip to every time to first token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from llm_gateway.adapters.address_policy import AddressPolicy
from llm_gateway.adapters.guarded_http import AddressGuard
from llm_gateway.adapters.upstream_http import AiohttpUpstream
from llm_gateway.domain.failover import open_stream
from llm_gateway.domain.streaming import Limits
from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.providers.dispatch import EndpointSpec, build_call, classify_status, make_relay
from llm_gateway_fake_provider.server import FakeProviderHandle, start_in_thread


@pytest.fixture
def fake() -> Iterator[FakeProviderHandle]:
    with start_in_thread() as handle:
        yield handle


async def _counting_proxy(target_port: int, accepted: list[int]) -> asyncio.Server:
    """A TCP pass-through in front of the fake provider that counts accepted connections."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        accepted.append(1)
        up_r, up_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w), return_exceptions=True)

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("llm_format", [LlmFormat.OPENAI, LlmFormat.GEMINI])
def test_consecutive_streams_reuse_one_connection(fake: FakeProviderHandle, llm_format: LlmFormat) -> None:
    async def run() -> list[int]:
        accepted: list[int] = []
        server = await _counting_proxy(fake.port, accepted)
        port = server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v1/chat/completions" if llm_format is LlmFormat.OPENAI else base
        model = "fake-model" if llm_format is LlmFormat.OPENAI else "gemini-2.5-flash"
        spec = EndpointSpec(llm_format, url, model)
        chat = ChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}]})
        transport = AiohttpUpstream(AddressGuard(AddressPolicy(allow_private=True)))
        try:
            for _ in range(3):
                opened = await open_stream(
                    [build_call(spec, chat, "fake-key")],
                    transport,
                    lambda: make_relay(spec, chat),
                    Limits(2, 5, 5, time.monotonic() + 30),
                    lambda s, b, h: classify_status(spec, s, b, h, ()),
                )
                body = b"".join([piece async for piece in opened.body()])
                assert body.endswith(b"data: [DONE]\n\n")
                assert opened.outcome == "ok"
        finally:
            await transport.aclose()
            server.close()
        return accepted

    assert len(asyncio.run(run())) == 1
