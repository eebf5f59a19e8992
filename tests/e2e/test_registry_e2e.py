"""The registry through `llm-gateway dev`: HTTP in, the same behaviour as API Gateway + Lambda."""

from __future__ import annotations

import concurrent.futures
import json
import uuid

import httpx

from tests.conftest import CANARY
from tests.e2e.conftest import RunningStack, llm_body


def test_missing_or_wrong_api_key_is_401_in_the_error_shape(anonymous: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer llmgw_wrong"}, {"Authorization": "Basic abc"}):
        response = anonymous.get("/v1/llms", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_unknown_route_is_404(api: httpx.Client) -> None:
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "route_not_found"


def test_register_get_update_list_delete(api: httpx.Client, stack: RunningStack) -> None:
    created = api.post("/v1/llms", json=llm_body(stack))
    assert created.status_code == 201, created.text
    llm = created.json()
    assert llm["status"] == "pending"
    assert CANARY not in created.text
    assert api.get(f"/v1/llms/{llm['id']}").json()["displayName"] == "e2e model"
    updated = api.put(
        f"/v1/llms/{llm['id']}", json={"description": "now with a description"}, headers={"If-Match": "1"}
    )
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    stale = api.put(f"/v1/llms/{llm['id']}", json={"description": "late"}, headers={"If-Match": "1"})
    assert stale.status_code == 412
    listed = api.get("/v1/llms", params={"search": "e2e", "perPage": 100}).json()
    assert llm["id"] in [i["id"] for i in listed["data"]]
    assert api.delete(f"/v1/llms/{llm['id']}").status_code == 204
    assert api.get(f"/v1/llms/{llm['id']}").status_code == 404


def test_builtins_are_read_only(api: httpx.Client) -> None:
    listed = api.get("/v1/llms", params={"includeDefaults": "true", "perPage": 100}).json()
    assert "ANAM_GPT_4O_MINI_V1" in {i["id"] for i in listed["data"]}
    assert api.put("/v1/llms/ANAM_GPT_4O_MINI_V1", json={"displayName": "x"}).status_code == 403
    assert api.delete("/v1/llms/CUSTOMER_CLIENT_V1").status_code == 403


def test_a_second_account_sees_none_of_the_first(
    api: httpx.Client, other_api: httpx.Client, stack: RunningStack
) -> None:
    mine = api.post("/v1/llms", json=llm_body(stack)).json()
    missing = str(uuid.uuid4())
    for method, extra in (("GET", {}), ("PUT", {"json": {"displayName": "x"}}), ("DELETE", {})):
        theirs = other_api.request(method, f"/v1/llms/{mine['id']}", **extra)
        nothing = other_api.request(method, f"/v1/llms/{missing}", **extra)
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json()["error"]["code"] == nothing.json()["error"]["code"]
    assert mine["id"] not in [
        i["id"] for i in other_api.get("/v1/llms", params={"perPage": 100}).json()["data"]
    ]
    assert api.get(f"/v1/llms/{mine['id']}").status_code == 200


def test_same_idempotent_registration_from_two_accounts(
    api: httpx.Client, other_api: httpx.Client, stack: RunningStack
) -> None:
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    body = llm_body(stack, displayName="idempotent")
    a1, a2 = api.post("/v1/llms", json=body, headers=key), api.post("/v1/llms", json=body, headers=key)
    b1 = other_api.post("/v1/llms", json=body, headers=key)
    assert a1.status_code == a2.status_code == b1.status_code == 201
    assert a1.json()["id"] == a2.json()["id"] != b1.json()["id"]


def test_concurrent_duplicate_registrations_create_exactly_one(
    api: httpx.Client, stack: RunningStack
) -> None:
    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = llm_body(stack, displayName=f"race-{uuid.uuid4()}")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: api.post("/v1/llms", json=body, headers=key), range(8)))
    assert {r.status_code for r in responses} <= {201, 409}
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    listed = api.get("/v1/llms", params={"search": body["displayName"], "perPage": 100}).json()
    assert listed["meta"]["total"] == 1


def test_concurrent_updates_with_the_same_version_one_wins(api: httpx.Client, stack: RunningStack) -> None:
    llm = api.post("/v1/llms", json=llm_body(stack)).json()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        responses = list(
            pool.map(
                lambda n: api.put(
                    f"/v1/llms/{llm['id']}", json={"displayName": f"writer {n}"}, headers={"If-Match": "1"}
                ),
                range(2),
            )
        )
    assert sorted(r.status_code for r in responses) == [200, 412]


def test_oversized_and_malformed_bodies(api: httpx.Client) -> None:
    big = api.post("/v1/llms", content=b'{"displayName": "' + b"x" * 1_100_000 + b'"}',
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "payload_too_large"
    nested = api.post(
        "/v1/llms", content=b"[" * 10_000 + b"]" * 10_000, headers={"Content-Type": "application/json"}
    )
    assert nested.status_code == 400
    bad_utf8 = api.post(
        "/v1/llms", content=b'{"displayName": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert bad_utf8.status_code == 400


def test_crlf_in_headers_or_secret_is_refused(api: httpx.Client, stack: RunningStack) -> None:
    for overrides in (
        {"headers": {"X-A": "1\r\nX-Injected: 2"}},
        {"secret": "sk-a\r\nb"},
        {"secret": "x" * 5000},
    ):
        response = api.post("/v1/llms", json=llm_body(stack, **overrides))
        assert response.status_code == 400, overrides
        assert "\r\n" not in json.dumps(response.json())


def test_secret_lives_only_in_secrets_manager_encrypted(api: httpx.Client, stack: RunningStack) -> None:
    llm = api.post("/v1/llms", json=llm_body(stack)).json()
    sm = stack.aws("secretsmanager")
    described = sm.describe_secret(SecretId=f"llm-gateway/local/{stack.account_id}/{llm['id']}")
    assert described["KmsKeyId"]
    value = sm.get_secret_value(SecretId=described["ARN"])
    assert CANARY.encode() not in value["SecretBinary"]


def test_openapi_document_is_public(anonymous: httpx.Client) -> None:
    response = anonymous.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "/v1/llms" in response.json()["paths"]


def test_control_characters_in_the_path_do_not_reach_another_route(api: httpx.Client) -> None:
    for raw in ("/v1/llms/%09", "/v1/llms/%0D", "/v1/llms/%0A"):
        response = api.get(raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "invalid_path"
