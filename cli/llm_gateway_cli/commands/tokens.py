"""``llm-gateway token`` and ``llm-gateway sessions revoke``: session tokens from a running gateway.

Both talk HTTP to the gateway (the local stack by default, found through its state file; a
deployed one with ``--api-url``/``--api-key`` or ``LLM_GATEWAY_API_URL``/``LLM_GATEWAY_API_KEY``).

``token`` prints only the token on stdout (so ``TOKEN=$(llm-gateway token --llm ID)`` works) and
the session id, expiry and warnings on stderr; ``--json`` prints the whole answer on stdout.
Exit codes: 0 success, 1 the gateway refused, 2 usage error (no gateway to talk to).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from llm_gateway_cli.commands.client import (
    FAILURE,
    USAGE_ERROR,
    connection,
    connection_arguments,
    report_error,
    request,
    subcommand,
)


def register(sub: Any) -> None:
    token = subcommand(
        sub,
        "token",
        "mint a session token for an LLM (prints the token)",
        "Mint a session token (POST /v1/auth/session-token) whose persona names the LLM. The token\n"
        "alone goes to stdout, so TOKEN=$(llm-gateway token --llm ID) works; the session id, expiry\n"
        "and warnings go to stderr. Use it as the API key of any OpenAI client (base URL <api>/v1).",
        "  llm-gateway token --llm ANAM_GPT_4O_MINI_V1\n"
        "  TOKEN=$(llm-gateway token --llm LLM_ID --system-prompt 'You are Ava.' --ttl 300)\n",
    )
    token.add_argument("--llm", required=True, metavar="ID", help="LLM id: one of yours or a built-in")
    token.add_argument("--system-prompt", metavar="TEXT", help="the persona's system prompt")
    token.add_argument("--name", default="CLI persona", help="the persona's name (default: CLI persona)")
    token.add_argument(
        "--ttl", type=int, metavar="SECONDS", help="session length (capped at 3600, default 600)"
    )
    token.add_argument("--client-label", metavar="LABEL", help="a label stored with the session")
    connection_arguments(token)
    token.add_argument(
        "--json", action="store_true", help="print {sessionToken, sessionId, expiresAt, warnings}"
    )
    token.set_defaults(run=run_token)

    sessions = subcommand(
        sub,
        "sessions",
        "manage sessions",
        "Manage the sessions session tokens were minted for.",
        "  llm-gateway sessions revoke SESSION_ID\n",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    revoke = subcommand(
        sessions,
        "revoke",
        "revoke a session: its token stops working within seconds",
        "Revoke a session (DELETE /v1/sessions/{id}): its token is refused from the next request on.",
        "  llm-gateway sessions revoke SESSION_ID\n"
        "  llm-gateway sessions revoke SESSION_ID --api-url https://.../dev --api-key llmgw_...\n",
    )
    revoke.add_argument("session_id", metavar="ID", help="the sessionId the token was minted with")
    connection_arguments(revoke)
    revoke.add_argument("--json", action="store_true", help="print {sessionId, revoked} as JSON")
    revoke.set_defaults(run=run_revoke)


def run_token(args: Any) -> int:
    found = connection(args)
    if found is None:
        return USAGE_ERROR
    if args.ttl is not None and args.ttl < 1:
        print("error: --ttl must be a positive number of seconds", file=sys.stderr)
        return USAGE_ERROR
    url, key = found
    persona: dict[str, Any] = {"name": args.name, "llmId": args.llm}
    if args.system_prompt is not None:
        persona["systemPrompt"] = args.system_prompt
    if args.ttl is not None:
        persona["maxSessionLengthSeconds"] = args.ttl
    body: dict[str, Any] = {"personaConfig": persona}
    if args.client_label:
        body["clientLabel"] = args.client_label
    import httpx

    try:
        response = request("POST", f"{url}/v1/auth/session-token", key, body)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the gateway at {url}: {type(exc).__name__}", file=sys.stderr)
        return FAILURE
    if response.status_code != 200:
        return report_error(response)
    minted = response.json()
    if args.json:
        print(json.dumps(minted))
        return 0
    print(minted["sessionToken"])
    print(f"session {minted['sessionId']}, expires {minted['expiresAt']}", file=sys.stderr)
    for warning in minted.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def run_revoke(args: Any) -> int:
    found = connection(args)
    if found is None:
        return USAGE_ERROR
    url, key = found
    from urllib.parse import quote

    import httpx

    try:
        response = request("DELETE", f"{url}/v1/sessions/{quote(args.session_id, safe='')}", key)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the gateway at {url}: {type(exc).__name__}", file=sys.stderr)
        return FAILURE
    if response.status_code != 204:
        return report_error(response)
    if args.json:
        print(json.dumps({"sessionId": args.session_id, "revoked": True}))
    else:
        print(f"Session {args.session_id} revoked.")
    return 0
