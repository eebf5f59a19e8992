"""SECURITY 17, driven by the OpenAPI document: for every route with an object id, another
account's id and a made-up id get the same 404 (status, code and message shape)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import RunningStack

BODIES: dict[str, Any] = {"put": {"displayName": "not yours"}, "post": None, "delete": None, "get": None}


def _object_routes(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    routes = []
    for path, operations in document["paths"].items():
        params = re.findall(r"\{(\w+)\}", path)
        if len(params) != 1:
            continue
        for method in operations:
            routes.append((method, path, params[0]))
    return routes


def _shape(response: httpx.Response, object_id: str) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"].replace(object_id, "<id>")


def test_every_object_route_hides_other_accounts_objects(
    api: httpx.Client, other_api: httpx.Client, stack: RunningStack
) -> None:
    document = api.get("/v1/openapi.json").json()
    routes = _object_routes(document)
    assert {p for _, p, _ in routes} >= {
        "/v1/llms/{llm_id}",
        "/v1/llms/{llm_id}/validate",
        "/v1/sessions/{session_id}",
        "/v1/api-keys/{key_id}",
        "/v1/llms/{llm_id}/health",
        "/v1/webhooks/{webhook_id}",
    }
    owned = {
        "llm_id": stack.llms["openai"],
        "session_id": api.post(
            "/v1/auth/session-token", json={"personaConfig": {"name": "p", "llmId": stack.llms["openai"]}}
        ).json()["sessionId"],
        "key_id": api.get("/v1/api-keys").json()["data"][0]["id"],
        "webhook_id": _a_webhook(api, stack),
    }
    for method, path, param in routes:
        theirs, made_up = owned[param], str(uuid.uuid4())
        kwargs = {"json": BODIES[method]} if BODIES[method] is not None else {}
        existing = other_api.request(method.upper(), path.replace("{" + param + "}", theirs), **kwargs)
        missing = other_api.request(method.upper(), path.replace("{" + param + "}", made_up), **kwargs)
        assert existing.status_code == 404, (method, path, existing.text)
        assert _shape(existing, theirs) == _shape(missing, made_up), (method, path)
    # And the owner still has everything.
    assert api.get(f"/v1/llms/{owned['llm_id']}").status_code == 200
    assert owned["key_id"] in {k["id"] for k in api.get("/v1/api-keys").json()["data"]}
    assert owned["webhook_id"] in {w["id"] for w in api.get("/v1/webhooks").json()["data"]}


def _a_webhook(api: httpx.Client, stack: RunningStack) -> str:
    """One of the demo account's webhooks (other tests may have made the most it can have)."""
    existing = api.get("/v1/webhooks").json()["data"]
    if existing:
        return str(existing[0]["id"])
    created = api.post("/v1/webhooks", json={"url": f"{stack.fake_provider_url}/hooks"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])
