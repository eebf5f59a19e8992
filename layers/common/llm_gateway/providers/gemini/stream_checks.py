"""The Gemini stream checks: status, content type, framing (SSE, or the JSON array without
``alt=sse``), the ``GenerateContentResponse`` schema, finish reasons, usage and mid-stream errors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.models.report import Check, CheckCategory
from llm_gateway.providers.common.findings import Findings
from llm_gateway.providers.common.http import media_type
from llm_gateway.providers.common.stream_errors import stream_error_hint
from llm_gateway.providers.gemini.errors import classify_stream_error, error_label, gemini_error_object
from llm_gateway.providers.sse import SseEvent, SseLimitExceeded, SseObservations, parse_sse

__all__ = ["check_stream_response"]

_KNOWN_FINISH_REASONS = frozenset(
    {
        "FINISH_REASON_UNSPECIFIED",
        "STOP",
        "MAX_TOKENS",
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "IMAGE_SAFETY",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_OTHER",
        "NO_IMAGE",
        "IMAGE_RECITATION",
        "MISSING_THOUGHT_SIGNATURE",
    }
)
_CATEGORIES = {
    "http_status": CheckCategory.ENDPOINT,
    "stream_status": CheckCategory.ENDPOINT,
    "content_type": CheckCategory.STREAMING,
    "sse_framing": CheckCategory.STREAMING,
    "terminator": CheckCategory.FORMAT,
    "chunk_schema": CheckCategory.FORMAT,
    "finish_reason": CheckCategory.FORMAT,
    "usage_metadata": CheckCategory.FORMAT,
    "mid_stream_error": CheckCategory.STREAMING,
}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


@dataclass(slots=True)
class _StreamFacts:
    """What the payload checks found, for the finish-reason and error checks."""

    payloads: list[Any] = field(default_factory=list)
    schema_problems: list[tuple[str, str]] = field(default_factory=list)  # (problem, evidence)
    schema_warnings: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (error, evidence)
    done_sentinel: str | None = None
    has_parts: bool = False
    has_feedback: bool = False
    has_usage: bool = False


def check_stream_response(
    status: int, headers: Mapping[str, str], body: bytes, alt_sse: bool, secrets: Sequence[str]
) -> list[Check]:
    """The checks of a 2xx answer, in report order."""
    findings = Findings(secrets, _CATEGORIES)
    if status != 200:
        findings.fail(
            "stream_status",
            f"HTTP {status}: a started stream must be 200",
            "Answer a streamGenerateContent request with HTTP 200.",
        )
        ids = ["stream_status", "content_type"]
    else:
        findings.note("http_status", "HTTP 200")
        ids = ["http_status", "content_type"]
    _check_content_type(headers.get("content-type"), alt_sse, findings)
    facts = _StreamFacts()
    stripped = body.lstrip(b" \t\r\n\xef\xbb\xbf")
    if stripped.startswith(b"["):
        _check_array_mode(stripped, alt_sse, facts, findings)
        ids.append("sse_framing")
    else:
        ids += _check_sse_framing(body, facts, findings)
    ids += _payload_checks(facts, findings)
    return findings.checks(ids)


def _check_content_type(content_type: str | None, alt_sse: bool, findings: Findings) -> None:
    if not alt_sse or media_type(content_type) == "text/event-stream":
        findings.note("content_type", f"Content-Type {content_type}")
        return
    findings.fail(
        "content_type",
        "no Content-Type header"
        if content_type is None
        else f"Content-Type is {content_type!r}, not text/event-stream",
        "Stream with Content-Type: text/event-stream and `data: {json}` events "
        "(the Gemini API does this when called with ?alt=sse).",
        content_type,
    )


def _check_array_mode(body: bytes, alt_sse: bool, facts: _StreamFacts, findings: Findings) -> None:
    try:
        items = _loads(body)
    except ValueError:
        items = None
    if isinstance(items, list):
        for item in items:
            _inspect_payload(item, _dumps(item), facts)
    if alt_sse:
        findings.fail(
            "sse_framing",
            "the body is one JSON array, not Server-Sent Events: the server ignored alt=sse",
            "Serve ?alt=sse requests as `data: {json}` events separated by blank lines, one "
            "GenerateContentResponse per event.",
            body,
        )
    elif not isinstance(items, list):
        findings.fail(
            "sse_framing",
            "the JSON-array body does not parse",
            "Return a valid JSON array of GenerateContentResponse objects.",
            body,
        )
    else:
        findings.note("sse_framing", f"JSON-array stream of {len(items)} responses")


def _bare_error(obs: SseObservations) -> tuple[dict[str, Any] | None, str]:
    """Gemini's unprefixed ``{"error": …}`` after the events, rebuilt from the stray lines."""
    text = "\n".join(obs.non_field_lines).strip()
    if not text.startswith("{") or '"error"' not in text:
        return None, text
    error = gemini_error_object(text)
    if error is None:  # cut off or followed by junk: still an error report, just not parseable
        error = {}
    return error, text


