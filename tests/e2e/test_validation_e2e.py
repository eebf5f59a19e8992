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


def wait_for_run(
    api: httpx.Client, llm_id: str, run: dict[str, Any], *, timeout: float = 60
) -> dict[str, Any]:
    """GET /validation until the run is no longer pending; the report then on file."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/v1/llms/{llm_id}/validation")
        body: dict[str, Any] = response.json()
        pending = body if response.status_code == 202 else body.get("pending")
        if not pending or pending["validationId"] != run["validationId"]:
            assert response.status_code == 200, body
            return body
        assert time.monotonic() < deadline, f"{run['validationId']} still {pending['status']}"
        time.sleep(0.1)


def validate_now(api: httpx.Client, llm_id: str) -> dict[str, Any]:
    accepted = api.post(f"/v1/llms/{llm_id}/validate")
    assert accepted.status_code == 202, accepted.text
    return wait_for_run(api, llm_id, accepted.json())


def test_demo_llms_of_every_spec_are_already_valid(api: httpx.Client, stack: RunningStack) -> None:
    assert set(stack.llms) == {"openai", "azure_openai", "gemini", "anthropic"}
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
    assert validate_now(api, created["id"])["compatible"] is True


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


def test_validate_now_answers_202_and_the_report_arrives_at_validation(
    api: httpx.Client, stack: RunningStack
) -> None:
    """POST /validate goes the registration's way (bus -> queue -> validator); the report lands at
    the Location, under the run's id, and GET /validation says while it is still pending."""
    llm_id = stack.llms["azure_openai"]
    before = api.get(f"/v1/llms/{llm_id}/validation").json()
    accepted = api.post(f"/v1/llms/{llm_id}/validate")
    assert accepted.status_code == 202
    run = accepted.json()
    assert run["status"] in ("queued", "running") and run["validationId"].startswith("val_")
    assert accepted.headers["location"].endswith(f"/v1/llms/{llm_id}/validation")
    report = wait_for_run(api, llm_id, run)
    assert report["validationId"] == run["validationId"] != before["validationId"]
    assert report["pending"] is None and report["compatible"] is True
    assert api.get(f"/v1/llms/{llm_id}").json()["status"] == "valid"


def test_a_slow_endpoint_on_five_urls_is_validated_inside_the_budgets(
    api: httpx.Client, stack: RunningStack
) -> None:
    """Every URL takes seconds to answer: probed one after another they would not fit the 25 s of
    /llms/test; probed at once, both the dry run and a queued run report every URL in time."""
    from llm_gateway.domain.conformance.budget import CONFIG_TEST_BUDGET_S
    from llm_gateway.domain.conformance.engine import JOIN_GRACE_S

    assert stack.fake_provider_url
    slow = llm_body(
        stack, secret="fake-key", modelName="fake-fault-delay-first-byte-3000",
        urls=[{"url": f"{stack.fake_provider_url}/v1/chat/completions?replica={n}"} for n in range(5)],
    )  # fmt: skip
    started = time.monotonic()
    tested = api.post("/v1/llms/test", json=slow, timeout=60)
    elapsed = time.monotonic() - started
    assert tested.status_code == 200, tested.text
    report = tested.json()
    assert report["compatible"] is True, [c for c in report["checks"] if c["status"] == "fail"]
    assert len(report["details"]["urls"]) == 5
    assert {c["id"] for c in report["checks"]} >= {"connection", "connection@5", "auth_probe@5"}
    assert elapsed < CONFIG_TEST_BUDGET_S + JOIN_GRACE_S + 5  # finished and reported, with room to spare

    created = api.post("/v1/llms", json=slow).json()
    assert wait_for_status(api, created["id"], timeout=60)["status"] == "valid"
    queued = validate_now(api, created["id"])
    assert queued["compatible"] is True and len(queued["details"]["urls"]) == 5


def test_an_endpoint_that_buffers_its_answer_fails_incremental_delivery(
    api: httpx.Client, stack: RunningStack
) -> None:
    report = api.post(
        "/v1/llms/test",
        json=llm_body(stack, secret="fake-key", modelName="fake-fault-buffered-2500"),
        timeout=60,
    ).json()
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [(c["id"], c["category"]) for c in failed] == [("incremental", "streaming")]
    assert "not streamed" in failed[0]["message"] and "buffering" in failed[0]["hint"]
