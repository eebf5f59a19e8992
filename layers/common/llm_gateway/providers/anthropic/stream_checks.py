"""The checks of a 200 Messages stream (Anthropic's streaming docs): framing with named events,
JSON data with a ``type`` matching the event name, the event order (``message_start`` first, each
block's start before its deltas and its stop after them, ``message_stop`` last), tool input
fragments that concatenate to a JSON object, the stop reason, usage and in-band errors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.models.report import Check, CheckCategory
from llm_gateway.providers.anthropic.errors import classify_stream_error, error_label
from llm_gateway.providers.anthropic.translate import STOP_REASONS
from llm_gateway.providers.common.findings import Findings
from llm_gateway.providers.common.http import media_type
from llm_gateway.providers.common.stream_errors import stream_error_hint
from llm_gateway.providers.sse import SseEvent, SseLimitExceeded, parse_sse

__all__ = ["CATEGORIES", "check_stream_response"]

CATEGORIES = {
    "http_status": CheckCategory.ENDPOINT,
    "content_type": CheckCategory.STREAMING,
    "sse_framing": CheckCategory.STREAMING,
    "data_json": CheckCategory.FORMAT,
    "event_order": CheckCategory.FORMAT,
    "tool_input_json": CheckCategory.FORMAT,
    "stop_reason": CheckCategory.FORMAT,
    "message_stop": CheckCategory.FORMAT,
    "usage": CheckCategory.FORMAT,
    "mid_stream_error": CheckCategory.STREAMING,
}
_ORDER_HINT = (
    "Send message_start first, then per content block content_block_start, its content_block_delta "
    "events and content_block_stop (same index), then message_delta and message_stop last."
)
_STREAM_IDS = ("sse_framing", "data_json", "event_order", "tool_input_json", "stop_reason", "message_stop",
               "usage", "mid_stream_error")  # fmt: skip


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class _Facts:
    """What the events showed, for the verdicts."""

    started: bool = False
    stopped: bool = False
    open_blocks: dict[int, str] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    tool_input: dict[int, list[str]] = field(default_factory=dict)
    stop_reasons: list[Any] = field(default_factory=list)
    input_tokens: bool = False
    output_tokens: bool = False
    tokens: bool = False  # a text, thinking or tool delta arrived
    errors: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def check_stream_response(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    expect_complete: bool,
    expect_start: bool,
) -> list[Check]:
    findings = Findings(secrets, CATEGORIES)
    findings.note("http_status", "HTTP 200")
    content_type = headers.get("content-type")
    if media_type(content_type) == "text/event-stream":
        findings.note("content_type", f"Content-Type {content_type}")
    else:
        findings.fail(
            "content_type",
            "no Content-Type header"
            if content_type is None
            else f"Content-Type is {content_type!r}, not text/event-stream",
            "Stream with Content-Type: text/event-stream (the Messages API does with stream=true).",
            content_type,
        )
    try:
        events, obs = parse_sse(body)
    except SseLimitExceeded as exc:
        findings.fail("sse_framing", f"the stream could not be parsed: {exc}",
                      "Send each event as `event: <type>` and `data: {json}` lines ending with a blank line.")  # fmt: skip
        return findings.checks(("http_status", "content_type", "sse_framing"))
    facts = _Facts(started=not expect_start)
    unnamed = _read(events, facts, findings)
    _framing(events, unnamed, obs.non_field_line_count, body, findings)
    _verdicts(facts, findings, expect_complete)
    return findings.checks(("http_status", "content_type", *_STREAM_IDS))


def _framing(events: list[SseEvent], unnamed: int, stray: int, body: bytes, findings: Findings) -> None:
    if not events:
        findings.fail("sse_framing", "the stream has no events",
                      "Stream Messages events as `event: <type>` / `data: {json}` pairs.", body[:200] or "(empty body)")  # fmt: skip
    elif stray:
        findings.fail("sse_framing", f"{stray} line(s) that are not SSE fields",
                      "Send only `event:`/`data:` lines and blank lines between events.")  # fmt: skip
    elif unnamed:
        findings.fail(
            "sse_framing",
            f"{unnamed} event(s) without an `event:` name matching their data's type",
            "Name every event (`event: message_start` …): Anthropic's SDKs dispatch on the event name.",
        )
    else:
        findings.note("sse_framing", f"{len(events)} named event(s)")


def _read(events: list[SseEvent], facts: _Facts, findings: Findings) -> int:
    """Every event's payload into ``facts``; returns how many lack a matching event name."""
    unnamed = 0
    for event in events:
        try:
            payload = json.loads(event.data)
        except ValueError:
            findings.fail("data_json", "an event's data is not JSON",
                          "Send one JSON object per event's data.", event.data)  # fmt: skip
            continue
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str):
            findings.fail("data_json", "an event's data is not an object with a `type`",
                          'Every event\'s data is a JSON object whose "type" names the event.', event.data)  # fmt: skip
            continue
        if event.event != kind:
            unnamed += 1
        _order(kind, payload, event.data, facts, findings)
    return unnamed


