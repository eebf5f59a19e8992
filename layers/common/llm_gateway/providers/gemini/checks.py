"""The Gemini spec checks of one raw ``streamGenerateContent`` response (WIRE_FORMATS §0 and §3):
the redirect and error answers here, the stream itself in ``stream_checks``. Same findings pattern
as the OpenAI checks: one ``Findings`` collector, one ``Check`` per id."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.common.findings import Findings
from llm_gateway.providers.common.findings import conforms as _conforms
from llm_gateway.providers.common.http import Headers, header_map, media_type
from llm_gateway.providers.gemini.errors import error_label, gemini_error_object, http_verdict
from llm_gateway.providers.gemini.stream_checks import check_stream_response

__all__ = ["OUTCOME_CHECK_IDS", "check_response", "conforms"]

#: Checks whose failure reports what the upstream *said* (a well-formed error), not a spec
#: violation. A response whose only failures are these is still spec-conformant.
OUTCOME_CHECK_IDS = frozenset({"http_status", "mid_stream_error"})

_ERROR_CATEGORIES = {
    "http_status": CheckCategory.ENDPOINT,
    "content_type": CheckCategory.FORMAT,
    "error_body": CheckCategory.FORMAT,
}
_ERROR_SHAPE_HINT = (
    'Return errors as {"error": {"code": <HTTP status as an integer>, "message": "<text>", '
    '"status": "<google.rpc code, e.g. INVALID_ARGUMENT>"}}.'
)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def conforms(checks: Iterable[Check]) -> bool:
    """True when every failed check only reports the upstream's own (well-formed) error.

    ``compatible`` in a report is "no check failed"; fixture verdicts (is this what a Gemini
    server sends?) are this weaker notion: a correct 400 for a bad key conforms to the spec.
    """
    return _conforms(checks, OUTCOME_CHECK_IDS)


def check_response(
    status: int,
    headers: Headers,
    body: bytes,
    *,
    alt_sse: bool = True,
    secrets: Iterable[str] = (),
) -> list[Check]:
    """Judge a raw ``streamGenerateContent`` response against WIRE_FORMATS §0 and §3.

    ``alt_sse`` says which mode was asked for (the JSON-array mode is only right without it).
    ``secrets`` (the API key) are redacted from messages and evidence.
    """
    hidden = tuple(s for s in secrets if s)
    lowered = header_map(headers)
    if 300 <= status < 400:
        findings = Findings(hidden, {"redirect": CheckCategory.ENDPOINT})
        findings.fail(
            "redirect",
            f"HTTP {status}: the endpoint answered with a redirect, which the gateway never follows",
            "Register the final URL (the one the redirect points to), e.g. "
            "https://generativelanguage.googleapis.com.",
            evidence=f"location: {lowered.get('location', '')}",
        )
        return findings.checks(("redirect",))
    if not 200 <= status < 300:
        return _check_error_response(status, lowered, body, hidden)
    return check_stream_response(status, lowered, body, alt_sse, hidden)


def _check_error_response(
    status: int, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> list[Check]:
    findings = Findings(secrets, _ERROR_CATEGORIES)
    error = gemini_error_object(body)
    _code, category, what, hint = http_verdict(status, body)
    label = error_label(error) if error else str(status)
    # A compact re-serialisation shows more of a pretty-printed Gemini error within 512 bytes.
    shown = _dumps({"error": error}) if error else body
    findings.add(
        "http_status", CheckStatus.FAIL, f"HTTP {status} before streaming ({label}): {what}", hint,
        shown or None, category=category,
    )  # fmt: skip
    if media_type(headers.get("content-type")) == "application/json":
        findings.note("content_type", "error body is application/json")
    else:
        findings.warn(
            "content_type",
            f"error body has Content-Type {headers.get('content-type')!r}, expected application/json",
            "Send errors as Content-Type: application/json; charset=UTF-8.",
        )
    _check_error_body(status, body, error, findings)
    return findings.checks(("http_status", "content_type", "error_body"))


def _check_error_body(status: int, body: bytes, error: Mapping[str, Any] | None, findings: Findings) -> None:
    if error is None:
        findings.fail(
            "error_body",
            'the error body is not a Gemini error object ({"error": {...}})',
            _ERROR_SHAPE_HINT,
            body if body else "(empty body)",
        )
        return
    problems = []
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        problems.append("error.code is not an integer")
    if not isinstance(error.get("message"), str):
        problems.append("error.message is not a string")
    if not isinstance(error.get("status"), str):
        problems.append("error.status is not a string")
    if problems:
        findings.fail("error_body", "; ".join(problems), _ERROR_SHAPE_HINT, body)
    elif code != status:
        findings.warn(
            "error_body",
            f"error.code {code} differs from the HTTP status {status}",
            "Make error.code equal the HTTP status.",
        )
    else:
        findings.note("error_body", f"Gemini error body ({error_label(error)})")