def _check_sse_framing(body: bytes, facts: _StreamFacts, findings: Findings) -> list[str]:
    """Framing and terminator checks; returns the ids it decided."""
    try:
        events, obs = parse_sse(body)
    except SseLimitExceeded as exc:
        findings.fail(
            "sse_framing", f"the stream could not be parsed: {exc}",
            "Send one compact JSON object per `data: ` line and end each event with a blank line.",
        )  # fmt: skip
        return ["sse_framing"]
    problems = _framing_problems(obs, facts)
    _read_events(events, facts)
    _framing_verdict(problems, events, obs, body, facts, findings)
    if facts.done_sentinel is not None:
        findings.fail(
            "terminator",
            "the stream sends `data: [DONE]`, which Gemini does not: Gemini clients try to parse it as JSON",
            "Remove the [DONE] event; a Gemini stream ends when the connection closes.",
            facts.done_sentinel,
        )
    else:
        findings.note("terminator", "no [DONE]; the stream ends at close")
    return ["sse_framing", "terminator"]


def _framing_problems(obs: SseObservations, facts: _StreamFacts) -> list[tuple[str, str]]:
    """What Gemini clients (google-genai) choke on: (problem, evidence sample) in report order."""
    problems: list[tuple[str, str]] = []
    if obs.bom:
        problems.append(("the body starts with a UTF-8 byte-order mark", "\ufeff"))
    if obs.invalid_utf8:
        problems.append(("the body is not valid UTF-8", ""))
    if obs.data_lines_without_space:
        problems.append(
            (f"{obs.data_lines_without_space} `data:` line(s) without the space after the colon", "data:{")
        )
    if obs.comment_count:
        sample = ":" + (obs.comments[0] if obs.comments else "")
        problems.append((f"{obs.comment_count} comment line(s) (`:` keep-alives)", sample))
    for count, name in ((obs.event_fields, "event"), (obs.id_fields, "id"), (obs.retry_fields, "retry")):
        if count:
            problems.append((f"{count} `{name}:` field(s)", f"{name}:"))
    if obs.non_field_line_count:
        error, text = _bare_error(obs)
        if error is not None:
            facts.errors.append((error, text))
        else:
            problems.append((f"{obs.non_field_line_count} line(s) that are not `data: ` lines", text))
    if obs.data_lines > obs.events:
        problems.append(("an event has several `data:` lines (Gemini clients parse each line alone)", ""))
    return problems


def _read_events(events: list[SseEvent], facts: _StreamFacts) -> None:
    for event in events:
        data = event.data
        if data.strip().startswith("[DONE]"):
            facts.done_sentinel = data
            continue
        try:
            payload = _loads(data)
        except ValueError:
            facts.schema_problems.append(("an event's data is not JSON", data))
            continue
        _inspect_payload(payload, data, facts)


