"""``llm-gateway llms health ID``: an LLM's health state and a small text chart of its recent traffic."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

BARS = " ▁▂▃▄▅▆▇█"
CHART_COLUMNS = 72
#: Error-row marks: no traffic, no errors, some, ≥ 20 % (degraded), ≥ 50 % (failing).
QUIET, CLEAN, SOME, DEGRADED, FAILING = " ", "·", "-", "!", "X"


def register(actions: Any, action: Callable[..., Any], common: Callable[[Any, str], None]) -> None:
    health = action(
        actions,
        "health",
        "show an LLM's health and a chart of its recent traffic",
        "Show an LLM's health (GET /v1/llms/{id}/health): healthy, degraded or failing, since when,\n"
        "the last check, the last 15 minutes of real traffic, and a chart of requests and upstream\n"
        "errors per 5 minutes over the last hours.",
        "  llm-gateway llms health LLM_ID\n  llm-gateway llms health LLM_ID --hours 24\n"
        "  llm-gateway llms health LLM_ID --json\n",
    )
    health.add_argument("llm_id", metavar="ID")
    health.add_argument("--hours", type=int, default=6, metavar="N", help="hours of traffic to chart (1-48)")
    common(health, "print the health document (state, window, buckets) as JSON")
    health.set_defaults(run=run_health)


def run_health(args: argparse.Namespace) -> int:
    from llm_gateway_cli.commands.client import call

    path = f"/v1/llms/{quote(args.llm_id, safe='')}/health"
    response = call(args, "GET", path, params={"hours": args.hours})
    if isinstance(response, int):
        return response
    document = response.json()
    print(json.dumps(document, indent=2) if args.json else render_health(document, datetime.now(UTC)))
    return 0


def _time(value: str | None) -> str:
    if not value:
        return "never"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _window_line(window: dict[str, Any]) -> str:
    requests = int(window.get("requests") or 0)
    if not requests:
        return "last 15 min: no traffic"
    parts = [
        f"last 15 min: {requests} requests",
        f"{round((window.get('errorRate') or 0) * 100)}% upstream errors",
    ]
    codes = window.get("errorsByCode") or {}
    if codes:
        parts[-1] += " (" + ", ".join(f"{code} x{n}" for code, n in codes.items()) + ")"
    if window.get("ttftP50Ms") is not None:
        parts.append(f"TTFT p50 {window['ttftP50Ms']:.0f} ms, p95 {window.get('ttftP95Ms') or 0:.0f} ms")
    return ", ".join(parts)


def _columns(document: dict[str, Any], now: datetime) -> tuple[list[tuple[int, int]], int, int]:
    """(requests, errors) per column over the range, the first column's start and its width (s)."""
    hours, size = int(document.get("hours") or 6), int(document.get("bucketSeconds") or 300)
    buckets_in_range = hours * 3600 // size
    per_column = max(1, -(-buckets_in_range // CHART_COLUMNS))
    width = per_column * size
    end = int(now.timestamp()) // width * width + width
    start = end - -(-hours * 3600 // width) * width
    columns = [(0, 0)] * ((end - start) // width)
    for bucket in document.get("buckets") or []:
        at = int(datetime.fromisoformat(bucket["start"]).timestamp())
        index = (at - start) // width
        if 0 <= index < len(columns):
            requests, errors = columns[index]
            errors += round((bucket.get("errorRate") or 0) * bucket.get("requests", 0))
            columns[index] = (requests + int(bucket.get("requests") or 0), errors)
    return columns, start, width


def _error_mark(requests: int, errors: int) -> str:
    if not requests:
        return QUIET
    rate = errors / requests
    return FAILING if rate >= 0.5 else DEGRADED if rate >= 0.2 else SOME if errors else CLEAN


def render_chart(document: dict[str, Any], now: datetime) -> list[str]:
    columns, start, width = _columns(document, now)
    peak = max((r for r, _ in columns), default=0)
    bars = "".join(BARS[0] if not r else BARS[max(1, round(r / peak * (len(BARS) - 1)))] for r, _ in columns)
    errors = "".join(_error_mark(r, e) for r, e in columns)
    axis = [" "] * len(columns)
    step = max(1, 3600 // width) * (2 if len(columns) * width > 12 * 3600 else 1)
    for index in range(0, len(columns), step):
        label = datetime.fromtimestamp(start + index * width, UTC).strftime("%H:%M")
        if index + len(label) <= len(columns):
            axis[index : index + len(label)] = label
    minutes = width // 60
    return [
        f"requests |{bars}|  peak {peak} per {minutes} min",
        f"errors   |{errors}|  {CLEAN} none  {SOME} some  {DEGRADED} >=20%  {FAILING} >=50%",
        f"          {''.join(axis).rstrip()}   (UTC, {minutes} min per column)",
    ]


def render_health(document: dict[str, Any], now: datetime) -> str:
    lines = [
        f"health:       {document.get('state')} since {_time(document.get('since'))}",
        f"last checked: {_time(document.get('lastCheckedAt'))}",
        _window_line(document.get("window") or {}),
        "",
        f"last {document.get('hours')} h:",
        *render_chart(document, now),
    ]
    return "\n".join(lines)
