"""Issue 10: every stream request is confirmed by one fresh read, which runs while the upstream
request opens; nothing reaches the client before it passed. Concurrent misses share one read.

The stream app runs under uvicorn on a loopback port (the fixtures of test_stream_faults); the
freshness read is held back by a gate to show the order of events, never timed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from llm_gateway.domain.sessions import Freshness, LlmRef, SessionAccess
from tests.integration.conftest import AwsStack
from tests.integration.test_stream_faults import Gateway, fake, gateway, wait_for

__all__ = ["fake", "gateway"]  # fixtures, shared with test_stream_faults

DONE = b"data: [DONE]\n\n"
LONG = {"x-fake-chunks": "2000", "x-fake-interval-ms": "20"}


@dataclass
class HeldCheck:
    """Holds every freshness read (``check``) until released; counts them."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    calls: int = 0

    def wrap(self, real: Callable[..., Awaitable[Freshness]]) -> Callable[..., Awaitable[Freshness]]:
        async def held(*args: Any) -> Freshness:
            self.calls += 1
            self.entered.set()
            assert await asyncio.to_thread(self.release.wait, 10), "the test never released the read"
            return await real(*args)

        return held


@pytest.fixture
def held(aws: AwsStack, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldCheck]:
    holder = HeldCheck()
    store = aws.stream.session_state_store
    monkeypatch.setattr(store, "check", holder.wrap(store.check))
    yield holder
    holder.release.set()


@dataclass
class Client:
    """A stream in a thread, noting when the response head arrived (relative to other events)."""

    gateway: Gateway
    token: str
    events: list[str] = field(default_factory=list)
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    thread: threading.Thread | None = None

    def start(self) -> Client:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST",
                f"{self.gateway.url}/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "hello"}], "stream": True},
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response,
        ):
            self.events.append("response head")
            self.status, self.headers = response.status_code, dict(response.headers)
            for part in response.iter_raw():
                self.body += part
                if self.body.count(b"\n\n") >= 3 and DONE not in self.body and self.status == 200:
                    break  # a long stream: three events prove it streams

    def join(self) -> Client:
        assert self.thread is not None
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self


def stream_once(gateway: Gateway, token: str) -> None:
    """One request that streams (then hangs up): the container holds the session in memory now."""
    aborted = gateway.fake.state.connections()["aborted"]
    client = Client(gateway, token).start().join()
    assert client.status == 200, client.body[:300]
    wait_for(lambda: gateway.fake.state.connections()["aborted"] > aborted, timeout=5)


def test_the_first_byte_waits_for_the_freshness_read(gateway: Gateway, held: HeldCheck) -> None:
    llm = gateway.llm(headers=LONG)
    token = gateway.token(llm)
    held.release.set()
    stream_once(gateway, token)  # warm: the next request runs from memory
    held.release.clear()
    held.entered.clear()
    opened_before = gateway.fake.state.connections()["opened"]

    client = Client(gateway, token).start()
    assert held.entered.wait(10)
    # The upstream request opens while the read is held, and its first chunks come back...
    wait_for(lambda: gateway.fake.state.connections()["opened"] > opened_before, timeout=5)
    threading.Event().wait(0.3)  # ...yet the client gets nothing, not even the status line
    assert client.events == []
    client.events.append("read released")
    held.release.set()
    client.join()
    assert client.events == ["read released", "response head"]
    assert client.status == 200 and client.body.startswith(b"data: {")


def test_a_session_revoked_during_the_read_never_gets_a_byte(
    aws: AwsStack, gateway: Gateway, held: HeldCheck
) -> None:
    llm = gateway.llm(headers=LONG)
    token = gateway.token(llm)
    held.release.set()
    stream_once(gateway, token)
    held.release.clear()
    held.entered.clear()
    before = gateway.fake.state.connections()

    client = Client(gateway, token).start()
    assert held.entered.wait(10)
    wait_for(lambda: gateway.fake.state.connections()["opened"] > before["opened"], timeout=5)
    claims = aws.stream.token_verifier.verify(token)
    aws.tokens.session_service.revoke(claims.account_id, claims.session_id)
    held.release.set()
    client.join()

    assert client.status == 403
    assert client.headers["content-type"] == "application/json"
    assert b"data:" not in client.body and b"session_revoked" in client.body
    # The upstream request that opened meanwhile is aborted, not left running.
    wait_for(lambda: gateway.fake.state.connections()["aborted"] > before["aborted"], timeout=2)


