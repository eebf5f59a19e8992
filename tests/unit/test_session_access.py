"""SessionAccess with an in-memory table: one freshness read per request, memory only for what the
read confirms, reloads only when the LLM's revision moved (issue 10)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from llm_gateway.domain.sessions import ActiveSession, Freshness, LlmRef, Loaded, RevisedLlm, SessionAccess
from llm_gateway.domain.tokens import SessionClaims, SessionInactive, SessionRevoked
from llm_gateway.errors import Conflict
from llm_gateway.models.llm import (
    EndpointUrl,
    LlmFormat,
    LlmStatus,
    StoredLlm,
    ValidationSummary,
    secret_hint,
)
from llm_gateway.models.session import PersonaConfig, SessionRecord

NOW = time.time()
ACCOUNT, LLM_ID, SESSION_ID = "acct_1", "llm-1", "sess_1"
REF = LlmRef(ACCOUNT, LLM_ID)


def stored_llm(
    url: str = "https://a.example/v1/chat/completions", key: str = "sk-key-0001", **extra: object
) -> StoredLlm:
    fields: dict[str, object] = {
        "id": LLM_ID, "display_name": "x", "llm_format": LlmFormat.OPENAI, "urls": [EndpointUrl(url=url)],
        "model_name": "m", "status": LlmStatus.VALID, "validation": ValidationSummary(compatible=True),
        "version": 1, "account_id": ACCOUNT, "secret_ref": f"llm-gateway/t/{ACCOUNT}/{LLM_ID}",
        "created_at": datetime.now(UTC), "secret_hint": secret_hint(key),
    }  # fmt: skip
    return StoredLlm.model_validate(fields | extra)


@dataclass
class Table:
    """The session item, the LLM item (with a revision) and the current key, plus a call log."""

    llm: StoredLlm | None = field(default_factory=stored_llm)
    revision: int = 1
    revoked: bool = False
    session: bool = True
    key: str = "sk-key-0001"
    calls: list[str] = field(default_factory=list)

    def record(self) -> SessionRecord:
        return SessionRecord(
            session_id=SESSION_ID, account_id=ACCOUNT, llm_id=LLM_ID, llm_version=1,
            persona=PersonaConfig.model_validate({"name": "p", "llmId": LLM_ID}),
            created_at=datetime.fromtimestamp(NOW, UTC), expires_at=datetime.fromtimestamp(NOW + 600, UTC),
            revoked=self.revoked,
        )  # fmt: skip

    def change(self, llm: StoredLlm) -> None:
        self.llm, self.revision = llm, self.revision + 1

    async def check(self, session_id: str, llm: LlmRef | None) -> Freshness:
        self.calls.append("check")
        return Freshness(
            self.session, self.revoked, self.llm is not None, str(self.revision) if self.llm else None
        )

    def load(self, session_id: str | None, llm: LlmRef | None) -> Loaded:
        self.calls.append(
            f"load:{'session' if session_id else ''}{'+' if session_id and llm else ''}{'llm' if llm else ''}"
        )
        return Loaded(
            record=self.record() if session_id and self.session else None,
            llm=RevisedLlm(self.llm, str(self.revision)) if llm and self.llm else None,
        )

    def read_key(self, account_id: str, llm_id: str) -> str:
        self.calls.append("key")
        return self.key


def claims() -> SessionClaims:
    return SessionClaims("iss", "aud", ACCOUNT, SESSION_ID, LLM_ID, "jti", int(NOW), int(NOW), int(NOW) + 600)


def access(table: Table) -> SessionAccess:
    # The session's clock is the one its record was written with: the test means "within its 10
    # minutes" however long after collection it runs (a slow shared machine took over 10).
    return SessionAccess(
        store=table, read_key=table.read_key, builtin_endpoint=lambda b: ([], ""), clock=lambda: NOW
    )


def request(sessions: SessionAccess) -> ActiveSession:
    async def run() -> ActiveSession:
        return await sessions.settle(await sessions.begin(claims()))

    return asyncio.run(run())


def test_a_cold_request_reads_everything_at_once_and_a_warm_one_only_checks() -> None:
    table = Table()
    sessions = access(table)
    first = request(sessions)
    assert sorted(table.calls) == ["key", "load:session+llm"]  # its own load is its freshness read
    assert first.endpoint is not None and first.endpoint.api_key == "sk-key-0001"
    table.calls.clear()
    assert request(sessions).upstream_view() == first.upstream_view()
    assert table.calls == ["check"]


def test_revoked_and_deleted_are_refused_on_the_next_request() -> None:
    table = Table()
    sessions = access(table)
    request(sessions)
    table.revoked = True
    with pytest.raises(SessionRevoked):
        request(sessions)
    table.calls.clear()
    with pytest.raises(SessionRevoked):  # remembered: no read
        request(sessions)
    assert table.calls == []

    table = Table()
    sessions = access(table)
    request(sessions)
    table.llm = None
    with pytest.raises(SessionInactive):
        request(sessions)
    table.session = False
    with pytest.raises(SessionInactive):
        request(access(table))


def test_a_new_revision_is_read_with_its_key_and_a_status_only_change_keeps_the_request() -> None:
    table = Table()
    sessions = access(table)
    before = request(sessions)
    assert table.llm is not None
    table.change(
        table.llm.model_copy(update={"validation": ValidationSummary(compatible=True, summary="again")})
    )
    table.calls.clear()
    after = request(sessions)
    assert sorted(table.calls) == ["check", "key", "load:llm"]
    assert after.upstream_view() == before.upstream_view()  # the opened upstream request stands

    table.change(stored_llm(url="https://b.example/v1/chat/completions"))
    moved = request(sessions)
    assert moved.endpoint is not None and moved.endpoint.urls == ("https://b.example/v1/chat/completions",)
    assert moved.upstream_view() != after.upstream_view()  # the proxy reopens

    table.change(stored_llm(status=LlmStatus.PENDING))
    with pytest.raises(Conflict) as refused:
        request(sessions)
    assert refused.value.code == "llm_validation_pending"


def test_a_key_read_alongside_a_config_of_another_generation_is_read_again() -> None:
    table = Table(llm=stored_llm(key="sk-key-0002"))  # the config already names the promoted key...
    keys = iter(["sk-key-0001", "sk-key-0002"])  # ...the first key read came just before the promotion

    def read_key(account_id: str, llm_id: str) -> str:
        table.calls.append("key")
        return next(keys)

    sessions = SessionAccess(
        store=table, read_key=read_key, builtin_endpoint=lambda b: ([], ""), clock=lambda: NOW
    )
    session = request(sessions)
    assert session.endpoint is not None and session.endpoint.api_key == "sk-key-0002"
    assert table.calls.count("key") == 2


def test_a_session_that_does_not_match_its_token_or_has_expired_is_inactive() -> None:
    table = Table()
    late = SessionAccess(
        store=table, read_key=table.read_key, builtin_endpoint=lambda b: ([], ""), clock=lambda: NOW + 601
    )
    with pytest.raises(SessionInactive):
        request(late)


def test_a_warm_request_sends_its_upstream_request_before_the_freshness_read_starts() -> None:
    """The read is needed only before the first byte is relayed: building and sending it first
    would delay the upstream request (and so the first token) by its CPU time."""
    from llm_gateway.domain.proxy import StreamProxy
    from llm_gateway.domain.streaming import UpstreamFailure
    from llm_gateway.providers.dispatch import UpstreamRequest

    table = Table()
    sessions = access(table)
    request(sessions)  # warm: the session, config and key are in memory
    table.calls.clear()

    class RecordingTransport:
        async def open(self, call: UpstreamRequest, connect_timeout_s: float) -> Any:
            table.calls.append("upstream")
            raise UpstreamFailure("endpoint_blocked")

    proxy = StreamProxy(verify_token=lambda _: claims(), sessions=sessions, transport=RecordingTransport())

    async def run() -> None:
        session = await proxy.authorize("token")
        chat = await proxy.parse_request(session, b'{"messages":[{"role":"user","content":"hi"}]}')
        with pytest.raises(UpstreamFailure):
            await proxy.open(session, chat)

    asyncio.run(run())
    assert table.calls == ["upstream", "check"]
