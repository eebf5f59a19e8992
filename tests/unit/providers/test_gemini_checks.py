"""Gemini spec checks on raw responses: real fixtures, OpenAI negatives, and rule-by-rule cases."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.gemini import check_response, classify_error, conforms


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise AssertionError("repository root (pyproject.toml) not found above the test file")


TRANSCRIPTS = _repo_root() / "tests" / "fixtures" / "transcripts"
GEMINI = TRANSCRIPTS / "gemini"
SSE = {"content-type": "text/event-stream"}
JSON_CT = {"content-type": "application/json; charset=UTF-8"}


def _fixtures(provider: str) -> list[Path]:
    folder = TRANSCRIPTS / provider
    return sorted(folder.glob("*.sse")) if folder.is_dir() else []


def _headers(meta: dict[str, Any]) -> dict[str, str]:
    """Recorded headers, or the documented defaults when the fixture did not record them."""
    recorded = meta.get("response_headers") or {}
    headers = {k.lower(): ", ".join(v) if isinstance(v, list) else str(v) for k, v in recorded.items()}
    if "content-type" not in headers:
        headers["content-type"] = (
            SSE["content-type"] if meta["http_status"] == 200 else JSON_CT["content-type"]
        )
    return headers


def _by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


def _assert_report_rules(checks: list[Check]) -> None:
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)), ids
    for check in checks:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", check.id)
        if check.status == CheckStatus.FAIL:
            assert check.hint, f"{check.id} fails without a hint"
        if check.evidence is not None:
            assert len(check.evidence.encode("utf-8")) <= 512


def test_fixture_folder_exists() -> None:
    """Missing fixtures must fail the suite, not silently skip it."""
    assert GEMINI.is_dir(), f"fixtures not found at {GEMINI}"
    assert _fixtures("gemini"), f"no .sse fixtures in {GEMINI}"


@pytest.mark.parametrize("path", _fixtures("gemini"), ids=lambda p: p.stem)
def test_gemini_fixture_verdict(path: Path) -> None:
    meta = json.loads(path.with_suffix(".json").read_text())
    status = meta["http_status"]
    body = path.read_bytes()
    checks = check_response(status, _headers(meta), body, secrets=["key1234"])
    _assert_report_rules(checks)
    assert conforms(checks) is meta["expected_compatible"], [
        c for c in checks if c.status == CheckStatus.FAIL
    ]
    by_id = _by_id(checks)
    if status != 200:
        # A well-formed provider error: the shape passes, the outcome is classified and fails.
        assert by_id["error_body"].status == CheckStatus.PASS
        assert by_id["http_status"].status == CheckStatus.FAIL
        assert classify_error(status, body) is not None
    elif b'"error"' in body:
        assert by_id["mid_stream_error"].status == CheckStatus.FAIL
    elif meta["expected_compatible"]:
        assert not [c for c in checks if c.status == CheckStatus.FAIL]
    for check in checks:
        assert "key1234" not in (check.evidence or "") + check.message


def test_api_key_fixture_is_auth() -> None:
    body = (GEMINI / "firebase-googleai-error-api-key-invalid.sse").read_bytes()
    checks = _by_id(check_response(400, JSON_CT, body))
    assert checks["http_status"].category == CheckCategory.AUTH
    assert classify_error(400, body) == "upstream_unauthorized"


def test_mid_stream_fixture_reports_the_bare_error() -> None:
    body = (GEMINI / "firebase-vertexai-error-mid-stream.sse").read_bytes()
    checks = _by_id(check_response(200, SSE, body))
    assert checks["mid_stream_error"].status == CheckStatus.FAIL
    assert "CANCELLED" in checks["mid_stream_error"].message
    assert checks["sse_framing"].status == CheckStatus.PASS  # google-genai handles this shape


# --- OpenAI negatives against the Gemini profile ------------------------------------------------

OPENAI_NEGATIVES = {
    "openai-python-text-usage": "terminator",  # [DONE]
    "openai-python-tool-call-strict": "terminator",
    "openrouter-keepalive-comment-fragment": "sse_framing",  # `: OPENROUTER PROCESSING`
    "broken-comment-rewrapped-as-data": "chunk_schema",  # `data: : OPENROUTER…` is not JSON
    "broken-ollama-native-ndjson-complete": "sse_framing",  # bare JSON lines
}


@pytest.mark.parametrize(("name", "failing"), sorted(OPENAI_NEGATIVES.items()))
def test_openai_streams_fail_the_gemini_profile(name: str, failing: str) -> None:
    path = TRANSCRIPTS / "openai" / f"{name}.sse"
    assert path.is_file(), f"fixture missing: {path}"
    checks = check_response(200, SSE, path.read_bytes())
    _assert_report_rules(checks)
    assert not conforms(checks)
    assert _by_id(checks)[failing].status == CheckStatus.FAIL


# --- rule-by-rule ------------------------------------------------------------------------------


def _event(obj: Any, end: bytes = b"\r\n\r\n") -> bytes:
    return b"data: " + json.dumps(obj).encode() + end


TEXT = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
}
LAST = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP", "index": 0}
    ]
}
GOOD = _event(TEXT) + _event(LAST)


def _statuses(
    body: bytes, headers: dict[str, str] | None = None, status: int = 200, **kw: Any
) -> dict[str, CheckStatus]:
    checks = check_response(status, SSE if headers is None else headers, body, **kw)
    _assert_report_rules(checks)
    return {c.id: c.status for c in checks}


def test_good_stream_passes_everything() -> None:
    statuses = _statuses(GOOD)
    assert set(statuses.values()) == {CheckStatus.PASS}, statuses


@pytest.mark.parametrize("ending", [b"\n\n", b"\r\r", b"\r\n\r\n"])
def test_all_line_endings_accepted(ending: bytes) -> None:
    assert _statuses(_event(TEXT, ending) + _event(LAST, ending))["sse_framing"] == CheckStatus.PASS


def test_done_sentinel_fails() -> None:
    statuses = _statuses(GOOD + b"data: [DONE]\r\n\r\n")
    assert statuses["terminator"] == CheckStatus.FAIL


@pytest.mark.parametrize(
    "extra",
    [b": ping\r\n\r\n", b"event: message\r\n", b"id: 1\r\n", b"retry: 100\r\n", b"hello\r\n\r\n"],
    ids=["comment", "event", "id", "retry", "junk"],
)
def test_non_data_lines_fail(extra: bytes) -> None:
    assert _statuses(extra + GOOD)["sse_framing"] == CheckStatus.FAIL


def test_data_without_space_fails() -> None:
    body = GOOD.replace(b"data: ", b"data:", 1)
    assert _statuses(body)["sse_framing"] == CheckStatus.FAIL


def test_json_split_over_data_lines_fails() -> None:
    body = b'data: {"candidates": [{"content":\r\ndata: {"parts": [{"text": "x"}]}}]}\r\n\r\n'
    assert _statuses(body)["sse_framing"] == CheckStatus.FAIL


def test_truncated_last_event_warns() -> None:
    assert _statuses(_event(TEXT) + _event(LAST, b"\r\n"))["sse_framing"] == CheckStatus.WARN


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Type": "text/event-stream"}, CheckStatus.PASS),
        ({"content-type": "Text/Event-Stream; charset=utf-8"}, CheckStatus.PASS),
        ({"content-type": "application/json"}, CheckStatus.FAIL),
        ({"content-type": "application/x-ndjson"}, CheckStatus.FAIL),
        ({}, CheckStatus.FAIL),
    ],
)
def test_content_type(headers: dict[str, str], expected: CheckStatus) -> None:
    assert _statuses(GOOD, headers)["content_type"] == expected


def test_json_array_fails_in_sse_mode_and_passes_without_it() -> None:
    body = b"[" + json.dumps(TEXT).encode() + b"\n,\r\n" + json.dumps(LAST).encode() + b"\n]"
    assert _statuses(body)["sse_framing"] == CheckStatus.FAIL
    relaxed = _statuses(body, {"content-type": "application/json"}, alt_sse=False)
    assert CheckStatus.FAIL not in relaxed.values(), relaxed


def test_finish_reason_rules() -> None:
    # not required on intermediate chunks, unknown enums tolerated
    unknown = {"candidates": [{"content": {"parts": [{"text": "."}]}, "finishReason": "SOMETHING_NEW"}]}
    assert _statuses(_event(TEXT) + _event(unknown))["finish_reason"] == CheckStatus.PASS
    # older models: STOP on every chunk is fine
    assert _statuses(_event(LAST) + _event(LAST))["finish_reason"] == CheckStatus.PASS
    # missing on the last chunk: a warning, not a failure
    assert _statuses(_event(TEXT) + _event(TEXT))["finish_reason"] == CheckStatus.WARN


def test_prompt_blocked_passes() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
    }
    statuses = _statuses(_event(blocked))
    assert CheckStatus.FAIL not in statuses.values(), statuses


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"candidates": {"content": {}}},
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": '{"a":'}}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": 1}]},
    ],
    ids=["array", "candidates-object", "text-number", "partial-args", "call-no-name", "finish-int"],
)
def test_schema_failures(payload: Any) -> None:
    assert _statuses(_event(payload) + GOOD)["chunk_schema"] == CheckStatus.FAIL


def test_not_json_fails() -> None:
    assert _statuses(b"data: {not json}\r\n\r\n" + GOOD)["chunk_schema"] == CheckStatus.FAIL


def test_no_parts_at_all_fails() -> None:
    assert _statuses(_event({"usageMetadata": {"totalTokenCount": 1}}))["chunk_schema"] == CheckStatus.FAIL


def test_empty_body_fails() -> None:
    assert not conforms(check_response(200, SSE, b""))


def test_data_prefixed_error_is_mid_stream_error() -> None:
    body = _event(TEXT) + _event({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    checks = _by_id(check_response(200, SSE, body))
    assert checks["mid_stream_error"].status == CheckStatus.FAIL
    assert "upstream_rate_limited" in checks["mid_stream_error"].message


def test_bare_compact_error_after_events() -> None:
    body = GOOD + b'{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}\n'
    assert _statuses(body)["mid_stream_error"] == CheckStatus.FAIL


# --- errors before the stream ------------------------------------------------------------------


def _gemini_error(code: int, status: str, reason: str | None = None, message: str = "m") -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return json.dumps({"error": error}, indent=2).encode()


@pytest.mark.parametrize(
    ("status", "body", "code", "category"),
    [
        (
            400,
            _gemini_error(400, "INVALID_ARGUMENT", "API_KEY_INVALID"),
            "upstream_unauthorized",
            CheckCategory.AUTH,
        ),
        (403, _gemini_error(403, "PERMISSION_DENIED"), "upstream_unauthorized", CheckCategory.AUTH),
        (401, _gemini_error(401, "UNAUTHENTICATED"), "upstream_unauthorized", CheckCategory.AUTH),
        (
            404,
            _gemini_error(404, "NOT_FOUND", message="models/x is not found"),
            "upstream_model_not_found",
            CheckCategory.MODEL,
        ),
        (429, _gemini_error(429, "RESOURCE_EXHAUSTED"), "upstream_rate_limited", CheckCategory.REQUEST),
        (400, _gemini_error(400, "INVALID_ARGUMENT"), "upstream_bad_request", CheckCategory.REQUEST),
        (500, _gemini_error(500, "INTERNAL"), "upstream_server_error", CheckCategory.ENDPOINT),
        (503, _gemini_error(503, "UNAVAILABLE"), "upstream_server_error", CheckCategory.ENDPOINT),
        (404, b"<html>Not Found</html>", "upstream_model_not_found", CheckCategory.ENDPOINT),
    ],
)
def test_error_classification(status: int, body: bytes, code: str, category: CheckCategory) -> None:
    assert classify_error(status, body) == code
    checks = check_response(status, JSON_CT, body)
    _assert_report_rules(checks)
    assert _by_id(checks)["http_status"].category == category
    assert _by_id(checks)["http_status"].status == CheckStatus.FAIL


def test_classify_success_is_none() -> None:
    assert classify_error(200, b"") is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": {"code": "400", "message": "m", "status": "INVALID_ARGUMENT"}}',
        b'{"error": {"code": 400, "status": "INVALID_ARGUMENT"}}',
        b'{"error": {"code": 400, "message": "m"}}',
        b'{"message": "bad"}',
        b"Bad Request",
    ],
    ids=["string-code", "no-message", "no-status", "no-envelope", "text"],
)
def test_malformed_error_bodies_fail(body: bytes) -> None:
    checks = check_response(400, JSON_CT, body)
    assert _by_id(checks)["error_body"].status == CheckStatus.FAIL
    assert not conforms(checks)


def test_error_code_differs_from_status_warns() -> None:
    checks = check_response(400, JSON_CT, _gemini_error(500, "INVALID_ARGUMENT"))
    assert _by_id(checks)["error_body"].status == CheckStatus.WARN
    assert conforms(checks)


def test_redirect_fails() -> None:
    checks = check_response(302, {"location": "https://evil.example/"}, b"")
    assert not conforms(checks) and checks[0].hint


def test_evidence_redacts_secrets_and_stays_small() -> None:
    secret = "AIzaSyA1234567890abcdefghijklmnopqrstu"
    body = _gemini_error(400, "INVALID_ARGUMENT", "API_KEY_INVALID", message=f"bad key {secret} " + "é" * 600)
    checks = check_response(400, JSON_CT, body, secrets=[secret])
    _assert_report_rules(checks)
    for check in checks:
        assert secret not in (check.evidence or "") + check.message
    custom = "sk-canary-0123"
    checks = check_response(200, SSE, GOOD + f"data: {custom}\r\n\r\n".encode(), secrets=[custom])
    assert all(custom not in (c.evidence or "") for c in checks)
