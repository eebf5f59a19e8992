"""``llm-gateway webhooks list|add|delete``: where the account hears that an LLM's health changed.

The gateway is the local stack by default (its state file), a deployed one with ``--api-url`` and
``--api-key`` (or ``LLM_GATEWAY_API_URL``/``LLM_GATEWAY_API_KEY``). ``add`` prints the signing
secret once, on stdout alone (``SECRET=$(llm-gateway webhooks add https://...)`` works); nothing
else here ever prints it.

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
        "webhooks",
        "list, add and delete the account's webhooks (LLM health changes)",
        "The account's webhooks (GET/POST /v1/webhooks, DELETE /v1/webhooks/{id}): each LLM health\n"
        "change (healthy, degraded, failing) is POSTed to every webhook, signed in the Standard\n"
        "Webhooks format (webhook-id, webhook-timestamp, webhook-signature) with the secret shown\n"
        "when the webhook is added. Verify it with any Standard Webhooks library.",
        "  llm-gateway webhooks add https://hooks.example.com/llm-gateway\n"
        "  llm-gateway webhooks list\n  llm-gateway webhooks delete WEBHOOK_ID\n",
    )
    hooks = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = subcommand(
        hooks,
        "list",
        "the account's webhooks: URL, events, enabled",
        "List the account's webhooks. Secrets are never listed: only shown once, by `add`.",
        "  llm-gateway webhooks list\n  llm-gateway webhooks list --json | jq -r '.data[].id'\n",
    )
    connection_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print {data: [...]} as JSON")
    listing.set_defaults(run=run_list)

    add = subcommand(
        hooks,
        "add",
        "add a webhook; prints its signing secret once",
        "Add a webhook for this account. The URL follows the rules of an LLM URL (https, no\n"
        "credentials, a public address). Its signing secret alone goes to stdout, once: store it now.",
        "  SECRET=$(llm-gateway webhooks add https://hooks.example.com/llm-gateway)\n"
        '  llm-gateway webhooks add https://hooks.example.com/x --description "on-call" --json\n',
    )
    add.add_argument("url", metavar="URL", help="where to POST the events (https)")
    add.add_argument("--description", help="what the webhook is for, e.g. 'on-call pager'")
    connection_arguments(add)
    add.add_argument("--json", action="store_true", help="print the new webhook, secret included")
    add.set_defaults(run=run_add)

    delete = subcommand(
        hooks,
        "delete",
        "delete a webhook: nothing more is sent to it",
        "Delete one of the account's webhooks and its signing secret.",
        "  llm-gateway webhooks delete WEBHOOK_ID\n",
    )
    delete.add_argument("webhook_id", metavar="ID", help="the webhook's id (from `webhooks list`)")
    connection_arguments(delete)
    delete.add_argument("--json", action="store_true", help="print {id, deleted} as JSON")
    delete.set_defaults(run=run_delete)


def run_list(args: argparse.Namespace) -> int:
    return print_listing(args, "/v1/webhooks", ["ID", "URL", "EVENTS", "ENABLED", "DESCRIPTION"], _row)


def _row(hook: dict[str, Any]) -> list[str]:
    enabled = "yes" if hook.get("enabled", True) else f"no ({hook.get('disabledReason') or 'disabled'})"
    return [
        hook["id"],
        hook["url"],
        ",".join(hook.get("eventTypes", [])),
        enabled,
        hook.get("description") or "",
    ]


def run_add(args: argparse.Namespace) -> int:
    body = {"url": args.url} | ({"description": args.description} if args.description else {})
    response = call(args, "POST", "/v1/webhooks", 201, body=body)
    if isinstance(response, int):
        return response
    created = response.json()
    if args.json:
        print(json.dumps(created))
        return 0
    print(created["secret"])
    print(
        f"Webhook {created['id']} added for {created['url']}. Its signing secret is shown only this "
        "once: store it now.",
        file=sys.stderr,
    )
    return 0


def run_delete(args: argparse.Namespace) -> int:
    response = call(args, "DELETE", f"/v1/webhooks/{quote(args.webhook_id, safe='')}", 204)
    if isinstance(response, int):
        return response
    if args.json:
        print(json.dumps({"id": args.webhook_id, "deleted": True}))
    else:
        print(f"Webhook {args.webhook_id} deleted.")
    return 0
