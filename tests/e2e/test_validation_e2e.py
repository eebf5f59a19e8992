"""Event-driven validation through `llm-gateway dev`: registrations and key changes are validated
by the bus → queue → validator path with no request from the user."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import CANARY
from tests.e2e.conftest import RunningStack, llm_body


def wait_for_status(
    api: httpx.Client, llm_id: str, *, not_status: str = "pending", timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        llm: dict[str, Any] = api.get(f"/v1/llms/{llm_id}").json()
        if llm["status"] != not_status or time.monotonic() > deadline:
            return llm
        time.sleep(0.1)


def test_demo_llms_of_every_spec_are_already_valid(api: httpx.Client, stack: RunningStack) -> None:
    assert set(stack.llms) == {"openai", "azure_openai", "gemini"}
    for llm_id in stack.llms.values():
        llm = api.get(f"/v1/llms/{llm_id}").json()
        assert llm["status"] == "valid", llm
        assert llm["validation"]["compatible"] is True


def test_a_registration_becomes_valid_on_its_own(api: httpx.Client, stack: RunningStack) -> None:
    body = llm_body(stack, secret="fake-key")
    created = api.post("/v1/llms", json=body).json()
    assert created["status"] == "pending"
    llm = wait_for_status(api, created["id"])
    assert llm["status"] == "valid", llm["validation"]
    report = api.get(f"/v1/llms/{created['id']}/validation").json()
    assert report["compatible"] is True
    assert report["llmFormat"] == "openai"
    assert {c["category"] for c in report["checks"]} >= {"network", "auth", "streaming", "format"}


def test_a_misbehaving_endpoint_is_invalid_with_the_failing_check_and_a_hint(
    api: httpx.Client, stack: RunningStack
) -> None:
    created = api.post(
        "/v1/llms", json=llm_body(stack, secret="fake-key", modelName="fake-fault-no-done")
    ).json()
    llm = wait_for_status(api, created["id"])
    assert llm["status"] == "invalid"
    assert llm["validation"]["compatible"] is False
    report = api.get(f"/v1/llms/{created['id']}/validation").json()
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["id"] for c in failed] == ["done_terminator"]
    assert failed[0]["category"] == "format"
    assert failed[0]["hint"]


def test_a_wrong_key_is_reported_as_auth(api: httpx.Client, stack: RunningStack) -> None:
    created = api.post("/v1/llms", json=llm_body(stack)).json()  # the canary is not the fake's key
    llm = wait_for_status(api, created["id"])
    assert llm["status"] == "invalid"
    assert llm["validation"]["errorCode"] == "upstream_unauthorized"
    report = api.get(f"/v1/llms/{created['id']}/validation").json()
    assert any(c["category"] == "auth" and c["status"] == "fail" for c in report["checks"])
    assert CANARY not in str(report)


def test_rotating_to_a_bad_key_keeps_the_old_one_in_service(api: httpx.Client, stack: RunningStack) -> None:
    created = api.post("/v1/llms", json=llm_body(stack, secret="fake-key")).json()
    assert wait_for_status(api, created["id"])["status"] == "valid"
    rotated = api.put(f"/v1/llms/{created['id']}", json={"secret": CANARY})
    assert rotated.status_code == 200
    deadline = time.monotonic() + 20
    while True:
        report = api.get(f"/v1/llms/{created['id']}/validation").json()
        if (report.get("details") or {}).get("rotation") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert report["details"]["rotation"] == "refused"
    assert "secret" in api.get(f"/v1/llms/{created['id']}").json()["validation"]["summary"].lower()
    llm = api.get(f"/v1/llms/{created['id']}").json()
    assert llm["status"] == "valid"
    assert llm["secretHint"] == created["secretHint"]  # still the old key's hint
    # The old key still works end to end: validate now.
    now = api.post(f"/v1/llms/{created['id']}/validate").json()
    assert now["compatible"] is True


def test_rotating_to_a_good_key_promotes_it(api: httpx.Client, stack: RunningStack) -> None:
    created = api.post("/v1/llms", json=llm_body(stack)).json()  # wrong key first: invalid
    assert wait_for_status(api, created["id"])["status"] == "invalid"
    api.put(f"/v1/llms/{created['id']}", json={"secret": "fake-key"})
    llm = wait_for_status(api, created["id"], not_status="invalid")
    assert llm["status"] == "valid"


def test_test_route_runs_the_suite_and_stores_nothing(api: httpx.Client, stack: RunningStack) -> None:
    before = api.get("/v1/llms", params={"perPage": 100}).json()["meta"]["total"]
    report = api.post(
        "/v1/llms/test", json=llm_body(stack, secret="fake-key", modelName="fake-fault-ndjson")
    ).json()
    assert report["compatible"] is False
    assert any(c["category"] == "streaming" and c["status"] == "fail" for c in report["checks"])
    assert api.get("/v1/llms", params={"perPage": 100}).json()["meta"]["total"] == before


def test_validation_routes_keep_accounts_apart(
    api: httpx.Client, other_api: httpx.Client, stack: RunningStack
) -> None:
    mine = stack.llms["openai"]
    assert other_api.post(f"/v1/llms/{mine}/validate").status_code == 404
    assert other_api.get(f"/v1/llms/{mine}/validation").status_code == 404
    assert api.post("/v1/llms/ANAM_GPT_4O_MINI_V1/validate").status_code == 403
