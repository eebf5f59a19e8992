"""``llm-gateway llms create|list|get|update|delete|validate|test|health|requests|usage``: LLM configs on a running gateway.

The gateway is the local stack by default (its state file), a deployed one with ``--api-url`` and
``--gateway-api-key`` (or ``LLM_GATEWAY_API_URL``/``LLM_GATEWAY_API_KEY``). ``--api-key`` is the
*LLM endpoint's* key here, as in ``llm-gateway check``; it is sent once and never printed.

Exit codes: 0 success, 1 the gateway refused or the report is not compatible, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

from llm_gateway_cli.commands.client import (
    FAILURE,
    USAGE_ERROR,
    call,
    connection_arguments,
    format_table,
    report_error,
    subcommand,
)
from llm_gateway_cli.commands.llms_config import (
    ConfigUsageError,
    config_arguments,
    config_body,
)

#: Validation runs real requests upstream; give the gateway time to answer.
REPORT_TIMEOUT_S = 120.0

_DESCRIPTION = """\
Manage LLM configs on a running gateway: the local stack by default (its state file), a deployed
one with --api-url and --gateway-api-key (or LLM_GATEWAY_API_URL / LLM_GATEWAY_API_KEY).
--api-key is the LLM endpoint's own key, as in `llm-gateway check`; it is never printed.
"""

_EPILOG = """\
exit status: 0 success, 1 the gateway refused or the endpoint is not compatible, 2 usage error.
examples:
  LLM_API_KEY=sk-... llm-gateway llms create --format openai --name prod \\
      --url https://api.openai.com/v1/chat/completions --model gpt-4o-mini --wait
  llm-gateway llms list --include-defaults
  llm-gateway llms validate LLM_ID
  llm-gateway llms requests LLM_ID --since 1h