def _framing_verdict(
    problems: list[tuple[str, str]],
    events: list[SseEvent],
    obs: SseObservations,
    body: bytes,
    facts: _StreamFacts,
    findings: Findings,
) -> None:
    endings = "/".join(sorted(obs.line_endings)) or "no"
    if problems:
        text, sample = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        findings.fail(
            "sse_framing",
            f"Gemini stream framing: {text}{more}; Gemini clients (google-genai) accept only "
            "`data: ` lines and blank lines",
            "Send each GenerateContentResponse as exactly one `data: {json}` line followed by a "
            "blank line; no comments, no event/id/retry fields, nothing else.",
            sample or None,
        )
    elif not events and not facts.errors:
        findings.fail(
            "sse_framing",
            "the stream has no `data: ` events",
            "Stream GenerateContentResponse objects as `data: {json}` events.",
            body[:200] if body else "(empty body)",
        )
    elif obs.truncated_event:
        findings.warn(
            "sse_framing",
            f"{len(events)} event(s), {endings} line endings; the last event is not followed by a blank line",
            "End every event, including the last, with a blank line.",
        )
    else:
        findings.note("sse_framing", f"{len(events)} event(s), {endings} line endings")


def _inspect_payload(payload: Any, raw: str, facts: _StreamFacts) -> None:
    """Schema of one GenerateContentResponse (WIRE_FORMATS §3.2); findings go into ``facts``."""
    if not isinstance(payload, dict):
        facts.schema_problems.append(("an event is not a JSON object", raw))
        return
    if "error" in payload:
        error = payload["error"] if isinstance(payload["error"], dict) else {}
        facts.errors.append((error, raw))
        return
    facts.payloads.append(payload)
    feedback = payload.get("promptFeedback")
    if feedback is not None:
        if isinstance(feedback, dict):
            facts.has_feedback = True
        else:
            facts.schema_problems.append(("promptFeedback is not an object", raw))
    usage = payload.get("usageMetadata")
    if usage is not None:
        if isinstance(usage, dict) and all(
            isinstance(v, int) for k, v in usage.items() if k.endswith("Count")
        ):
            facts.has_usage = True
        else:
            facts.schema_warnings.append(("usageMetadata token counts are not integers", raw))
    candidates = payload.get("candidates")
    if candidates is None:
        if feedback is None and usage is None:
            facts.schema_warnings.append(("an event has neither candidates nor promptFeedback", raw))
        return
    if not isinstance(candidates, list):
        facts.schema_problems.append(("candidates is not an array", raw))
        return
    for candidate in candidates:
        _inspect_candidate(candidate, raw, facts)


def _inspect_candidate(candidate: Any, raw: str, facts: _StreamFacts) -> None:
    if not isinstance(candidate, dict):
        facts.schema_problems.append(("a candidate is not an object", raw))
        return
    reason = candidate.get("finishReason")
    if reason is not None and not isinstance(reason, str):
        facts.schema_problems.append(("finishReason is not a string", raw))
    content = candidate.get("content")
    if content is None:
        return
    if not isinstance(content, dict):
        facts.schema_problems.append(("candidate.content is not an object", raw))
        return
    role = content.get("role")
    if role is not None and role != "model":
        facts.schema_warnings.append((f"candidate.content.role is {role!r}, expected 'model'", raw))
    parts = content.get("parts")
    if parts is None:
        return
    if not isinstance(parts, list):
        facts.schema_problems.append(("content.parts is not an array", raw))
        return
    for part in parts:
        problem = _part_problem(part)
        if problem:
            facts.schema_problems.append((problem, raw))
        else:
            facts.has_parts = True


def _part_problem(part: Any) -> str | None:
    if not isinstance(part, dict):
        return "a part is not an object"
    if "text" in part and not isinstance(part["text"], str):
        return "part.text is not a string"
    if "thought" in part and not isinstance(part["thought"], bool):
        return "part.thought is not a boolean"
    call = part.get("functionCall")
    if call is not None:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            return "functionCall has no name"
        if "args" in call and not isinstance(call["args"], dict):
            return "functionCall.args is not a JSON object (Gemini sends whole objects, never partial JSON)"
    return None


