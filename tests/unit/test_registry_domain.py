"""The registry's rules, with in-memory ports: no AWS, no HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from llm_gateway.domain.ports import LimitReached, VersionConflict
from llm_gateway.domain.registry import LLM_REGISTERED, LLM_UPDATED, Registry
from llm_gateway.errors import (
    BadRequest,
    EndpointBlocked,
    EndpointUnresolvable,
    Forbidden,
    NotFound,
    PreconditionFailed,
)
from llm_gateway.models.llm import LlmCreate, LlmStatus, LlmUpdate, StoredLlm, secret_hint

SECRET = "sk-unit-0123456789abcdef"


class MemoryLlms:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], StoredLlm] = {}
        self.conflicts_to_raise = 0

    def create(self, llm: StoredLlm, limit: int) -> None:
        if len(self.list(llm.account_id)) >= limit:
            raise LimitReached(llm.account_id, "LLM", limit)
        self.items[(llm.account_id, llm.id)] = llm

    def get(self, account_id: str, llm_id: str) -> StoredLlm | None:
        return self.items.get((account_id, llm_id))

    def list(self, account_id: str) -> list[StoredLlm]:
        return [v for (a, _), v in self.items.items() if a == account_id]

    def replace(self, llm: StoredLlm, expected_version: int) -> None:
        current = self.items[(llm.account_id, llm.id)]
        if self.conflicts_to_raise or current.version != expected_version:
            self.conflicts_to_raise = max(0, self.conflicts_to_raise - 1)
            current = current.model_copy(update={"version": current.version + 1})
            self.items[(llm.account_id, llm.id)] = current
            raise VersionConflict(llm.id)
        self.items[(llm.account_id, llm.id)] = llm

    def delete(self, account_id: str, llm_id: str) -> bool:
        return self.items.pop((account_id, llm_id), None) is not None


class MemoryCredentials:
    def __init__(self) -> None:
        self.current: dict[tuple[str, str], str] = {}
        self.pending: dict[tuple[str, str], str] = {}

    def create(self, account_id: str, llm_id: str, secret: str) -> str:
        self.current[(account_id, llm_id)] = secret
        return f"arn:secret:llm-gateway/unit/{account_id}/{llm_id}"

    def stage_pending(self, account_id: str, llm_id: str, secret: str) -> None:
        self.pending[(account_id, llm_id)] = secret

    def delete(self, account_id: str, llm_id: str) -> None:
        self.current.pop((account_id, llm_id), None)


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.sent.append((detail_type, dict(detail)))


class Guard:
    def check(self, url: str) -> None:
        if "169.254" in url:
            raise EndpointBlocked("blocked", details={"reason": "metadata"})
        if "nxdomain" in url:
            raise EndpointUnresolvable("unresolvable")


@pytest.fixture
def registry() -> Registry:
    return Registry(llms=MemoryLlms(), credentials=MemoryCredentials(), events=Events(), url_guard=Guard())


def create_body(**overrides: Any) -> Any:
    body = {"displayName": "bot", "llmFormat": "openai", "modelName": "gpt-4o-mini",
            "urls": [{"url": "https://api.openai.com/v1/chat/completions"}], "secret": SECRET} | overrides  # fmt: skip
    return TypeAdapter(LlmCreate).validate_python(body)


def test_create_keeps_the_secret_out_of_the_record_and_the_event(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    stored = registry.llms.get("acct-a", llm.id)
    assert stored is not None
    assert SECRET not in stored.model_dump_json()
    assert registry.credentials.current[("acct-a", llm.id)] == SECRET  # type: ignore[attr-defined]
    assert (llm.status, llm.version, llm.secret_hint) == (LlmStatus.PENDING, 1, "…cdef")
    [(kind, detail)] = registry.events.sent  # type: ignore[attr-defined]
    assert kind == LLM_REGISTERED
    assert detail == {"accountId": "acct-a", "llmId": llm.id, "version": 1, "llmFormat": "openai"}


def test_blocked_urls_stop_registration_but_unresolvable_ones_do_not(registry: Registry) -> None:
    with pytest.raises(EndpointBlocked):
        registry.create("acct-a", create_body(urls=[{"url": "https://169.254.169.254/v1"}]))
    assert registry.llms.list("acct-a") == []
    registry.create("acct-a", create_body(urls=[{"url": "https://nxdomain.example/v1"}]))
    assert len(registry.llms.list("acct-a")) == 1


def test_partial_update_rechecks_the_config_and_bumps_the_version(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body(temperature=0.3))
    updated = registry.update("acct-a", llm.id, LlmUpdate(display_name="renamed"), if_match=1)
    assert (updated.display_name, updated.temperature, updated.version) == ("renamed", 0.3, 2)
    assert updated.status is LlmStatus.PENDING
    with pytest.raises(BadRequest):
        registry.update("acct-a", llm.id, LlmUpdate(llm_format="azure_openai"), if_match=None)


def test_a_new_secret_is_staged_and_the_status_stays(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    stored = registry.llms.get("acct-a", llm.id)
    assert stored is not None
    registry.llms.items[("acct-a", llm.id)] = stored.model_copy(update={"status": LlmStatus.VALID})  # type: ignore[attr-defined]
    updated = registry.update("acct-a", llm.id, LlmUpdate(secret="sk-next-000011112222"), if_match=None)
    assert updated.status is LlmStatus.VALID
    assert updated.secret_hint == llm.secret_hint
    assert registry.credentials.pending[("acct-a", llm.id)] == "sk-next-000011112222"  # type: ignore[attr-defined]
    assert registry.credentials.current[("acct-a", llm.id)] == SECRET  # type: ignore[attr-defined]
    assert registry.events.sent[-1] == (  # type: ignore[attr-defined]
        LLM_UPDATED,
        {"accountId": "acct-a", "llmId": llm.id, "version": 2, "llmFormat": "openai", "secretStaged": True},
    )


def test_a_stale_if_match_is_412_and_a_lost_race_retries_without_one(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    with pytest.raises(PreconditionFailed):
        registry.update("acct-a", llm.id, LlmUpdate(display_name="x"), if_match=7)
    registry.llms.conflicts_to_raise = 1  # type: ignore[attr-defined]
    updated = registry.update("acct-a", llm.id, LlmUpdate(display_name="after a race"), if_match=None)
    assert updated.display_name == "after a race"
    registry.llms.conflicts_to_raise = 1  # type: ignore[attr-defined]
    with pytest.raises(PreconditionFailed):
        registry.update("acct-a", llm.id, LlmUpdate(display_name="lost"), if_match=updated.version)


def test_other_accounts_and_builtins(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    for call in (
        lambda: registry.get("acct-b", llm.id),
        lambda: registry.update("acct-b", llm.id, LlmUpdate(display_name="x"), if_match=None),
        lambda: registry.delete("acct-b", llm.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert registry.get("acct-b", "ANAM_GPT_4O_MINI_V1").is_default
    with pytest.raises(Forbidden):
        registry.delete("acct-a", "ANAM_GPT_4O_MINI_V1")


def test_delete_removes_the_secret(registry: Registry) -> None:
    llm = registry.create("acct-a", create_body())
    registry.delete("acct-a", llm.id)
    assert ("acct-a", llm.id) not in registry.credentials.current  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        registry.get("acct-a", llm.id)


def test_list_pages_searches_and_adds_builtins(registry: Registry) -> None:
    for name in ("alpha", "beta", "gamma"):
        registry.create("acct-a", create_body(displayName=name))
    page = registry.list("acct-a", page=2, per_page=2, search=None, include_defaults=False)
    assert page.meta.total == 3
    assert [i.display_name for i in page.data] == ["alpha"]
    found = registry.list("acct-a", page=1, per_page=50, search="GAM", include_defaults=False)
    assert [i.display_name for i in found.data] == ["gamma"]
    everything = registry.list("acct-a", page=1, per_page=50, search=None, include_defaults=True)
    assert everything.meta.total == 3 + 5


@pytest.mark.parametrize(("secret", "hint"), [("abc", "…"), ("12345678", "…78"), (SECRET, "…cdef")])
def test_secret_hint_never_shows_more_than_a_quarter(secret: str, hint: str) -> None:
    assert secret_hint(secret) == hint


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@api.example.com/v1",
        "https://api.example.com\\@evil.com/v1",
        "https://api.example.com/v1#frag",
        "ftp://api.example.com/v1",
        "https://api.example.com:99999/v1",
        "https://api.example.com/v1\r\nX: 1",
    ],
)
def test_url_shapes_that_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        create_body(urls=[{"url": url}])


def test_azure_needs_deployment_and_version_unless_v1() -> None:
    with pytest.raises(ValidationError, match="deploymentName"):
        create_body(llmFormat="azure_openai", urls=[{"url": "https://r.openai.azure.com"}])
    create_body(llmFormat="azure_openai", urls=[{"url": "https://r.openai.azure.com/openai/v1"}])
    create_body(llmFormat="azure_openai", urls=[{"url": "https://r.openai.azure.com"}],
                deploymentName="d", apiVersion="2024-10-21")  # fmt: skip


# -- fallbackLlmIds --------------------------------------------------------------------------------


def valid_llm(registry: Registry, account: str = "acct-a", **overrides: Any) -> str:
    llm = registry.create(account, create_body(**overrides))
    stored = registry.llms.get(account, llm.id)
    assert stored is not None
    registry.llms.items[(account, llm.id)] = stored.model_copy(update={"status": LlmStatus.VALID})  # type: ignore[attr-defined]
    return llm.id


def refusal(registry: Registry, account: str, llm_id: str | None, fallbacks: list[str]) -> str:
    with pytest.raises(BadRequest) as caught:
        if llm_id is None:
            registry.create(account, create_body(fallbackLlmIds=fallbacks))
        else:
            registry.update(account, llm_id, LlmUpdate.model_validate({"fallbackLlmIds": fallbacks}), None)
    assert caught.value.code == "invalid_fallback"
    return caught.value.message


def test_fallbacks_are_own_valid_llms_or_server_side_builtins(registry: Registry) -> None:
    own = valid_llm(registry)
    created = registry.create("acct-a", create_body(fallbackLlmIds=[own, "ANAM_GPT_4O_MINI_V1"]))
    assert created.fallback_llm_ids == [own, "ANAM_GPT_4O_MINI_V1"]
    pending = registry.create("acct-a", create_body()).id
    other = valid_llm(registry, "acct-b")
    assert "not valid" in refusal(registry, "acct-a", None, [pending])
    assert "not an LLM of this account" in refusal(registry, "acct-a", None, [other])
    assert "runs on the client" in refusal(registry, "acct-a", None, ["CUSTOMER_CLIENT_V1"])
    with pytest.raises(ValidationError):
        create_body(fallbackLlmIds=[own, own])
    with pytest.raises(ValidationError):
        create_body(fallbackLlmIds=[own, "ANAM_GPT_4O_MINI_V1", pending])


def test_fallbacks_never_make_a_cycle(registry: Registry) -> None:
    first = valid_llm(registry)
    second = valid_llm(registry, fallbackLlmIds=[first])
    third = valid_llm(registry, fallbackLlmIds=[second])
    assert "no cycles" in refusal(registry, "acct-a", first, [third])
    assert "itself" in refusal(registry, "acct-a", first, [first]) or "no cycles" in refusal(
        registry, "acct-a", first, [first]
    )
    updated = registry.update(
        "acct-a", first, LlmUpdate.model_validate({"fallbackLlmIds": ["ANAM_GPT_4O_MINI_V1"]}), None
    )
    assert updated.fallback_llm_ids == ["ANAM_GPT_4O_MINI_V1"] and updated.status is LlmStatus.VALID