"""


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    llms = sub.add_parser(
        "llms",
        help="manage LLM configs on a gateway (create, list, validate, …)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = llms.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_create(actions)
    _add_listing(actions)
    _add_get(actions)
    _add_update(actions)
    _add_delete(actions)
    _add_validate(actions)
    _add_test(actions)

    from llm_gateway_cli.commands import health, requests

    health.register(actions, subcommand, _common)
    requests.register(actions, subcommand, _common)


def _add_create(actions: Any) -> None:
    create = subcommand(
        actions,
        "create",
        "register an LLM endpoint (validated in the background)",
        "Register an LLM endpoint (POST /v1/llms). Validation runs in the background; --wait waits\n"
        "for it and prints its result (the report, when it failed).",
        "  LLM_API_KEY=sk-... llm-gateway llms create --format openai --name prod \\\n"
        "      --url https://api.openai.com/v1/chat/completions --model gpt-4o-mini --wait\n"
        "  llm-gateway llms create --format azure_openai --name azure --api-key KEY \\\n"
        "      --url https://my-resource.openai.azure.com/openai/v1 --model my-deployment\n",
    )
    config_arguments(create, required=True)
    create.add_argument("--idempotency-key", metavar="K", help="retry-safe creation: same key, same LLM")
    create.add_argument("--wait", action="store_true", help="wait for validation and print its summary")
    create.add_argument(
        "--wait-timeout", type=float, default=120.0, metavar="SECONDS", help="how long --wait waits (120)"
    )
    _common(create, "print the LLM object as JSON")
    create.set_defaults(run=run_create)


def _add_listing(actions: Any) -> None:
    listing = subcommand(
        actions,
        "list",
        "list your LLMs as a table",
        "List your LLMs (GET /v1/llms), newest first; --include-defaults adds the built-ins.",
        "  llm-gateway llms list --include-defaults\n  llm-gateway llms list --search prod --json\n",
    )
    listing.add_argument("--search", metavar="S", help="only names containing S")
    listing.add_argument("--include-defaults", action="store_true", help="also list the built-in LLMs")
    listing.add_argument("--page", type=int, default=1, metavar="N", help="page number (default 1)")
    listing.add_argument(
        "--per-page", type=int, default=20, metavar="N", help="page size, 1-100 (default 20)"
    )
    _common(listing, "print {data, meta} as JSON")
    listing.set_defaults(run=run_list)


def _add_get(actions: Any) -> None:
    get = subcommand(
        actions,
        "get",
        "show one LLM",
        "Show one LLM (GET /v1/llms/{id}): its config, status and latest validation summary.",
        "  llm-gateway llms get LLM_ID\n  llm-gateway llms get ANAM_GPT_4O_MINI_V1 --json\n",
    )
    get.add_argument("llm_id", metavar="ID")
    _common(get, "print the LLM object as JSON")
    get.set_defaults(run=run_get)


def _add_update(actions: Any) -> None:
    update = subcommand(
        actions,
        "update",
        "change an LLM (only the fields given); a new key is validated first",
        "Change an LLM (PUT /v1/llms/{id}, a partial update). A change to what is sent upstream\n"
        "(URLs, model, deployment, API version, headers, timeouts, temperature, max tokens) sends it\n"
        "back to validation (status pending); a rename does not. A new --api-key is validated before\n"
        "it replaces the current one, which stays in service meanwhile; --wait says which won and why.",
        "  llm-gateway llms update LLM_ID --name 'Prod (EU)'\n"
        "  llm-gateway llms update LLM_ID --api-key sk-new... --wait\n"
        "  llm-gateway llms update LLM_ID --model gpt-4.1-mini --if-match 3\n",
    )
    update.add_argument("llm_id", metavar="ID")
    config_arguments(update, required=False)
    update.add_argument(
        "--if-match", type=int, metavar="VERSION", help="refuse (412) unless the LLM is at VERSION"
    )
    update.add_argument(
        "--wait",
        action="store_true",
        help="wait for revalidation (and a new key's verdict: promoted or refused, and why)",
    )
    update.add_argument(
        "--wait-timeout", type=float, default=120.0, metavar="SECONDS", help="how long --wait waits (120)"
    )
    _common(update, "print the updated LLM object as JSON")
    update.set_defaults(run=run_update)


def _add_delete(actions: Any) -> None:
    delete = subcommand(
        actions,
        "delete",
        "delete an LLM and its stored key (no confirmation)",
        "Delete an LLM and its stored key (DELETE /v1/llms/{id}). There is no confirmation.",
        "  llm-gateway llms delete LLM_ID\n",
    )
    delete.add_argument("llm_id", metavar="ID")
    _common(delete, "print {id, deleted} as JSON")
    delete.set_defaults(run=run_delete)


def _add_validate(actions: Any) -> None:
    validate = subcommand(
        actions,
        "validate",
        "run the conformance suite on a registered LLM now",
        "Queue a conformance run on a registered LLM now (POST /v1/llms/{id}/validate answers 202 with\n"
        "the run's id), wait for its report (GET /v1/llms/{id}/validation) and print it: every check,\n"
        "a hint under each failure, timings and a verdict. --no-wait prints the run's id and returns.",
        "  llm-gateway llms validate LLM_ID\n  llm-gateway llms validate LLM_ID --json\n"
        "  llm-gateway llms validate LLM_ID --no-wait\n",
    )
    validate.add_argument("llm_id", metavar="ID")
    validate.add_argument(
        "--no-wait", action="store_true", help="print the queued run ({validationId, status}) and return"
    )
    validate.add_argument(
        "--wait-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the report (120)",
    )
    _common(validate, "print the report (with --no-wait: the queued run) as JSON")
    validate.set_defaults(run=run_validate)


def _add_test(actions: Any) -> None:
    test = subcommand(
        actions,
        "test",
        "run the conformance suite on a config without storing it",
        "Run the conformance suite on a config without storing anything (POST /v1/llms/test).",
        "  LLM_API_KEY=sk-... llm-gateway llms test --format openai --name try \\\n"
        "      --url https://api.openai.com/v1 --model gpt-4o-mini\n",
    )
    config_arguments(test, required=True)
    _common(test, "print the report as JSON")
    test.set_defaults(run=run_test)


def _common(parser: Any, json_help: str) -> None:
    connection_arguments(parser, key_flag="--gateway-api-key")
    parser.add_argument("--json", action="store_true", help=json_help)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _usage(message: str) -> int:
    print(f"llm-gateway llms: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _llm_path(llm_id: str, suffix: str = "") -> str:
    return f"/v1/llms/{quote(llm_id, safe='')}{suffix}"


def run_create(args: argparse.Namespace) -> int:
    try:
        body = config_body(args, creating=True)
    except ConfigUsageError as exc:
        return _usage(str(exc))
    if args.wait and not 0 < args.wait_timeout <= 3600:
        return _usage("--wait-timeout must be between 0 and 3600 seconds")
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    response = call(args, "POST", "/v1/llms", ok=(200, 201), body=body, headers=headers)
    if isinstance(response, int):
        return response
    llm: dict[str, Any] = response.json()
    if not args.wait:
        _print_llm_or_json(llm, args.json)
        if not args.json:
            print(
                "Validation runs in the background: `llm-gateway llms get ID` shows its result.",
                file=sys.stderr,
            )
        return 0
    print(f"Created LLM {llm['id']}; validating", end="", file=sys.stderr, flush=True)
    waited = _wait_while_pending(args, llm)
    if isinstance(waited, int):
        return waited
    llm = waited
    if args.json:
        print(json.dumps(llm, indent=2))
    else:
        _print_llm(llm)
    if llm.get("status") == "pending":
        print("error: validation did not finish in time (still pending)", file=sys.stderr)
        return FAILURE
    if llm.get("status") != "valid":
        if not args.json:
            _print_latest_report(args, llm["id"])
        return FAILURE
    return 0


def _wait_while_pending(args: argparse.Namespace, llm: dict[str, Any]) -> dict[str, Any] | int:
    """Poll the LLM until its status is not ``pending`` (or --wait-timeout); dots on stderr."""
    deadline = time.monotonic() + args.wait_timeout
    while llm.get("status") == "pending" and time.monotonic() < deadline:
        time.sleep(0.25)
        print(".", end="", file=sys.stderr, flush=True)
        polled = call(args, "GET", _llm_path(llm["id"]), ok=None)  # end the progress line first
        if isinstance(polled, int):
            print(file=sys.stderr)
            return polled
        if polled.status_code != 200:
            print(file=sys.stderr)
            return report_error(polled)
        llm = polled.json()
    print(f" {llm.get('status')}", file=sys.stderr)
    return llm


def _wait_for_key_verdict(args: argparse.Namespace, llm: dict[str, Any]) -> dict[str, Any] | int | None:
    """The first validation report about the new key (``details.rotation``) made after the update,
    or None at --wait-timeout."""
    since = _timestamp(llm.get("updatedAt"))
    deadline = time.monotonic() + args.wait_timeout
    while time.monotonic() < deadline:
        polled = call(args, "GET", _llm_path(llm["id"], "/validation"), ok=None)
        if isinstance(polled, int):
            print(file=sys.stderr)
            return polled
        if polled.status_code == 200:
            report: dict[str, Any] = polled.json()
            rotation = (report.get("details") or {}).get("rotation")
            checked = _timestamp(report.get("checkedAt"))
            if rotation and (since is None or (checked is not None and checked >= since)):
                print(file=sys.stderr)
                return report
        elif polled.status_code != 404:  # 404: no report yet
            print(file=sys.stderr)
            return report_error(polled)
        print(".", end="", file=sys.stderr, flush=True)
        time.sleep(0.25)
    print(file=sys.stderr)
    return None


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def run_list(args: argparse.Namespace) -> int:
    if args.page < 1:
        return _usage("--page must be 1 or more")
    if not 1 <= args.per_page <= 100:
        return _usage("--per-page must be between 1 and 100")
    params: dict[str, Any] = {"page": args.page, "perPage": args.per_page}
    if args.search:
        params["search"] = args.search
    if args.include_defaults:
        params["includeDefaults"] = "true"
    response = call(args, "GET", "/v1/llms", params=params)
    if isinstance(response, int):
        return response
    page = response.json()
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    rows = [
        [
            str(llm.get("id", "")),
            str(llm.get("displayName", "")),
            str(llm.get("llmFormat", "")),
            str(llm.get("status", "")),
            str(llm.get("modelName", "")),
        ]
        for llm in page.get("data", [])
    ]
    print(format_table(["ID", "NAME", "FORMAT", "STATUS", "MODEL"], rows))
    meta = page.get("meta") or {}
    total, shown = meta.get("total"), len(rows)
    print(f"\n{shown} shown, page {meta.get('page', args.page)}, {total} in total")
    return 0


def run_get(args: argparse.Namespace) -> int:
    response = call(args, "GET", _llm_path(args.llm_id))
    if isinstance(response, int):
        return response
    _print_llm_or_json(response.json(), args.json)
    return 0


def run_update(args: argparse.Namespace) -> int:
    try:
        body = config_body(args, creating=False)
    except ConfigUsageError as exc:
        return _usage(str(exc))
    if not body:
        return _usage("nothing to update: give at least one of --name, --url, --model, --api-key, …")
    if args.wait and not 0 < args.wait_timeout <= 3600:
        return _usage("--wait-timeout must be between 0 and 3600 seconds")
    headers = {"If-Match": str(args.if_match)} if args.if_match is not None else None
    response = call(args, "PUT", _llm_path(args.llm_id), body=body, headers=headers)
    if isinstance(response, int):
        return response
    llm = response.json()
    if not args.json:
        print(f"Updated LLM {llm['id']} (now version {llm.get('version')}).")
        _print_llm(llm)
    new_key = "secret" in body
    if new_key:
        print(
            "The new key is pending validation; the current key stays in service until it passes.",
            file=sys.stderr,
        )
    if not args.wait:
        if args.json:
            print(json.dumps(llm, indent=2))
        elif new_key or llm.get("status") == "pending":
            print("`llm-gateway llms get ID` shows the outcome (or use --wait).", file=sys.stderr)
        return 0
    exit_code = 0
    if new_key:
        stop, exit_code = _wait_for_new_key(args, llm)
        if stop is not None:
            return stop
    fetched = call(args, "GET", _llm_path(llm["id"]))  # a URL or model change revalidates too
    if isinstance(fetched, int):
        return fetched
    llm = fetched.json()
    if llm.get("status") == "pending":
        print("Revalidating", end="", file=sys.stderr, flush=True)
        waited = _wait_while_pending(args, llm)
        if isinstance(waited, int):
            return waited
        llm = waited
    if args.json:
        print(json.dumps(llm, indent=2))
    else:
        print(f"status: {llm.get('status')}: {(llm.get('validation') or {}).get('summary') or ''}")
    if llm.get("status") == "pending":
        print("error: validation did not finish in time (still pending)", file=sys.stderr)
        return FAILURE
    return exit_code if llm.get("status") == "valid" else FAILURE


def _wait_for_new_key(args: argparse.Namespace, llm: dict[str, Any]) -> tuple[int | None, int]:
    """(the exit code to stop with, if any; else the exit code the key's verdict gives)."""
    print("Validating the new key", end="", file=sys.stderr, flush=True)
    verdict = _wait_for_key_verdict(args, llm)
    if isinstance(verdict, int):
        return verdict, verdict
    if verdict is None:
        print("error: the new key's validation did not finish in time", file=sys.stderr)
        return FAILURE, FAILURE
    details = verdict.get("details") or {}
    out = sys.stderr if args.json else sys.stdout
    if details.get("rotation") == "accepted":
        hint = f" ({details['secretHint']})" if details.get("secretHint") else ""
        print(f"New key{hint} promoted: it passed validation and is now in service.", file=out)
        return None, 0
    print(f"New key refused: {details.get('reason')}. The previous key stays in service.", file=out)
    return None, FAILURE


def run_delete(args: argparse.Namespace) -> int:
    found = call(args, "GET", _llm_path(args.llm_id))
    if isinstance(found, int):
        return found
    llm = found.json()
    response = call(args, "DELETE", _llm_path(args.llm_id), ok=(200, 204))
    if isinstance(response, int):
        return response
    if args.json:
        print(json.dumps({"id": llm["id"], "deleted": True}))
    else:
        print(
            f"Deleted LLM {llm['id']} ({llm.get('displayName')!r}, {llm.get('llmFormat')}) and its stored key."
        )
    return 0


def run_validate(args: argparse.Namespace) -> int:
    if not 0 < args.wait_timeout <= 3600:
        return _usage("--wait-timeout must be between 0 and 3600 seconds")
    response = call(args, "POST", _llm_path(args.llm_id, "/validate"), ok=(202,))
    if isinstance(response, int):
        return response
    run: dict[str, Any] = response.json()
    if args.no_wait:
        if args.json:
            print(json.dumps(run, indent=2))
        else:
            print(f"Validation {run['validationId']} is {run['status']}.")
            print(f"`llm-gateway llms validate {args.llm_id}` waits for the report; "
                  f"GET /v1/llms/{args.llm_id}/validation shows it when done.", file=sys.stderr)  # fmt: skip
        return 0
    print(f"Validation {run['validationId']} {run['status']}", end="", file=sys.stderr, flush=True)
    report = _wait_for_run(args, run)
    if isinstance(report, int):
        return report
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from llm_gateway_cli.commands.check import render, use_color

        render(report, sys.stdout, color=use_color(sys.stdout))
    return 0 if report.get("compatible") else FAILURE


def _wait_for_run(args: argparse.Namespace, run: dict[str, Any]) -> dict[str, Any] | int:
    """Poll GET /validation until the run is no longer pending; its report (or a newer one), or an
    error when it never reported (its message was lost) or --wait-timeout passed. Dots on stderr."""
    wanted = run["validationId"]
    deadline = time.monotonic() + args.wait_timeout
    while True:
        polled = call(args, "GET", _llm_path(args.llm_id, "/validation"), ok=None)
        if isinstance(polled, int):
            print(file=sys.stderr)
            return polled
        if polled.status_code not in (200, 202):
            print(file=sys.stderr)
            return report_error(polled)
        body: dict[str, Any] = polled.json()
        pending = body.get("pending") if polled.status_code == 200 else body
        if not pending or pending.get("validationId") != wanted:
            print(" done", file=sys.stderr)
            checked, requested = _timestamp(body.get("checkedAt")), _timestamp(run.get("requestedAt"))
            if body.get("validationId") == wanted or (checked and requested and checked >= requested):
                return body
            print(f"error: validation {wanted} ended without a report; run it again", file=sys.stderr)
            return FAILURE
        if time.monotonic() > deadline:
            print(file=sys.stderr)
            print(f"error: validation {wanted} is still {pending.get('status')} after "
                  f"{args.wait_timeout:g} s; `llm-gateway llms validate {args.llm_id}` waits again", file=sys.stderr)  # fmt: skip
            return FAILURE
        print(".", end="", file=sys.stderr, flush=True)
        time.sleep(0.5)


def run_test(args: argparse.Namespace) -> int:
    try:
        body = config_body(args, creating=True)
    except ConfigUsageError as exc:
        return _usage(str(exc))
    response = call(args, "POST", "/v1/llms/test", body=body, timeout=REPORT_TIMEOUT_S)
    return _report(response, as_json=args.json)


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def _report(response: Any, *, as_json: bool) -> int:
    from llm_gateway_cli.commands.check import render, use_color

    if isinstance(response, int):
        return response
    report: dict[str, Any] = response.json()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        render(report, sys.stdout, color=use_color(sys.stdout))
    return 0 if report.get("compatible") else FAILURE


def _print_latest_report(args: argparse.Namespace, llm_id: str) -> None:
    from llm_gateway_cli.commands.check import render, use_color

    response = call(args, "GET", _llm_path(llm_id, "/validation"), ok=None)
    if not isinstance(response, int) and response.status_code == 200:
        print()
        render(response.json(), sys.stdout, color=use_color(sys.stdout))


def _print_llm_or_json(llm: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(llm, indent=2))
    else:
        _print_llm(llm)


def _print_llm(llm: dict[str, Any]) -> None:
    validation = llm.get("validation") or {}
    health = llm.get("health") or {}
    status = str(llm.get("status", ""))
    if validation.get("summary"):
        status += f": {validation['summary']}"
    if validation.get("errorCode"):
        status += f" (errorCode {validation['errorCode']})"
    fields: list[tuple[str, Any]] = [
        ("id", llm.get("id")),
        ("name", llm.get("displayName")),
        ("description", llm.get("description")),
        ("format", llm.get("llmFormat")),
        ("urls", ", ".join(str(u.get("url")) for u in llm.get("urls") or [])),
        ("model", llm.get("modelName")),
        ("deployment", llm.get("deploymentName")),
        ("api version", llm.get("apiVersion")),
        ("temperature", llm.get("temperature")),
        ("max tokens", llm.get("maxTokens")),
        ("reasoning effort", llm.get("reasoningEffort")),
        ("reasoning format", llm.get("reasoningFormat")),
        ("headers", ", ".join(llm.get("headers") or {})),
        ("key", llm.get("secretHint")),
        ("status", status),
        ("checked at", validation.get("checkedAt")),
        ("health", f"{health['state']} since {health.get('since')}" if health.get("state") else None),
        ("built-in", "yes" if llm.get("isDefault") else None),
        ("version", llm.get("version")),
        ("updated at", llm.get("updatedAt")),
    ]
    shown = [(label, value) for label, value in fields if value not in (None, "")]
    width = max(len(label) for label, _ in shown)
    for label, value in shown:
        print(f"{label + ':':{width + 1}} {value}")
