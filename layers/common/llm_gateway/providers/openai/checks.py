"""The OpenAI spec checks: judge one RAW response (status, headers, body bytes) against
WIRE_FORMATS.md §0-§1, because the customer's clients are SDKs that read raw bytes too.

Azure runs the same checks with its documented tolerances (``SpecProfile.azure``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.common.findings import Findings
from llm_gateway.providers.common.findings import conforms as _conforms
from llm_gateway.providers.common.http import Headers, error_object, header_map, media_type
from llm_gateway.providers.openai.errors import classify_upstream_error
from llm_gateway.providers.openai.stream_checks import StreamChecker

__all__ = ["OPENAI_PROFILE", "OUTCOME_CHECK_IDS", "SpecProfile", "check_response", "conforms"]


@dataclass(frozen=True, slots=True)
class SpecProfile:
    """Where the Azure profile differs from OpenAI's (WIRE_FORMATS.md §2.2-§2.3)."""

    name: str
    label: str
    azure: bool = False


OPENAI_PROFILE = SpecProfile("openai", "OpenAI")
#: A failure of these reports what the upstream said (a well-formed error), not a spec violation.
OUTCOME_CHECK_IDS = frozenset({"http_status"})

_ORDER = (
    "http_status",
    "content_type",
    "error_body",
    "sse_framing",
    "sse_fields",
    "data_json",
    "chunk_schema",
    "chunk_consistency",
    "role_first",
    "inband_error",
    "finish_reason",
    "tool_call_deltas",
    "done_terminator",
)
_STREAM_ORDER = _ORDER[:2] + _ORDER[3:]

_PASS_MESSAGES = {
    "http_status": "HTTP 200",
    "content_type": "Content-Type is text/event-stream",
    "error_body": "error body has the expected shape",
    "sse_framing": "well-formed SSE framing",
    "sse_fields": "data-only events (no event:/id:/retry: fields)",
    "data_json": "every data event is JSON or [DONE]",
    "chunk_schema": "every chunk matches chat.completion.chunk",
    "chunk_consistency": "id and created are the same on every chunk",
    "role_first": "the first chunk carries the assistant role",
    "inband_error": "no error event in the stream",
    "finish_reason": "exactly one valid finish_reason per choice",
    "tool_call_deltas": "tool-call deltas are well formed",
    "done_terminator": "the stream ends with data: [DONE]",
}

_CATEGORIES = {
    "http_status": CheckCategory.ENDPOINT,
    "content_type": CheckCategory.STREAMING,
    "error_body": CheckCategory.FORMAT,
    "sse_framing": CheckCategory.STREAMING,
    "sse_fields": CheckCategory.STREAMING,
    "data_json": CheckCategory.FORMAT,
    "chunk_schema": CheckCategory.FORMAT,
    "chunk_consistency": CheckCategory.FORMAT,
    "role_first": CheckCategory.FORMAT,
    "inband_error": CheckCategory.FORMAT,
    "finish_reason": CheckCategory.FORMAT,
    "tool_call_deltas": CheckCategory.FORMAT,
    "done_terminator": CheckCategory.FORMAT,
}


def conforms(checks: Iterable[Check]) -> bool:
    """True when the response bytes follow the spec: no failed check other than ``http_status``.

    An error answer with a correct error body conforms (the endpoint speaks the protocol),
    although the report is still incompatible because the request did not succeed.
    """
    return _conforms(checks, OUTCOME_CHECK_IDS)


def check_response(
    status: int,
    headers: Headers,
    body: bytes,
    *,
    profile: SpecProfile = OPENAI_PROFILE,
    expect_complete: bool = True,
    expect_start: bool = True,
    secrets: Sequence[str] = (),
    max_line_bytes: int = 1024 * 1024,
) -> list[Check]:
    """Judge one raw response to a streaming chat-completions request.

    ``expect_complete=False`` / ``expect_start=False`` are for captured fragments: end-of-stream
    rules, or the start-of-stream rules (role first, first tool-call fragment), are skipped.
    ``secrets`` are redacted from every message and evidence string.
    """
    headers_by_name = header_map(headers)
    findings = Findings(
        secrets,
        _CATEGORIES,
        _PASS_MESSAGES,
        fail_hint="Fix the endpoint's output to match the OpenAI streaming format.",
    )
    if not 200 <= status < 300:
        return _check_error_response(status, headers_by_name, body, profile, findings)
    if status != 200:
        findings.fail(
            "http_status",
            f"HTTP {status} instead of 200 for a stream",
            "A started stream must answer 200 with a text/event-stream body.",
        )
    _check_content_type(headers_by_name, findings)
    StreamChecker(profile.azure, findings, expect_complete, expect_start, max_line_bytes).run(body)
    return findings.checks(_STREAM_ORDER)


def _check_content_type(headers: Mapping[str, str], findings: Findings) -> None:
    content_type = headers.get("content-type")
    if content_type is None:
        findings.add(
            "content_type",
            CheckStatus.FAIL,
            "no Content-Type header on the stream",
            "Send `Content-Type: text/event-stream` with the streaming response; SDKs and proxies "
            "rely on it to stream instead of buffering.",
        )
        return
    media = media_type(content_type) or ""
    if media != "text/event-stream":
        findings.add(
            "content_type",
            CheckStatus.FAIL,
            f"Content-Type is {media or 'empty'}, not text/event-stream",
            "A stream=true request must be answered with `Content-Type: text/event-stream` and SSE "
            "`data: <json>` events"
            + (" (NDJSON is Ollama's native API; use its /v1 route)." if "ndjson" in media else "."),
            evidence=f"content-type: {content_type}",
        )  # fmt: skip


def _check_error_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    profile: SpecProfile,
    findings: Findings,
) -> list[Check]:
    error = classify_upstream_error(status, body, headers, secrets=findings.secrets)
    findings.add(
        "http_status",
        CheckStatus.FAIL,
        f"HTTP {status} ({error.code}): {error.message}",
        error.hint,
        evidence=body,
        category=error.category,
    )
    error_body = error_object(body)
    if error_body is None:
        findings.fail(
            "error_body",
            f"the HTTP {status} body is not a JSON object with an `error` object",
            'Answer errors with a JSON body {"error": {"message": "...", "type": "...", "code": "..."}} so '
            "clients can show the reason.",
            evidence=body,
        )
    elif not isinstance(error_body.get("message"), str):
        findings.fail(
            "error_body", "the error object has no string `message`", "Put a human-readable string in error.message.",
            evidence=body,
        )  # fmt: skip
    else:
        _check_error_fields(error_body, body, profile, findings)
    media = media_type(headers.get("content-type", "")) or ""
    if error_body is not None and media not in ("application/json", ""):
        findings.warn(
            "error_body",
            f"error served as {media}, not application/json",
            "Send error bodies with `Content-Type: application/json`.",
        )
    return findings.checks(("http_status", "error_body"))


def _check_error_fields(
    error: Mapping[str, object], body: bytes, profile: SpecProfile, findings: Findings
) -> None:
    if profile.azure:
        # Azure's gateway envelope {"error": {"code": "<string>", "message": …}} is legal there.
        missing = [] if "code" in error else ["code"]
    else:
        missing = [key for key in ("type", "param", "code") if key not in error]
    if missing:
        findings.warn(
            "error_body",
            f"the error object lacks {', '.join(missing)}",
            f"{profile.label} errors carry error.message, type, param and code; SDKs expose them to callers.",
            evidence=body,
        )
