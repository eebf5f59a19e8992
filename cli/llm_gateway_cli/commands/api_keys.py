"""``llm-gateway api-keys list|create|revoke``: the account's own API keys on a running gateway.

The gateway is the local stack by default (its state file), a deployed one with ``--api-url`` and
``--api-key`` (or ``LLM_GATEWAY_API_URL``/``LLM_GATEWAY_API_KEY``). ``create`` prints the new key
once, on stdout alone (``KEY=$(llm-gateway api-keys create --name ci)`` works); nothing else here
ever prints a key.

Exit codes: 0 success, 1 the gateway refused, 2 usage error (no gateway to talk to).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from llm_gateway_cli.commands.client import call, connection_arguments, print_listing, subcommand


def register(sub: Any) -> None:
    group = subcommand(
        sub,
        "api-keys",
        "list, create and revoke the account's API keys",
        "The account's own API keys (GET/POST /v1/api-keys, DELETE /v1/api-keys/{id}): at most 10,\n"
        "each shown once when created, listed by name, last 4 characters, created and last used.",
        "  llm-gateway api-keys list\n  llm-gateway api-keys create --name ci\n  llm-gateway api-keys revoke KEY_ID\n",
    )
    keys = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = subcommand(
        keys,
        "list",
        "the account's keys: name, last 4 characters, created, last used",
        "List the account's API keys. No key is ever printed in full: only its last 4 characters.",
        "  llm-gateway api-keys list\n  llm-gateway api-keys list --json | jq -r '.data[].id'\n",
    )
    connection_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print {data: [...]} as JSON")
    listing.set_defaults(run=run_list)

    create = subcommand(
        keys,
        "create",
        "create a key (at most 10 per account); prints it once",
        "Create an API key for this account. The key alone goes to stdout, once: store it now.",
        '  KEY=$(llm-gateway api-keys create --name "ci deploys")\n'
        "  llm-gateway api-keys create --name lab --json\n",
    )
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'ci deploys'")
    connection_arguments(create)
    create.add_argument("--json", action="store_true", help="print {id, name, hint, createdAt, key}")
    create.set_defaults(run=run_create)

    revoke = subcommand(
        keys,
        "revoke",
        "revoke a key: it stops working within 10 seconds",
        "Revoke one of the account's API keys (the account's last key cannot be revoked). A deployed\n"
        "gateway refuses it within 10 seconds (the authorizer cache); the local stack at once.",
        "  llm-gateway api-keys revoke KEY_ID\n",
    )
    revoke.add_argument("key_id", metavar="ID", help="the key's id (from `api-keys list`)")
    connection_arguments(revoke)
    revoke.add_argument("--json", action="store_true", help="print {id, revoked} as JSON")
    revoke.set_defaults(run=run_revoke)


def run_list(args: argparse.Namespace) -> int:
    return print_listing(
        args,
        "/v1/api-keys",
        ["ID", "NAME", "KEY", "CREATED", "LAST USED"],
        lambda k: [k["id"], k["name"], k["hint"], k["createdAt"], k.get("lastUsedAt") or "never"],
    )


def run_create(args: argparse.Namespace) -> int:
    response = call(args, "POST", "/v1/api-keys", 201, body={"name": args.name})
    if isinstance(response, int):
        return response
    created = response.json()
    if args.json:
        print(json.dumps(created))
        return 0
    print(created["key"])
    print(
        f"API key {created['id']} ({created['name']!r}) created. It is shown only this once: store it now.",
        file=sys.stderr,
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    response = call(args, "DELETE", f"/v1/api-keys/{quote(args.key_id, safe='')}", 204)
    if isinstance(response, int):
        return response
    if args.json:
        print(json.dumps({"id": args.key_id, "revoked": True}))
    else:
        print(f"API key {args.key_id} revoked; it stops working within 10 seconds.")
    return 0
