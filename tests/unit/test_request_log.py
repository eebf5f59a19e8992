"""The request log's pure parts: usage from every spec's stream (and the usage chunk only for clients
that asked), the day counters, the API's query rules, and the CLI's table and chart."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.domain.proxy import with_usage
from llm_gateway.domain.request_log import RequestLogService, UsageCounts, token_usage
from llm_gateway.errors import BadRequest
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.models.request_log import RequestPage, RequestRecord, TokenUsage
from llm_gateway.providers.base import EndpointSpec
from llm_gateway.providers.dispatch import build_call, make_relay
from llm_gateway_cli.commands.requests import parse_age, render_requests, render_usage

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRANSCRIPTS = REPO_ROOT / "tests" / "fixtures" / "transcripts"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OPENAI = EndpointSpec(LlmFormat.OPENAI, "https://a.example/v1/chat/completions", "gpt-4o")
GEMINI = EndpointSpec(LlmFormat.GEMINI, "https://g.example", "gemini-2.5-flash")


def _chat(**options: Any) -> ChatRequest:
    return ChatRequest(
        messages=[ChatMessage(role="user", content="hi")], stream=True, stream_options=options or None
    )


def _events(stream: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: {")]


def test_every_upstream_is_asked_for_usage_keeping_the_clients_other_options() -> None:
    for chat in (_chat(), _chat(include_usage=False), _chat(include_obfuscation=False)):
        body = json.loads(build_call(OPENAI, with_usage(chat), "k").body)
        assert body["stream_options"]["include_usage"] is True
    kept = json.loads(build_call(OPENAI, with_usage(_chat(include_obfuscation=False)), "k").body)
    assert kept["stream_options"]["include_obfuscation"] is False


@pytest.mark.parametrize("asked", [True, False])
def test_openai_usage_is_recorded_and_its_chunk_sent_only_when_asked(asked: bool) -> None:
    relay = make_relay(OPENAI, _chat(include_usage=True) if asked else _chat())
    body = (TRANSCRIPTS / "openai" / "openai-python-text-usage.sse").read_bytes()
    out = relay.feed(body) + relay.finish()
    sent = [e["usage"] for e in _events(out) if e.get("usage")]
    usage = token_usage(relay.usage)
    assert (
        usage is not None
        and usage.output_tokens > 0
        and usage.total_tokens == usage.input_tokens + usage.output_tokens
    )
    assert sent == ([relay.usage] if asked else [])
    assert out.endswith(b"data: [DONE]\n\n") and relay.complete


@pytest.mark.parametrize("asked", [True, False])
def test_gemini_usage_metadata_is_recorded_as_openai_usage(asked: bool) -> None:
    relay = make_relay(GEMINI, _chat(include_usage=True) if asked else _chat())
    body = (TRANSCRIPTS / "gemini" / "pydantic-ai-function-call-thought-signature.sse").read_bytes()
    out = relay.feed(body) + relay.finish()
    usage = token_usage(relay.usage)
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    sent = [e["usage"] for e in _events(out) if e.get("usage")]
    assert [(u["prompt_tokens"], u["completion_tokens"]) for u in sent] == (
        [(usage.input_tokens, usage.output_tokens)] if asked else []
    )


def test_token_usage_takes_only_counts() -> None:
    assert token_usage(None) is None
    assert token_usage({"prompt_tokens": 3, "completion_tokens": 4}) == TokenUsage(
        input_tokens=3, output_tokens=4, total_tokens=7
    )
    assert token_usage({"prompt_tokens": "3", "completion_tokens": True, "total_tokens": -1}) == TokenUsage()


def _record(
    outcome: str, ttft: float | None = 120.0, tokens: tuple[int, int] | None = (5, 7)
) -> RequestRecord:
    usage = (
        TokenUsage(input_tokens=tokens[0], output_tokens=tokens[1], total_tokens=sum(tokens))
        if tokens
        else None
    )
    return RequestRecord(at=NOW, request_id="r", llm_id="l", outcome=outcome, ttft_ms=ttft, usage=usage)


def test_day_counters_count_errors_by_code_tokens_and_the_ttft_of_answers() -> None:
    counts = UsageCounts("a", "l", NOW.date())
    for record in (_record("ok"), _record("ok", ttft=900), _record("upstream_timeout", ttft=None, tokens=None),
                   _record("client_disconnected", ttft=50, tokens=(5, 1))):  # fmt: skip
        counts.add(record)
    day = counts.to_day()
    assert (day.requests, day.errors) == (4, 2)
    assert day.errors_by_code == {"client_disconnected": 1, "upstream_timeout": 1}
    assert (day.input_tokens, day.output_tokens) == (15, 15)
    assert day.ttft_p50_ms is not None and 100 <= day.ttft_p50_ms <= 1000  # the two answers only


class _NoStore:
    def usage(self, *args: Any) -> list[UsageCounts]:
        return [UsageCounts("a", "l", date(2026, 12, 6), requests=2, input_tokens=4, output_tokens=6)]

    def session_requests(self, *args: Any) -> RequestPage:
        return RequestPage(data=[])


class _Owner:
    def owns_session(self, account_id: str, session_id: str) -> bool:
        return False


def test_usage_lists_every_day_of_the_range_oldest_first() -> None:
    service = RequestLogService(_NoStore(), _Owner(), now=lambda: NOW)  # type: ignore[arg-type]
    usage = service.usage("a", "l", 3)
    assert [(d.day.isoformat(), d.requests) for d in usage.data] == [
        ("2026-12-05", 0), ("2026-12-06", 2), ("2026-12-07", 0)
    ]  # fmt: skip
    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (2, 4, 6)


def test_queries_stay_inside_the_retention_and_refuse_foreign_cursors() -> None:
    service = RequestLogService(_NoStore(), _Owner(), retention_days=7, now=lambda: NOW)  # type: ignore[arg-type]
    query = service.query(since=NOW - timedelta(days=30), until=NOW + timedelta(days=1), limit=1000)
    assert (query.since, query.until, query.limit) == (NOW - timedelta(days=7), NOW, 100)
    with pytest.raises(BadRequest) as refused:
        service.query(since=NOW - timedelta(hours=1), until=NOW - timedelta(hours=2))
    assert refused.value.code == "invalid_time_range"
    with pytest.raises(BadRequest) as bad_cursor:
        service.query(cursor="REQLOG#acct_other#x")
    assert bad_cursor.value.code == "invalid_cursor"
    assert service.query(cursor="1765108800000#req-1").cursor == "1765108800000#req-1"


def test_the_cli_table_marks_retries_and_fallbacks_and_the_chart_scales_its_bars() -> None:
    page = {
        "data": [
            {"at": "2026-12-07T12:00:00Z", "requestId": "r1", "sessionId": "s1", "outcome": "ok", "httpStatus": 200,
             "ttftMs": 310.4, "totalMs": 900.0, "attempts": 2, "urlIndex": 1, "fallbackLlmId": "other",
             "usage": {"inputTokens": 12, "outputTokens": 40, "totalTokens": 52}},
            {"at": "2026-12-07T11:59:00Z", "requestId": "r2", "outcome": "session_revoked", "httpStatus": 403,
             "attempts": 0},
        ]
    }  # fmt: skip
    lines = render_requests(page).splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "OUTCOME"]
    assert "12-07 12:00:00" in lines[1] and "310 ms" in lines[1] and "2 @1" in lines[1] and "RF" in lines[1]
    assert "12/40" in lines[1] and "s1" in lines[1]
    assert "session_revoked" in lines[2] and "403" in lines[2]
    assert render_requests({"data": []}) == "no requests in this range"
    usage = {
        "days": 2, "requests": 3, "inputTokens": 30, "outputTokens": 30,
        "data": [
            {"day": "2026-12-06", "requests": 1, "errors": 0, "inputTokens": 10, "outputTokens": 10},
            {"day": "2026-12-07", "requests": 2, "errors": 1, "errorsByCode": {"upstream_timeout": 1},
             "inputTokens": 20, "outputTokens": 20, "ttftP50Ms": 300, "ttftP95Ms": 800},
        ],
    }  # fmt: skip
    chart = render_usage(usage).splitlines()
    assert chart[1].count("█") * 2 == chart[2].count("█") == 40
    assert "TTFT p50 300 / p95 800 ms" in chart[2] and "upstream_timeout x1" in chart[3]
    assert chart[-1] == "total: 3 requests, 30 input and 30 output tokens"


def test_since_takes_ages() -> None:
    assert parse_age("90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_age("2d", NOW) == NOW - timedelta(days=2)
    with pytest.raises(ValueError):
        parse_age("yesterday", NOW)
