"""``llm-gateway llms requests ID`` and ``llm-gateway llms usage ID``: the request log and the tokens
per day of one LLM, as a table and a text chart."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

BAR = "█"
BAR_WIDTH = 40
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
#: Row marks: retried (more than one attempt), hedged, continued, answered by a fallback LLM.
MARKS = (("R", "retried"), ("H", "hedged"), ("C", "continued"), ("F", "fallback"))


def register(actions: Any, action: Callable[..., Any], common: Callable[[Any, str], None]) -> None:
    requests = action(
        actions,
        "requests",
        "list an LLM's latest stream requests (outcome, timings, tokens)",
        "List an LLM's stream requests, newest first (GET /v1/llms/{id}/requests): when, outcome,\n"
        "status, time to first token and in total, attempts and the URL that answered, tokens in and\n"
        "out, session. Marks: R retried, H hedged, C continued, F answered by a fallback LLM.\n"
        "Records never hold prompts, answers, headers or keys; they are kept for the retention period\n"
        "(7 days by default).",
        "  llm-gateway llms requests LLM_ID\n"
        "  llm-gateway llms requests LLM_ID --since 1h --outcome upstream_timeout\n"
        "  llm-gateway llms requests LLM_ID --session SESSION_ID --json\n",
    )
    requests.add_argument("llm_id", metavar="ID")
    requests.add_argument("--session", metavar="S", help="only this session's requests")
    requests.add_argument(
        "--outcome", metavar="O", help="only this outcome: ok, an error code, client_disconnected"
    )
    requests.add_argument("--since", metavar="AGE", help="only the last AGE: 30m, 1h, 2d (default: all kept)")
    requests.add_argument(
        "--limit", type=int, default=20, metavar="N", help="rows per page (1-100, default 20)"
    )
    requests.add_argument("--cursor", metavar="C", help="the next page (printed under a full page)")
    common(requests, "print the page (data, nextCursor) as JSON")
    requests.set_defaults(run=run_requests)

    usage = action(
        actions,
        "usage",
        "chart an LLM's tokens, requests and errors per day",
        "Chart an LLM's usage per UTC day (GET /v1/llms/{id}/usage): input and output tokens as\n"
        "the upstream reported them, requests, errors, and time to first token p50/p95.",
        "  llm-gateway llms usage LLM_ID\n  llm-gateway llms usage LLM_ID --days 30 --json\n",
    )
    usage.add_argument("llm_id", metavar="ID")
    usage.add_argument("--days", type=int, default=7, metavar="N", help="days to chart (1-90, default 7)")
    common(usage, "print the usage document as JSON")
    usage.set_defaults(run=run_usage)


def parse_age(text: str, now: datetime) -> datetime:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"--since takes an age like 30m, 1h or 2d, not {text!r}")
    return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def run_requests(args: argparse.Namespace) -> int:
    from llm_gateway_cli.commands.client import USAGE_ERROR, call

    params: dict[str, Any] = {"limit": args.limit}
    try:
        if args.since:
            params["since"] = parse_age(args.since, datetime.now(UTC)).isoformat()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    for name, value in (("sessionId", args.session), ("outcome", args.outcome), ("cursor", args.cursor)):
        if value:
            params[name] = value
    response = call(args, "GET", f"/v1/llms/{quote(args.llm_id, safe='')}/requests", params=params)
    if isinstance(response, int):
        return response
    page = response.json()
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    print(render_requests(page))
    if page.get("nextCursor"):
        print(f"more: llm-gateway llms requests {args.llm_id} --cursor {page['nextCursor']}", file=sys.stderr)
    return 0


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def marks(record: dict[str, Any]) -> str:
    flags = (
        record.get("attempts", 0) > 1,
        record.get("hedged"),
        record.get("continued"),
        record.get("fallbackLlmId"),
    )
    return "".join(mark for (mark, _), on in zip(MARKS, flags, strict=True) if on) or "-"


def render_requests(page: dict[str, Any]) -> str:
    from llm_gateway_cli.commands.client import format_table

    rows = []
    for record in page.get("data") or []:
        usage = record.get("usage") or {}
        at = datetime.fromisoformat(record["at"]).astimezone(UTC).strftime("%m-%d %H:%M:%S")
        url = record.get("urlIndex")
        rows.append(
            [
                at,
                record["outcome"],
                str(record.get("httpStatus") or "-"),
                _ms(record.get("ttftMs")),
                _ms(record.get("totalMs")),
                f"{record.get('attempts', 0)}" + (f" @{url}" if url is not None else ""),
                marks(record),
                f"{usage['inputTokens']}/{usage['outputTokens']}" if usage else "-",
                record.get("sessionId") or "-",
            ]
        )
    if not rows:
        return "no requests in this range"
    header = [
        "TIME (UTC)",
        "OUTCOME",
        "HTTP",
        "TTFT",
        "TOTAL",
        "TRIES @URL",
        "MARKS",
        "TOKENS IN/OUT",
        "SESSION",
    ]
    return format_table(header, rows)


def run_usage(args: argparse.Namespace) -> int:
    from llm_gateway_cli.commands.client import call

    path = f"/v1/llms/{quote(args.llm_id, safe='')}/usage"
    response = call(args, "GET", path, params={"days": args.days})
    if isinstance(response, int):
        return response
    document = response.json()
    print(json.dumps(document, indent=2) if args.json else render_usage(document))
    return 0


def render_usage(document: dict[str, Any]) -> str:
    days = document.get("data") or []
    peak = max((d["inputTokens"] + d["outputTokens"] for d in days), default=0)
    lines = [f"tokens per day (UTC), last {document.get('days')} days:"]
    for day in days:
        tokens = day["inputTokens"] + day["outputTokens"]
        width = 0 if not peak else max(1 if tokens else 0, round(tokens / peak * BAR_WIDTH))
        p50, p95 = day.get("ttftP50Ms"), day.get("ttftP95Ms")
        ttft = f"  TTFT p50 {p50:.0f} / p95 {p95:.0f} ms" if p50 is not None and p95 is not None else ""
        errors = day.get("errors", 0)
        lines.append(
            f"{day['day']}  {(BAR * width).ljust(BAR_WIDTH)}  {day['inputTokens']} in / {day['outputTokens']} out"
            f"  {day['requests']} requests, {errors} errors{ttft}"
        )
        if day.get("errorsByCode"):
            lines.append(
                " " * 12 + "errors: " + ", ".join(f"{c} x{n}" for c, n in day["errorsByCode"].items())
            )
    lines.append(
        f"total: {document.get('requests', 0)} requests, {document.get('inputTokens', 0)} input and "
        f"{document.get('outputTokens', 0)} output tokens"
    )
    return "\n".join(lines)