def _order(kind: str, payload: dict[str, Any], raw: str, facts: _Facts, findings: Findings) -> None:
    index = payload.get("index")
    if kind == "error":
        error = _obj(payload.get("error"))
        facts.errors.append((error, raw))
        return
    if kind == "ping":
        return
    if facts.stopped:
        findings.fail("event_order", f"{kind} after message_stop", _ORDER_HINT, raw)
    elif kind == "message_start":
        if facts.started:
            findings.fail("event_order", "a second message_start", _ORDER_HINT, raw)
        facts.started = True
        usage = (
            (payload.get("message") or {}).get("usage") if isinstance(payload.get("message"), dict) else None
        )
        facts.input_tokens = isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int)
    elif not facts.started:
        findings.fail("event_order", f"{kind} before message_start", _ORDER_HINT, raw)
        facts.started = True
    if kind == "content_block_start" and isinstance(index, int):
        block = payload.get("content_block")
        facts.open_blocks[index] = str(block.get("type")) if isinstance(block, dict) else "?"
        if isinstance(block, dict) and block.get("type") == "tool_use":
            facts.tool_input[index] = []
    elif kind in ("content_block_delta", "content_block_stop"):
        _block_event(kind, index, payload, raw, facts, findings)
    elif kind == "message_delta":
        _message_delta(payload, raw, facts, findings)
    elif kind == "message_stop":
        if facts.open_blocks:
            findings.fail("event_order", f"message_stop while block(s) {sorted(facts.open_blocks)} are open",
                          _ORDER_HINT, raw)  # fmt: skip
        facts.stopped = True


def _block_event(
    kind: str, index: Any, payload: dict[str, Any], raw: str, facts: _Facts, findings: Findings
) -> None:
    if not isinstance(index, int) or index not in facts.open_blocks:
        where = "after its content_block_stop" if index in facts.closed else "without its content_block_start"
        findings.fail("event_order", f"{kind} for block {index!r} {where}", _ORDER_HINT, raw)
        return
    if kind == "content_block_stop":
        facts.closed.add(index)
        del facts.open_blocks[index]
        return
    delta = _obj(payload.get("delta"))
    facts.tokens = facts.tokens or delta.get("type") in ("text_delta", "thinking_delta", "input_json_delta")
    if delta.get("type") == "input_json_delta":
        fragment = delta.get("partial_json")
        if index in facts.tool_input and isinstance(fragment, str):
            facts.tool_input[index].append(fragment)
        else:
            findings.fail("tool_input_json", "an input_json_delta outside a tool_use block or without partial_json",
                          "Send input_json_delta only in tool_use blocks, with a string partial_json.", raw)  # fmt: skip


def _message_delta(payload: dict[str, Any], raw: str, facts: _Facts, findings: Findings) -> None:
    if facts.open_blocks:
        findings.fail("event_order", f"message_delta while block(s) {sorted(facts.open_blocks)} are open",
                      _ORDER_HINT, raw)  # fmt: skip
    delta = payload.get("delta")
    if isinstance(delta, dict) and delta.get("stop_reason") is not None:
        facts.stop_reasons.append(delta["stop_reason"])
    usage = payload.get("usage")
    facts.output_tokens = facts.output_tokens or (
        isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int)
    )


def _verdicts(facts: _Facts, findings: Findings, expect_complete: bool) -> None:
    findings.note("data_json", "every event's data is a JSON object with a type")
    findings.note("event_order", "events in order")
    _tool_input(facts, findings)
    if facts.errors:
        error, raw = facts.errors[0]
        code = classify_stream_error(error)
        findings.fail("mid_stream_error", f"the upstream reported an error during the stream ({error_label(error)}; {code})",
                      stream_error_hint(code, after_tokens=facts.tokens), raw)  # fmt: skip
        findings.skip("stop_reason", "the stream ended with an error")
        findings.skip("message_stop", "the stream ended with an error")
    else:
        findings.note("mid_stream_error", "no error in the stream")
        _end(facts, findings, expect_complete)
    if facts.input_tokens and facts.output_tokens:
        findings.note("usage", "input_tokens on message_start, output_tokens on message_delta")
    elif expect_complete and not facts.errors:
        findings.warn("usage", "usage counts are missing: token usage cannot be reported to clients",
                      "Put usage.input_tokens in message_start.message and usage.output_tokens in message_delta.")  # fmt: skip
    else:
        findings.skip("usage", "not judged on a partial stream")


def _tool_input(facts: _Facts, findings: Findings) -> None:
    for index, fragments in facts.tool_input.items():
        text = "".join(fragments)
        try:
            value = json.loads(text) if text else {}
        except ValueError:
            findings.fail("tool_input_json", f"tool_use block {index}: the input_json_delta fragments do not "
                          "concatenate to valid JSON", "Stream the tool input as fragments of one JSON object.",
                          text)  # fmt: skip
            continue
        if not isinstance(value, dict):
            findings.fail("tool_input_json", f"tool_use block {index}: the input is not a JSON object",
                          "A tool_use input is always a JSON object.", text)  # fmt: skip
    if not facts.tool_input:
        findings.note("tool_input_json", "no tool_use blocks")
    else:
        findings.note("tool_input_json", f"{len(facts.tool_input)} tool input(s) parse as JSON objects")


def _end(facts: _Facts, findings: Findings, expect_complete: bool) -> None:
    if not expect_complete:
        findings.skip("stop_reason", "not judged on a partial stream")
        findings.skip("message_stop", "not judged on a partial stream")
        return
    if not facts.stop_reasons:
        findings.fail("stop_reason", "no message_delta carries a stop_reason",
                      'Send message_delta with delta.stop_reason (e.g. "end_turn") before message_stop.')  # fmt: skip
    else:
        reason = facts.stop_reasons[-1]
        known = "" if reason in STOP_REASONS else " (unknown value, read as end_turn)"
        findings.note("stop_reason", f"stop_reason {reason}{known}")
    if facts.stopped:
        findings.note("message_stop", "the stream ends with message_stop")
    else:
        findings.fail("message_stop", "the stream ended without message_stop, so clients cannot tell a complete answer "
                      "from a cut-off one", "End every stream with `event: message_stop`.")  # fmt: skip
