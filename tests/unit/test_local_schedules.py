"""The local stack runs the template's schedule (its target and input) as a timer, and
``llm-gateway llms health`` draws the buckets it gets back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llm_gateway_cli.commands.health import render_chart, render_health
from llm_gateway_local.schedules import (
    LocalSchedule,
    fill_input,
    parse_duration,
    rate_seconds,
    schedule_targets,
)
from llm_gateway_local.template import load_template


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("45", 45), ("1500ms", 1.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0s", "500ms", "-5s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_rates() -> None:
    assert rate_seconds("rate(15 minutes)") == 900
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("cron(0 * * * ? *)") is None


def test_the_templates_schedule_invokes_the_scheduler_function() -> None:
    (target,) = schedule_targets(load_template())
    assert target.function == "RevalidationSchedulerFunction"
    assert target.module == "functions.revalidation_scheduler.handler"
    assert target.attribute == "lambda_handler"
    assert target.period_s == 900


def test_the_input_is_filled_in_as_scheduler_would() -> None:
    (target,) = schedule_targets(load_template())
    at = datetime(2026, 11, 25, 10, 15, tzinfo=UTC)
    assert fill_input(target.input, at, None) == {
        "scheduledTime": "2026-11-25T10:15:00Z",
        "windowSeconds": 900,
    }
    assert fill_input(target.input, at, 30)["windowSeconds"] == 30


def test_a_shorter_period_covers_its_own_window_and_ticks_on_time() -> None:
    (target,) = schedule_targets(load_template())
    events: list[dict[str, Any]] = []
    fired = threading.Event()

    def invoke(event: dict[str, Any]) -> None:
        events.append(event)
        if len(events) == 2:
            fired.set()

    schedule = LocalSchedule(target, invoke, period_s=1)
    schedule.start()
    try:
        assert fired.wait(5), "the timer did not fire twice in 5 s"
    finally:
        schedule.stop()
    first, second = (datetime.fromisoformat(e["scheduledTime"]) for e in events[:2])
    assert second - first == timedelta(seconds=1)
    assert all(e["windowSeconds"] == 1 for e in events)


# ---------------------------------------------------------------- the text chart

NOW = datetime(2026, 11, 25, 12, 2, tzinfo=UTC)


def _document(buckets: list[tuple[datetime, int, float]], hours: int = 1) -> dict[str, Any]:
    return {
        "state": "degraded",
        "since": "2026-11-25T11:55:00+00:00",
        "lastCheckedAt": "2026-11-25T12:00:00+00:00",
        "window": {"requests": 30, "errorRate": 0.3, "ttftP50Ms": 52.0, "ttftP95Ms": 99.0,
                   "errorsByCode": {"upstream_server_error": 9}},
        "hours": hours,
        "bucketSeconds": 300,
        "buckets": [{"start": s.isoformat(), "requests": r, "errorRate": e} for s, r, e in buckets],
    }  # fmt: skip


def test_the_chart_has_a_column_per_bucket_and_marks_errors() -> None:
    doc = _document(
        [
            (datetime(2026, 11, 25, 11, 20, tzinfo=UTC), 10, 0.0),
            (datetime(2026, 11, 25, 12, 0, tzinfo=UTC), 40, 0.6),
        ]
    )
    requests, errors, axis = render_chart(doc, NOW)
    bars = requests.split("|")[1]
    marks = errors.split("|")[1]
    assert len(bars) == len(marks) == 12
    assert bars[-1] == "█" and bars[3] not in (" ", "█")  # 11:20 is the 4th column of 11:05..12:00
    assert marks[-1] == "X" and marks[3] == "·" and marks[0] == " "
    assert "peak 40 per 5 min" in requests
    assert axis.strip().startswith("11:05")


def test_a_day_fits_in_72_columns() -> None:
    requests, _, axis = render_chart(_document([], hours=24), NOW)
    assert len(requests.split("|")[1]) <= 72
    assert "20 min per column" in axis


def test_the_summary_says_state_since_and_what_traffic_did() -> None:
    text = render_health(_document([]), NOW)
    assert "degraded since 2026-11-25 11:55:00 UTC" in text
    assert "30 requests, 30% upstream errors (upstream_server_error x9)" in text
    assert "TTFT p50 52 ms, p95 99 ms" in text


def test_dev_refuses_a_bad_interval_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_gateway_cli.commands.dev import run_dev

    assert run_dev(0, None, demo=False, revalidate_every="soon") == 2
    assert "--revalidate-every" in capsys.readouterr().err
