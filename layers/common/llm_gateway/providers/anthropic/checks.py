"""The Anthropic spec checks of one raw Messages response: the redirect and error answers here, the
stream in ``stream_checks``. Same findings pattern as the other specs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.anthropic.errors import anthropic_error, error_label, http_verdict
from llm_gateway.providers.anthropic.stream_checks import check_stream_response
from llm_gateway.providers.common.findings import Findings
from llm_gateway.providers.common.findings import conforms as _conforms
from llm_gateway.providers.common.http import Headers, header_map, media_type

__all__ = ["OUTCOME_CHECK_IDS", "check_response", "conforms"]

OUTCOME_CHECK_IDS = frozenset({"http_status", "mid_stream_error"})
_ERROR_CATEGORIES = {
    "http_status": CheckCategory.ENDPOINT,
    "content_type": CheckCategory.FORMAT,
    "error_body": CheckCategory.FORMAT,
}
_SHAPE_HINT = 'Return errors as {"type": "error", "error": {"type": "<error type>", "message": "<text>"}}.'
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def conforms(checks: Iterable[Check]) -> bool:
    return _conforms(checks, OUTCOME_CHECK_IDS)


def check_response(
    status: int,
    headers: Headers,
    body: bytes,
    *,
    expect_complete: bool = True,
    expect_start: bool = True,
    secrets: Iterable[str] = (),
) -> list[Check]:
    """Judge a raw Messages response; ``secrets`` are redacted from messages and evidence."""
    hidden = tuple(s for s in secrets if s)
    lowered = header_map(headers)
    if 300 <= status < 400:
        findings = Findings(hidden, {"redirect": CheckCategory.ENDPOINT})
        findings.fail(
            "redirect",
            f"HTTP {status}: the endpoint answered with a redirect, which the gateway never follows",
            "Register the final URL (the one the redirect points to), e.g. https://api.anthropic.com.",
            evidence=f"location: {lowered.get('location', '')}",
        )
        return findings.checks(("redirect",))
    if status != 200:
        return _error_response(status, lowered, body, hidden)
    return check_stream_response(
        lowered, body, hidden, expect_complete=expect_complete, expect_start=expect_start
    )


def _error_response(status: int, headers: dict[str, str], body: bytes, secrets: Sequence[str]) -> list[Check]:
    findings = Findings(secrets, _ERROR_CATEGORIES)
    error = anthropic_error(body)
    _code, category, what, hint = http_verdict(status, body)
    label = error_label(error) if error else str(status)
    shown = _dumps({"type": "error", "error": error}) if error else body
    findings.add("http_status", CheckStatus.FAIL, f"HTTP {status} before streaming ({label}): {what}", hint,
                 shown or None, category=category)  # fmt: skip
    if media_type(headers.get("content-type")) == "application/json":
        findings.note("content_type", "error body is application/json")
    else:
        findings.warn("content_type", f"error body has Content-Type {headers.get('content-type')!r}, expected application/json",
                      "Send errors as Content-Type: application/json.")  # fmt: skip
    if error is None:
        findings.fail("error_body", 'the error body is not an Anthropic error object ({"type": "error", "error": {...}})',
                      _SHAPE_HINT, body or "(empty body)")  # fmt: skip
    elif not isinstance(error.get("type"), str) or not isinstance(error.get("message"), str):
        findings.fail("error_body", "error.type or error.message is not a string", _SHAPE_HINT, body)
    else:
        findings.note("error_body", f"Anthropic error body ({error_label(error)})")
    return findings.checks(("http_status", "content_type", "error_body"))
