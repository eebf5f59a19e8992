"""Smoke: the public API of any gateway, end to end (`make smoke API_URL=… API_KEY=…`).

Without API_URL it proves `llm-gateway dev`; with it, a deployed stack. It registers one LLM
(SMOKE_LLM_URL / SMOKE_LLM_KEY / SMOKE_LLM_FORMAT / SMOKE_LLM_MODEL), waits for its validation,
streams through it with the official `openai` SDK, revokes a session, and deletes the LLM again.
Only public routes: nothing here reads the stack's AWS resources.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import SMOKE_VALIDATION_TIMEOUT_S, SmokeTarget

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def api(smoke_target: SmokeTarget) -> Iterator[httpx.Client]:
    with smoke_target.client() as client:
        yield client


@pytest.fixture(scope="module")
def smoke_llm(smoke_target: SmokeTarget, api: httpx.Client) -> Iterator[dict[str, Any]]:
    """The smoke LLM, registered, validated, and deleted (and gone) at the end."""
    created = api.post("/v1/llms", json=smoke_target.llm, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert created.status_code == 201, created.text
    llm: dict[str, Any] = created.json()
    try:
        deadline = time.monotonic() + SMOKE_VALIDATION_TIMEOUT_S
        while llm["status"] == "pending":
            assert time.monotonic() < deadline, f"validation did not finish in {SMOKE_VALIDATION_TIMEOUT_S} s"
            time.sleep(1)
            llm = api.get(f"/v1/llms/{llm['id']}").json()
        report = api.get(f"/v1/llms/{llm['id']}/validation")
        assert llm["status"] == "valid", f"the smoke LLM is {llm['status']}: {report.text[:2000]}"
        yield llm
    finally:
        assert api.delete(f"/v1/llms/{llm['id']}").status_code in (200, 204)
        assert api.get(f"/v1/llms/{llm['id']}").status_code == 404


def mint(api: httpx.Client, llm_id: str) -> dict[str, Any]:
    response = api.post(
        "/v1/auth/session-token",
        json={
            "personaConfig": {
                "name": "smoke",
                "llmId": llm_id,
                "systemPrompt": "Answer in one short sentence.",
            }
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers.get("cache-control") == "no-store"
    body: dict[str, Any] = response.json()
    return body


def sdk(smoke_target: SmokeTarget, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{smoke_target.api_url}/v1", api_key=token, max_retries=0, timeout=120)


def test_the_public_documents_answer_without_a_key(smoke_target: SmokeTarget) -> None:
    with smoke_target.client(authenticated=False) as anonymous:
        jwks = anonymous.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert {(k["kty"], k["crv"], k["alg"]) for k in jwks.json()["keys"]} == {("EC", "P-256", "ES256")}
        spec = anonymous.get("/v1/openapi.json")
        assert spec.status_code == 200 and "/v1/llms" in spec.json()["paths"]


def test_management_needs_the_account_key(smoke_target: SmokeTarget) -> None:
    with smoke_target.client(authenticated=False) as anonymous:
        refused = anonymous.get("/v1/llms")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_the_registered_llm_is_valid_listed_and_never_shows_its_key(
    smoke_target: SmokeTarget, api: httpx.Client, smoke_llm: dict[str, Any]
) -> None:
    hint = smoke_llm["secretHint"]
    assert hint.startswith("…") and 1 <= len(hint) - 1 <= 4 and smoke_target.llm_key.endswith(hint[1:])
    listed = api.get("/v1/llms", params={"perPage": 100}).json()["data"]
    assert smoke_llm["id"] in {item["id"] for item in listed}
    report = api.get(f"/v1/llms/{smoke_llm['id']}/validation").json()
    assert report["compatible"] is True
    assert all(check["status"] != "fail" for check in report["checks"])
    assert api.get(f"/v1/llms/{uuid.uuid4()}").status_code == 404


def test_a_session_token_streams_with_the_openai_sdk(
    smoke_target: SmokeTarget, api: httpx.Client, smoke_llm: dict[str, Any]
) -> None:
    token = mint(api, smoke_llm["id"])["sessionToken"]
    stream = sdk(smoke_target, token).chat.completions.create(
        model="ignored", messages=[{"role": "user", "content": "Say hello."}], stream=True
    )
    text, finish = [], []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish += [choice.finish_reason] if choice.finish_reason else []
    assert "".join(text).strip()
    assert finish == ["stop"]


def test_a_non_streaming_call_answers_one_chat_completion(
    smoke_target: SmokeTarget, api: httpx.Client, smoke_llm: dict[str, Any]
) -> None:
    token = mint(api, smoke_llm["id"])["sessionToken"]
    completion = sdk(smoke_target, token).chat.completions.create(
        model="ignored", messages=[{"role": "user", "content": "Say hello."}], stream=False
    )
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert (choice.message.content or "").strip()
    assert choice.finish_reason in ("stop", "length")


def test_the_raw_stream_carries_request_id_and_server_timing_and_ends_with_done(
    smoke_target: SmokeTarget, api: httpx.Client, smoke_llm: dict[str, Any]
) -> None:
    token = mint(api, smoke_llm["id"])["sessionToken"]
    with (
        httpx.Client(timeout=120) as client,
        client.stream(
            "POST",
            f"{smoke_target.api_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            json={"messages": [{"role": "user", "content": "Say hello."}], "stream": True},
        ) as response,
    ):
        body = response.read()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"]
    assert "gateway;dur=" in response.headers["server-timing"]
    assert body.rstrip().endswith(b"data: [DONE]")


def test_a_revoked_session_is_refused(
    smoke_target: SmokeTarget, api: httpx.Client, smoke_llm: dict[str, Any]
) -> None:
    minted = mint(api, smoke_llm["id"])
    assert api.delete(f"/v1/sessions/{minted['sessionId']}").status_code in (200, 204)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(smoke_target, minted["sessionToken"]).chat.completions.create(
            model="ignored", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert caught.value.status_code == 403
    assert caught.value.response.json()["error"]["code"] == "session_revoked"