def _payload_checks(facts: _StreamFacts, findings: Findings) -> list[str]:
    """Schema, finish reason, usage and mid-stream error checks; returns the ids it decided."""
    ids = ["chunk_schema", "finish_reason"]
    _chunk_schema_verdict(facts, findings)
    _finish_reason_verdict(facts, findings)
    # usage_metadata: optional in the spec, but without it the gateway cannot report usage
    if facts.has_usage:
        findings.note("usage_metadata", "usageMetadata present")
        ids.append("usage_metadata")
    elif facts.payloads:
        findings.warn(
            "usage_metadata",
            "no usageMetadata: token usage cannot be reported to clients",
            "Include usageMetadata {promptTokenCount, candidatesTokenCount, totalTokenCount}.",
        )
        ids.append("usage_metadata")
    if facts.errors:
        error, raw = facts.errors[0]
        findings.fail(
            "mid_stream_error",
            f"the upstream reported an error during the stream ({error_label(error)}; {classify_stream_error(error)})",
            stream_error_hint(classify_stream_error(error), after_tokens=facts.has_parts),
            raw,
        )
    else:
        findings.note("mid_stream_error", "no error in the stream")
    return [*ids, "mid_stream_error"]


def _chunk_schema_verdict(facts: _StreamFacts, findings: Findings) -> None:
    if facts.schema_problems:
        problem, raw = facts.schema_problems[0]
        more = f" (and {len(facts.schema_problems) - 1} more)" if len(facts.schema_problems) > 1 else ""
        findings.fail(
            "chunk_schema",
            f"{problem}{more}",
            "Send each event as a complete GenerateContentResponse JSON object: "
            '{"candidates": [{"content": {"role": "model", "parts": [{"text": "..."}]}}]}.',
            raw,
        )
    elif not facts.has_parts and not facts.has_feedback and not facts.errors:
        findings.fail(
            "chunk_schema",
            "no event has candidates[].content.parts[] or promptFeedback",
            "Return the model output as candidates[0].content.parts[] in each event.",
        )
    elif facts.schema_warnings:
        problem, raw = facts.schema_warnings[0]
        findings.warn(
            "chunk_schema",
            problem,
            "Follow the GenerateContentResponse schema of the Gemini API reference.",
            raw,
        )
    elif facts.payloads:
        findings.note("chunk_schema", f"{len(facts.payloads)} GenerateContentResponse event(s)")
    else:
        findings.skip("chunk_schema", "no response events before the error")


def _finish_reason_verdict(facts: _StreamFacts, findings: Findings) -> None:
    with_candidates = [p for p in facts.payloads if isinstance(p.get("candidates"), list) and p["candidates"]]
    if facts.errors:
        findings.skip("finish_reason", "the stream ended with an error")
        return
    if not with_candidates:
        blocked = next(
            (
                p["promptFeedback"].get("blockReason")
                for p in facts.payloads
                if isinstance(p.get("promptFeedback"), dict) and p["promptFeedback"].get("blockReason")
            ),
            None,
        )
        if blocked:
            findings.note("finish_reason", f"prompt blocked (blockReason {blocked})")
        else:
            findings.skip("finish_reason", "no candidate events")
        return
    found = [c.get("finishReason") for c in with_candidates[-1]["candidates"] if isinstance(c, dict)]
    reasons = [r for r in found if isinstance(r, str) and r]
    if len(reasons) != len(found):
        findings.warn(
            "finish_reason",
            "the last candidate event has no finishReason, so clients cannot tell a complete answer "
            "from a cut-off one",
            'Set candidates[].finishReason (e.g. "STOP") on the last event.',
        )
        return
    notes = []
    unknown = sorted({r for r in reasons if r not in _KNOWN_FINISH_REASONS})
    if unknown:
        notes.append(f"unknown value(s) {', '.join(unknown)} tolerated")
    earlier = sum(
        1
        for p in with_candidates[:-1]
        for c in p["candidates"]
        if isinstance(c, dict) and c.get("finishReason")
    )
    if earlier:
        notes.append(f"also on {earlier} earlier event(s), as older models do")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    findings.note("finish_reason", f"finishReason {', '.join(reasons)}{suffix}")
