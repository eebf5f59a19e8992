"""Session tokens through `llm-gateway dev`: mint, verify with the published JWKS, alias, 404s, 409s, revoke."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import plain_env
from tests.e2e.conftest import RunningStack, llm_body

CLAIMS = ["aud", "exp", "iat", "iss", "jti", "llm", "nbf", "sid", "sub"]
PERSONA = {"name": "Cara", "systemPrompt": "You are Cara. Keep it short."}


def mint(
    client: httpx.Client, llm_id: str, *, path: str = "/v1/auth/session-token", **persona: Any
) -> httpx.Response:
    return client.post(path, json={"personaConfig": PERSONA | {"llmId": llm_id} | persona})


def verify_with_jwks(anonymous: httpx.Client, token: str) -> dict[str, Any]:
    jwks = anonymous.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["cache-control"] == "public, max-age=300"
    keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks.json()["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(
        token, keys[kid], algorithms=["ES256"], audience="llm-gateway-stream", options={"require": CLAIMS}
    )
    return dict(claims)


def registered(api: httpx.Client, stack: RunningStack) -> str:
    """A new LLM, once the local validator has finished with it (so it cannot overwrite our status)."""
    llm_id = str(api.post("/v1/llms", json=llm_body(stack)).json()["id"])
    deadline = time.monotonic() + 20
    while api.get(f"/v1/llms/{llm_id}").json()["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    return llm_id


def set_llm_status(stack: RunningStack, account_id: str, llm_id: str, status: str, summary: str) -> None:
    """What the validator would store; set directly so each case gets the status it needs."""
    ddb = stack.aws("dynamodb")
    key = {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": f"LLM#{llm_id}"}}
    doc = json.loads(ddb.get_item(TableName=stack.table_name, Key=key)["Item"]["doc"]["S"])
    doc["status"] = status
    doc["validation"] = {
        "compatible": status == "valid",
        "summary": summary,
        "error_code": None,
        "checked_at": None,
    }
    ddb.update_item(
        TableName=stack.table_name,
        Key=key,
        UpdateExpression="SET #doc = :doc, #status = :status",
        ExpressionAttributeNames={"#doc": "doc", "#status": "status"},
        ExpressionAttributeValues={":doc": {"S": json.dumps(doc)}, ":status": {"S": status}},
    )


def test_mint_for_builtins_and_demo_llms_verifies_with_the_published_jwks(
    api: httpx.Client, anonymous: httpx.Client, stack: RunningStack
) -> None:
    ids = ["ANAM_GPT_4O_MINI_V1", "9d8900ee-257d-4401-8817-ba9c835e9d36", *stack.llms.values()]
    for llm_id in ids:
        response = mint(api, llm_id)
        assert response.status_code == 200, response.text
        body = response.json()
        claims = verify_with_jwks(anonymous, body["sessionToken"])
        assert (
            claims["llm"] == llm_id
            and claims["sub"] == stack.account_id
            and claims["sid"] == body["sessionId"]
        )
        assert "Cara" not in json.dumps(claims)  # the persona lives in the session record, not the token


@pytest.mark.parametrize("path", ["/v1/auth/session-token", "/v1/session-token"])
def test_brain_type_alias_works_with_a_warning_on_both_paths(
    api: httpx.Client, anonymous: httpx.Client, path: str
) -> None:
    response = api.post(path, json={"personaConfig": PERSONA | {"brainType": "ANAM_GPT_4O_MINI_V1"}})
    assert response.status_code == 200, response.text
    assert response.headers["deprecation"] == "true"
    assert any("brainType" in w for w in response.json()["warnings"])
    assert verify_with_jwks(anonymous, response.json()["sessionToken"])["llm"] == "ANAM_GPT_4O_MINI_V1"
    both = api.post(
        path, json={"personaConfig": {"llmId": "ANAM_GPT_4O_MINI_V1", "brainType": "CUSTOMER_CLIENT_V1"}}
    )
    assert both.status_code == 400


def test_cross_account_llm_and_session_are_404(
    api: httpx.Client, other_api: httpx.Client, stack: RunningStack
) -> None:
    mine = registered(api, stack)
    set_llm_status(stack, stack.account_id, mine, "valid", "All checks passed.")
    assert mint(api, mine).status_code == 200
    theirs, nothing = mint(other_api, mine), mint(other_api, str(uuid.uuid4()))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["error"]["code"] == nothing.json()["error"]["code"] == "llm_not_found"

    session_id = mint(api, "ANAM_GPT_4O_MINI_V1").json()["sessionId"]
    assert other_api.delete(f"/v1/sessions/{session_id}").status_code == 404
    assert other_api.delete(f"/v1/sessions/sess_{uuid.uuid4().hex}").status_code == 404
    assert api.delete(f"/v1/sessions/{session_id}").status_code == 204


@pytest.mark.parametrize(
    ("status", "code"), [("pending", "llm_validation_pending"), ("invalid", "llm_invalid")]
)
def test_pending_and_invalid_llms_are_409(
    api: httpx.Client, stack: RunningStack, status: str, code: str
) -> None:
    llm_id = registered(api, stack)
    set_llm_status(stack, stack.account_id, llm_id, status, "The endpoint refused the connection.")
    response = mint(api, llm_id)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == code
    if status == "invalid":
        assert "refused the connection" in response.json()["error"]["message"]


def test_cli_token_and_revoke(stack: RunningStack, anonymous: httpx.Client) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "llm_gateway_cli.main", *args, "--state-file", str(stack.state_file)],
            capture_output=True, text=True, timeout=30, env=plain_env(),
        )  # fmt: skip

    plain = cli("token", "--llm", "ANAM_GPT_4O_MINI_V1", "--system-prompt", "Be brief.", "--ttl", "7200")
    assert plain.returncode == 0, plain.stderr
    claims = verify_with_jwks(anonymous, plain.stdout.strip())
    assert claims["exp"] - claims["iat"] == 3600

    minted = cli("token", "--llm", "ANAM_GPT_4O_MINI_V1", "--json")
    session_id = json.loads(minted.stdout)["sessionId"]
    assert cli("sessions", "revoke", session_id).returncode == 0
    missing = cli("token", "--llm", "no-such-llm")
    assert missing.returncode == 1 and "llm_not_found" in missing.stderr