def test_a_deleted_llm_during_the_read_aborts_the_upstream_and_answers_403(
    aws: AwsStack, gateway: Gateway, held: HeldCheck
) -> None:
    llm = gateway.llm(headers=LONG)
    token = gateway.token(llm)
    held.release.set()
    stream_once(gateway, token)
    held.release.clear()
    held.entered.clear()

    client = Client(gateway, token).start()
    assert held.entered.wait(10)
    assert aws.registry.llm_repository.delete(gateway.account, llm)
    held.release.set()
    client.join()
    assert client.status == 403 and b"session_inactive" in client.body and b"data:" not in client.body


# -- single flight -----------------------------------------------------------------------------------


@dataclass
class CountingStore:
    """Counts the stream's reads at the table adapter: whole-item loads (``load``) and projected
    freshness checks (``check``), each one ``BatchGetItem``."""

    real: Any
    gate: threading.Event = field(default_factory=threading.Event)
    loads: int = 0
    checks: int = 0

    async def check(self, *args: Any) -> Freshness:
        self.checks += 1
        result: Freshness = await self.real.check(*args)
        return result

    def load(self, *args: Any) -> Any:
        self.loads += 1
        assert self.gate.wait(10)  # every request arrives while the first read is in flight
        return self.real.load(*args)


def test_eight_concurrent_misses_share_one_read_of_the_session_config_and_key(
    aws: AwsStack, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_gateway.models.llm import LlmStatus
    from llm_gateway.models.session import SessionTokenRequest
    from tests.integration.test_session_tokens import own_llm

    llm_id = own_llm(aws, account, LlmStatus.VALID)
    request = SessionTokenRequest.model_validate({"personaConfig": {"name": "p", "llmId": llm_id}})
    token = aws.tokens.session_service.mint(account, request).response.session_token
    claims = aws.stream.token_verifier.verify(token)

    table = CountingStore(aws.stream.session_state_store)
    key_reads: list[LlmRef] = []

    def read_key(account_id: str, llm: str) -> str:
        key_reads.append(LlmRef(account_id, llm))
        assert table.gate.wait(10)
        return aws.stream.stored_key(account_id, llm)

    access = SessionAccess(store=table, read_key=read_key, builtin_endpoint=aws.stream.builtin_endpoint)

    async def eight() -> list[str]:
        begins = [asyncio.create_task(access.begin(claims)) for _ in range(8)]
        for _ in range(3):
            await asyncio.sleep(0)  # every request reaches its reads
        table.gate.set()
        sessions = [await access.settle(await begin) for begin in begins]
        return [s.endpoint.api_key for s in sessions if s.endpoint is not None]

    keys = asyncio.run(eight())
    assert keys == ["sk-test-key-0001"] * 8
    assert table.loads == 1, "one whole-item read for the session and the LLM"
    assert key_reads == [LlmRef(account, llm_id)], "one key read"
    # The request that started the shared read has its freshness from it; the seven that joined
    # it make their own small check (they may have arrived after a revoke).
    assert table.checks == 7


def test_a_url_changed_during_the_read_is_reopened_at_the_new_url(
    aws: AwsStack, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new URL is the same fake provider under another origin, which the policy must allow too.
    moved_origin = gateway.fake.url.replace("127.0.0.1", "localhost")
    gateway.configure(PRIVATE_ENDPOINT_ORIGINS=f"{gateway.fake.url},{moved_origin}")
    held = HeldCheck()
    store = aws.stream.session_state_store
    monkeypatch.setattr(store, "check", held.wrap(store.check))
    try:
        _change_the_url_during_the_read(aws, gateway, held)
    finally:
        held.release.set()


def _change_the_url_during_the_read(aws: AwsStack, gateway: Gateway, held: HeldCheck) -> None:
    llm = gateway.llm(headers=LONG)
    token = gateway.token(llm)
    held.release.set()
    stream_once(gateway, token)
    held.release.clear()
    held.entered.clear()
    before = gateway.fake.state.connections()

    client = Client(gateway, token).start()
    assert held.entered.wait(10)
    wait_for(lambda: gateway.fake.state.connections()["opened"] > before["opened"], timeout=5)
    repo = aws.registry.llm_repository
    current = repo.get(gateway.account, llm)
    assert current is not None
    moved = [
        url.model_copy(update={"url": url.url.replace("127.0.0.1", "localhost")}) for url in current.urls
    ]
    repo.replace(current.model_copy(update={"urls": moved, "version": 2}), expected_version=1)
    held.release.set()
    client.join()

    assert client.status == 200 and client.body.startswith(b"data: {")
    hosts = [r["headers"]["host"] for r in gateway.upstream_requests()]
    assert hosts[-2].startswith("127.0.0.1:") and hosts[-1].startswith("localhost:")
    # The request opened from memory with the old URL was aborted before anything was relayed.
    wait_for(lambda: gateway.fake.state.connections()["aborted"] >= before["aborted"] + 2, timeout=3)
