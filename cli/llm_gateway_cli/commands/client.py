"""Shared plumbing of the client commands (``token``, ``sessions``, ``llms``, ``chat``, ``api-keys``,
``webhooks``).

They all talk HTTP to a running gateway: the local stack by default, found through its state
file; a deployed one with ``--api-url``/``--api-key`` or ``LLM_GATEWAY_API_URL``/``LLM_GATEWAY_API_KEY``.
Nothing here ever prints a key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

USAGE_ERROR = 2
FAILURE = 1

API_URL_ENV = "LLM_GATEWAY_API_URL"
API_KEY_ENV = "LLM_GATEWAY_API_KEY"


def connection_arguments(parser: Any, *, key_flag: str = "--api-key") -> None:
    """``--state-file``, ``--api-url`` and the account-key flag (``key_flag``: a command whose
    ``--api-key`` means something else, like ``llms create``, names it differently)."""
    parser.add_argument(
        "--state-file", type=Path, metavar="PATH", help="local stack state file (default: .local/state.json)"
    )
    parser.add_argument(
        "--api-url", metavar="URL", help=f"gateway base URL (default: ${API_URL_ENV}, else the local stack's)"
    )
    parser.add_argument(
        key_flag,
        dest="gateway_api_key",
        metavar="KEY",
        help=f"account API key (default: ${API_KEY_ENV}, else the local stack's demo key)",
    )
    parser.set_defaults(key_flag=key_flag)


def connection(args: Any, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(apiUrl, apiKey) from the flags, then the environment (``environ``; None: the user's), then
    the local stack's state file."""
    from llm_gateway_local.stack import default_state_file

    env = os.environ if environ is None else environ
    url = args.api_url or env.get(API_URL_ENV)
    key = args.gateway_api_key or env.get(API_KEY_ENV)
    path = args.state_file or default_state_file()
    if not (url or key or path.exists()):
        flag = getattr(args, "key_flag", "--api-key")
        print(
            f"error: no gateway to talk to: no local stack (no state file at {path}; start "
            f"`llm-gateway dev` or pass --state-file PATH), and no deployed one (pass --api-url URL "
            f"and {flag} KEY, or set {API_URL_ENV} and {API_KEY_ENV})",
            file=sys.stderr,
        )
        return None
    if not (url and key) and path.exists():
        try:
            state = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the state file {path}: {type(exc).__name__}", file=sys.stderr)
            return None
        url, key = url or state.get("apiUrl"), key or state.get("apiKey")
    if not (url and key):
        flag = getattr(args, "key_flag", "--api-key")
        missing = "an account API key" if url else "the gateway URL"
        hint = (
            f"pass {flag} KEY (or set {API_KEY_ENV}); `llm-gateway accounts create` makes one"
            if url
            else f"pass --api-url URL (or set {API_URL_ENV})"
        )
        print(f"error: need {missing}: {hint}", file=sys.stderr)
        return None
    return str(url).rstrip("/"), str(key)


def request(
    method: str,
    url: str,
    key: str,
    body: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    timeout: float = 30,
) -> Any:
    import httpx

    sent = {"Authorization": f"Bearer {key}", "Accept": "application/json"} | (headers or {})
    return httpx.request(method, url, json=body, headers=sent, params=params, timeout=timeout)


def report_error(response: Any) -> int:
    """``error: <status> <code>: <message>`` on stderr, from the gateway's error body, then one
    line per field error of a validation error (``details: [{field, message}]``)."""
    try:
        error = response.json()["error"]
        print(f"error: {response.status_code} {error['code']}: {error['message']}", file=sys.stderr)
    except (ValueError, KeyError, TypeError):
        print(f"error: the gateway answered {response.status_code}", file=sys.stderr)
        return FAILURE
    details = error.get("details") if isinstance(error, dict) else None
    if isinstance(details, list):
        for detail in details[:10]:
            if isinstance(detail, dict) and detail.get("message"):
                where = f"{detail['field']}: " if detail.get("field") else ""
                print(f"  {where}{detail['message']}", file=sys.stderr)
    return FAILURE


def unreachable(url: str, exc: BaseException) -> int:
    print(f"error: cannot reach the gateway at {url}: {type(exc).__name__}", file=sys.stderr)
    return FAILURE


def subcommand(sub: Any, name: str, help_text: str, description: str, examples: str) -> Any:
    """A command (or action) whose ``--help`` ends with examples, laid out as written."""
    return sub.add_parser(
        name,
        help=help_text,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def call(
    args: argparse.Namespace, method: str, path: str, ok: int | tuple[int, ...] | None = 200, **kwargs: Any
) -> Any:
    """The gateway's response; or the exit code to return, its error already printed: no gateway
    to talk to, unreachable, or (with ``ok``) a status other than ``ok``. ``path`` starts with /v1."""
    import httpx

    found = connection(args)
    if found is None:
        return USAGE_ERROR
    url, key = found
    try:
        response = request(method, url + path, key, **kwargs)
    except httpx.HTTPError as exc:
        return unreachable(url, exc)
    expected = (ok,) if isinstance(ok, int) else ok
    if expected is not None and response.status_code not in expected:
        return report_error(response)
    return response


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart; no trailing blanks."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def print_listing(
    args: argparse.Namespace, path: str, header: list[str], row: Callable[[dict[str, Any]], list[str]]
) -> int:
    """``GET path`` (a ``{data: [...]}`` list): as JSON with ``--json``, else a table of ``row``."""
    response = call(args, "GET", path)
    if isinstance(response, int):
        return response
    listing = response.json()
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        print(format_table(header, [row(item) for item in listing.get("data", [])]))
    return 0
