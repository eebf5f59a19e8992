"""Issue 10 through `llm-gateway dev`: a revoke, a delete and a URL change take effect on the very
next request after warm ones (the stream container holds the session, config and key in memory;
each request's freshness read must still see the change)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.e2e.conftest import RunningStack
from tests.e2e.test_stream_e2e import fake_requests, mint, stream_error
from tests.local_stack import llm_body


def streams(stack: RunningStack, token: str, content: str = "hi") -> None:
    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"{stack.api_url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": content}], "stream": True},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    assert response.content.endswith(b"data: [DONE]\n\n")


def settled(api: httpx.Client, llm_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        llm: dict[str, Any] = api.get(f"/v1/llms/{llm_id}").json()
        if llm["status"] != "pending":
            return llm
        assert time.monotonic() < deadline, "validation did not finish"
        time.sleep(0.1)


def registered(stack: RunningStack, api: httpx.Client, **overrides: Any) -> str:
    body = llm_body(stack, secret="fake-key", **overrides)
    created = api.post("/v1/llms", json=body)
    assert created.status_code == 201, created.text
    llm_id = str(created.json()["id"])
    assert settled(api, llm_id)["status"] == "valid"
    return llm_id


def test_a_revoked_session_is_refused_on_the_next_request(stack: RunningStack, api: httpx.Client) -> None:
    minted = mint(api, stack.llms["openai"])
    streams(stack, minted["sessionToken"])
    streams(stack, minted["sessionToken"])
    assert api.delete(f"/v1/sessions/{minted['sessionId']}").status_code == 204
    error = stream_error(stack, minted["sessionToken"])
    assert error.status_code == 403
    assert error.response.json()["error"]["code"] == "session_revoked"


def test_a_deleted_llm_is_refused_on_the_next_request(stack: RunningStack, api: httpx.Client) -> None:
    llm_id = registered(stack, api, displayName="deleted soon")
    token = mint(api, llm_id)["sessionToken"]
    streams(stack, token)
    streams(stack, token)
    assert api.delete(f"/v1/llms/{llm_id}").status_code == 204
    error = stream_error(stack, token)
    assert error.status_code == 403
    assert error.response.json()["error"]["code"] == "session_inactive"


def test_a_url_change_applies_on_the_next_request(stack: RunningStack, api: httpx.Client) -> None:
    assert stack.fake_provider_url
    llm_id = registered(stack, api, displayName="moving")
    token = mint(api, llm_id)["sessionToken"]
    streams(stack, token)
    streams(stack, token)

    # A URL that does not work: the old, working one must not serve the next request.
    broken = api.put(f"/v1/llms/{llm_id}", json={"urls": [{"url": f"{stack.fake_provider_url}/v2/nowhere"}]})
    assert broken.status_code == 200, broken.text
    error = stream_error(stack, token)
    assert error.status_code == 409
    assert error.response.json()["error"]["code"] in ("llm_validation_pending", "llm_invalid")
    assert settled(api, llm_id)["status"] == "invalid"

    # A working URL again, told apart by its query: once valid, the next stream is answered there.
    # (Another host name would be another origin, which the local stack refuses unless allowed.)
    moved = f"{stack.fake_provider_url}/v1/chat/completions?route=moved"
    fixed = api.put(f"/v1/llms/{llm_id}", json={"urls": [{"url": moved}]})
    assert fixed.status_code == 200, fixed.text
    assert settled(api, llm_id)["status"] == "valid"
    # Told apart by its words too: the stack's own probes (health, re-validation) reach the fake
    # provider at any time, so "the last request it saw" may not be this one.
    streams(stack, token, content="where are you answered now?")
    answered = [r for r in fake_requests(stack) if "where are you answered now?" in json.dumps(r["body"])]
    assert answered and {r["query"].get("route") for r in answered} == {"moved"}
