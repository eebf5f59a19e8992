"""API keys through the local stack: create, list, revoke, the limit, and a revoked key refused on
its very next request (the local front door asks the authorizer every time). The CLI too."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LeakCollector, plain_env
from tests.local_stack import RunningStack, create_account_key, recording_client


@pytest.fixture
def fresh(stack: RunningStack, leak_collector: LeakCollector) -> Iterator[httpx.Client]:
    """A new account of its own: these tests count keys."""
    with recording_client(stack.api_url, create_account_key(stack, "keys-e2e"), leak_collector) as client:
        yield client


def test_create_list_use_and_revoke(
    fresh: httpx.Client, stack: RunningStack, leak_collector: LeakCollector
) -> None:
    created = fresh.post("/v1/api-keys", json={"name": "deploy bot"})
    assert created.status_code == 201, created.text
    new = created.json()
    assert created.headers["cache-control"] == "no-store"
    listed = fresh.get("/v1/api-keys").json()["data"]
    assert [(k["name"], k["hint"]) for k in listed][-1] == ("deploy bot", "…" + new["key"][-4:])
    assert new["key"] not in json.dumps(listed)

    with recording_client(stack.api_url, new["key"], leak_collector) as bot:
        assert bot.get("/v1/llms").status_code == 200
        # lastUsedAt shows the use.
        used = {k["id"]: k["lastUsedAt"] for k in fresh.get("/v1/api-keys").json()["data"]}
        assert used[new["id"]] is not None
        assert fresh.delete(f"/v1/api-keys/{new['id']}").status_code == 204
        refused = bot.get("/v1/llms")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
    assert fresh.get("/v1/api-keys").status_code == 200  # the other key still works


def test_limit_of_ten_and_the_last_key(fresh: httpx.Client) -> None:
    for n in range(9):
        assert fresh.post("/v1/api-keys", json={"name": f"k{n}"}).status_code == 201
    over = fresh.post("/v1/api-keys", json={"name": "k10"})
    assert over.status_code == 409 and over.json()["error"]["code"] == "api_key_limit_reached"
    keys = fresh.get("/v1/api-keys").json()["data"]
    assert len(keys) == 10
    for key in keys[1:]:
        assert fresh.delete(f"/v1/api-keys/{key['id']}").status_code == 204
    last = fresh.delete(f"/v1/api-keys/{keys[0]['id']}")
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_api_key"


def test_cli_creates_lists_and_revokes(stack: RunningStack, leak_collector: LeakCollector) -> None:
    owner_key = create_account_key(stack, "keys-cli")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "llm_gateway_cli.main", "api-keys", *args,
             "--api-url", stack.api_url, "--api-key", owner_key],
            capture_output=True, text=True, timeout=60, env=plain_env(),
        )  # fmt: skip
        leak_collector.add(f"api-keys {args[0]}", result.stdout + result.stderr)
        return result

    made = cli("create", "--name", "from the cli")
    assert made.returncode == 0, made.stderr
    new_key = made.stdout.strip()
    assert new_key.startswith("llmgw_") and "shown only this once" in made.stderr
    listing = cli("list")
    assert listing.returncode == 0 and "from the cli" in listing.stdout
    assert "…" + new_key[-4:] in listing.stdout and new_key not in listing.stdout
    key_id = next(
        k["id"] for k in json.loads(cli("list", "--json").stdout)["data"] if k["name"] == "from the cli"
    )
    revoked = cli("revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    again = cli("revoke", key_id)
    assert again.returncode == 1 and "404 api_key_not_found" in again.stderr
    with recording_client(stack.api_url, new_key, leak_collector) as gone:
        assert gone.get("/v1/api-keys").status_code == 401
