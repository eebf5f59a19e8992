"""API keys as a resource: the api_keys handler on events/api_keys/*, the authorizer on
events/authorizer/*, the table in moto. Keys are shown once, stored hashed, limited to 10, and a
revoked key is refused by the very next authorizer call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llm_gateway.domain.accounts import MAX_API_KEYS, authenticate, create_account, hash_api_key
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import LeakCollector, load_event
from tests.integration.conftest import AwsStack


def _call(
    event_name: str, account_id: str, *, body: Any = None, key_id: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    from functions.api_keys import handler

    event = load_event(event_name)
    event["requestContext"]["authorizer"] = {"accountId": account_id, "principalId": account_id}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if key_id is not None:
        event["path"] = f"/v1/api-keys/{key_id}"
        event["pathParameters"] = {"id": key_id}
    result = handler.lambda_handler(event, LambdaContext("api-keys"))
    text = result.get("body") or ""
    headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return int(result["statusCode"]), (json.loads(text) if text else None), headers


def _authorize(api_key: str) -> str | None:
    """The real authorizer handler on events/authorizer/valid_key.json with this key."""
    from functions.authorizer import handler

    event = load_event("authorizer/valid_key")
    event["headers"]["Authorization"] = f"Bearer {api_key}"
    event["multiValueHeaders"]["Authorization"] = [f"Bearer {api_key}"]
    try:
        policy = handler.lambda_handler(event, LambdaContext("authorizer"))
    except Exception as exc:
        refusal = str(exc)
    else:
        return str(policy["context"]["accountId"])
    assert refusal == "Unauthorized"  # the exact text API Gateway turns into a 401
    return None


@pytest.fixture
def owner(aws: AwsStack) -> tuple[str, str]:
    created = create_account(aws.registry.account_repository, "team-a")
    return created.account_id, created.api_key


def test_create_shows_the_key_once_and_list_shows_only_its_hint(
    owner: tuple[str, str], aws: AwsStack, leak_collector: LeakCollector
) -> None:
    account, first_key = owner
    status, created, headers = _call("api_keys/create", account)
    assert status == 201
    assert headers["Cache-Control"] == "no-store"
    new_key = created["key"]
    assert new_key.startswith("llmgw_") and created["name"] == "ci deploys"
    assert created["hint"] == "…" + new_key[-4:]
    status, listed, headers = _call("api_keys/list", account)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert [k["name"] for k in listed["data"]] == ["default", "ci deploys"]
    assert set(listed["data"][1]) == {"id", "name", "hint", "createdAt", "lastUsedAt"}
    assert listed["data"][1]["hint"] == created["hint"] and listed["data"][1]["lastUsedAt"] is None
    # Neither key is kept or returned in clear; only its SHA-256 is stored.
    stored = json.dumps(aws.scan_table())
    for key in (first_key, new_key):
        assert key not in stored and key not in json.dumps(listed)
        assert hash_api_key(key) in stored
    assert _authorize(new_key) == account


def test_revoked_key_is_refused_by_the_next_authorizer_call(owner: tuple[str, str]) -> None:
    account, first_key = owner
    _, created, _ = _call("api_keys/create", account)
    assert _authorize(created["key"]) == account
    status, body, _ = _call("api_keys/revoke", account, key_id=created["id"])
    assert (status, body) == (204, None)
    assert _authorize(created["key"]) is None
    assert _authorize(first_key) == account
    assert [k["name"] for k in _call("api_keys/list", account)[1]["data"]] == ["default"]
    # Twice is a 404: it is gone.
    status, body, _ = _call("api_keys/revoke", account, key_id=created["id"])
    assert status == 404 and body["error"]["code"] == "api_key_not_found"


def test_at_most_ten_keys_per_account(owner: tuple[str, str]) -> None:
    account, _ = owner
    for n in range(MAX_API_KEYS - 1):  # the account was created with one
        assert _call("api_keys/create", account, body={"name": f"key {n}"})[0] == 201
    status, body, _ = _call("api_keys/create", account, body={"name": "one too many"})
    assert status == 409
    assert body["error"]["code"] == "api_key_limit_reached" and body["error"]["details"] == {"limit": 10}
    listed = _call("api_keys/list", account)[1]["data"]
    assert len(listed) == MAX_API_KEYS
    # Revoking one makes room again.
    assert _call("api_keys/revoke", account, key_id=listed[-1]["id"])[0] == 204
    assert _call("api_keys/create", account, body={"name": "replacement"})[0] == 201


def test_the_only_key_cannot_be_revoked(owner: tuple[str, str]) -> None:
    account, first_key = owner
    (only,) = _call("api_keys/list", account)[1]["data"]
    status, body, _ = _call("api_keys/revoke", account, key_id=only["id"])
    assert status == 409 and body["error"]["code"] == "last_api_key"
    assert _authorize(first_key) == account


def test_another_accounts_key_is_a_404_like_a_made_up_one(owner: tuple[str, str], aws: AwsStack) -> None:
    account, _ = owner
    other = create_account(aws.registry.account_repository, "team-b")
    _, theirs, _ = _call("api_keys/create", other.account_id)
    existing = _call("api_keys/revoke", account, key_id=theirs["id"])
    made_up = _call("api_keys/revoke", account, key_id="key_00000000000000000000")
    assert existing[0] == made_up[0] == 404
    assert existing[1]["error"]["message"].replace(theirs["id"], "<id>") == made_up[1]["error"][
        "message"
    ].replace("key_00000000000000000000", "<id>")
    assert _authorize(theirs["key"]) == other.account_id
    assert theirs["id"] not in json.dumps(_call("api_keys/list", account)[1])


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "  "},
        {"name": "a\nb"},
        {"name": "\x0cleading form feed"},
        {"name": "x" * 101},
        {},
        {"name": "ok", "key": "llmgw_mine"},
    ],
)
def test_bad_names_are_400(owner: tuple[str, str], body: dict[str, Any]) -> None:
    status, answer, _ = _call("api_keys/create", owner[0], body=body)
    assert status == 400 and answer["error"]["code"] == "validation_error"


def test_last_used_is_recorded_at_most_once_a_minute(aws: AwsStack, owner: tuple[str, str]) -> None:
    account, api_key = owner
    repo = aws.registry.account_repository
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def last_used() -> datetime | None:
        (key,) = repo.list_keys(account)
        return key.last_used_at

    assert last_used() is None
    assert authenticate(repo, f"Bearer {api_key}", now=t0) == account
    assert last_used() == t0
    assert authenticate(repo, f"Bearer {api_key}", now=t0 + timedelta(seconds=30)) == account
    assert last_used() == t0
    assert authenticate(repo, f"Bearer {api_key}", now=t0 + timedelta(minutes=2)) == account
    assert last_used() == t0 + timedelta(minutes=2)


def test_keys_from_before_key_ids_still_authenticate(aws: AwsStack) -> None:
    """An account made before keys were a resource has only the lookup item: it keeps working."""
    legacy_key = "llmgw_legacy-key-0123456789"
    aws.client("dynamodb").put_item(
        TableName=aws.env["TABLE_NAME"],
        Item={
            "PK": {"S": f"APIKEY#{hash_api_key(legacy_key)}"},
            "SK": {"S": "APIKEY"},
            "kind": {"S": "apikey"},
            "accountId": {"S": "acct_legacy"},
        },
    )
    assert _authorize(legacy_key) == "acct_legacy"
