"""Anthropic error answers: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

The statuses every spec shares come from ``common``; the rest is read from ``error.type``
(Anthropic's API errors page: invalid_request_error 400, authentication_error 401,
permission_error 403, not_found_error 404, request_too_large 413, rate_limit_error 429,
api_error 500, overloaded_error 529). The same vocabulary arrives in a stream's ``error`` event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.models.report import CheckCategory
from llm_gateway.providers.common.http import (
    Headers,
    UpstreamError,
    code_for_status,
    error_object,
    header_map,
    retry_after,
)

__all__ = [
    "anthropic_error",
    "classify_stream_error",
    "classify_upstream_error",
    "error_label",
    "http_verdict",
]

#: Anthropic's overload status: no capacity for anyone right now, so another try (or URL) may work.
OVERLOADED_STATUS = 529
CODE_BY_TYPE: dict[str, ErrorCode] = {
    "invalid_request_error": ErrorCode.UPSTREAM_BAD_REQUEST,
    "request_too_large": ErrorCode.UPSTREAM_BAD_REQUEST,
    "authentication_error": ErrorCode.UPSTREAM_UNAUTHORIZED,
    "permission_error": ErrorCode.UPSTREAM_UNAUTHORIZED,
    "billing_error": ErrorCode.UPSTREAM_UNAUTHORIZED,
    "not_found_error": ErrorCode.UPSTREAM_MODEL_NOT_FOUND,
    "rate_limit_error": ErrorCode.UPSTREAM_RATE_LIMITED,
    "api_error": ErrorCode.UPSTREAM_SERVER_ERROR,
    "overloaded_error": ErrorCode.UPSTREAM_SERVER_ERROR,
    "timeout_error": ErrorCode.UPSTREAM_TIMEOUT,
}
_SAFE_TYPE = re.compile(r"^[a-z][a-z_]{0,40}$")
_VERDICTS: dict[ErrorCode, tuple[CheckCategory, str, str]] = {
    ErrorCode.UPSTREAM_UNAUTHORIZED: (
        CheckCategory.AUTH,
        "the API key was rejected",
        "Check the API key (Claude Console → API keys) and that its workspace may use this model; "
        "update the LLM's secret. The gateway sends it in x-api-key.",
    ),
    ErrorCode.UPSTREAM_MODEL_NOT_FOUND: (
        CheckCategory.MODEL,
        "the model was not found",
        "Check modelName (e.g. claude-sonnet-4-5) against the models your key can use "
        "(GET https://api.anthropic.com/v1/models).",
    ),
    ErrorCode.UPSTREAM_RATE_LIMITED: (
        CheckCategory.REQUEST,
        "the request was rate limited",
        "Raise the organisation's rate limits or spend tier, or retry later.",
    ),
    ErrorCode.UPSTREAM_TIMEOUT: (
        CheckCategory.NETWORK,
        "the upstream timed out",
        "Retry; if it persists, check the endpoint's health or use a faster model.",
    ),
    ErrorCode.UPSTREAM_SERVER_ERROR: (
        CheckCategory.ENDPOINT,
        "the upstream failed or is overloaded",
        "Retry later (an overloaded_error clears on its own); if it persists, check status.claude.com "
        "or the compatible server's logs.",
    ),
    ErrorCode.UPSTREAM_BAD_REQUEST: (
        CheckCategory.REQUEST,
        "the upstream rejected a well-formed Messages request",
        "Make sure the URL is a Messages API endpoint (POST /v1/messages with stream=true) and that the "
        "model takes the parameters sent (max_tokens, temperature, thinking).",
    ),
    ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED: (
        CheckCategory.REQUEST,
        "the prompt is longer than the model's context window",
        "Shorten the conversation (or the system prompt), or add a fallback LLM with a larger context.",
    ),
    ErrorCode.UPSTREAM_PROTOCOL_ERROR: (
        CheckCategory.ENDPOINT,
        "the endpoint answered with a redirect, which the gateway never follows",
        "Register the final URL (the one the redirect points to), e.g. https://api.anthropic.com.",
    ),
}
_NOT_ANTHROPIC = (
    CheckCategory.ENDPOINT,
    "the URL does not serve the Anthropic Messages API",
    "Use the API base https://api.anthropic.com or the full Messages URL …/v1/messages.",
)


def anthropic_error(body: Any) -> dict[str, Any] | None:
    """The ``error`` object of an error body (bytes, text or parsed), if the body is one."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    return error_object(body)


def _type_code(error: Mapping[str, Any] | None) -> ErrorCode | None:
    kind = error.get("type") if error else None
    return CODE_BY_TYPE.get(kind) if isinstance(kind, str) else None


def _too_long(error: Mapping[str, Any] | None) -> bool:
    """Anthropic says a prompt over the context as an ``invalid_request_error`` whose message starts
    "prompt is too long: N tokens > M maximum" (its only signal; read, never relayed)."""
    message = error.get("message") if error and error.get("type") == "invalid_request_error" else None
    return isinstance(message, str) and message.lower().startswith("prompt is too long")


def classify_error(status: int, body: Any = None) -> ErrorCode:
    """The gateway code of a non-2xx answer: shared statuses first, then ``error.type``."""
    common = code_for_status(status)
    if common is not None:
        return common
    error = anthropic_error(body)
    if status == 400 and _too_long(error):
        return ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED
    typed = _type_code(error)
    if typed is not None:
        return typed
    if status == 404 and error is not None:
        return ErrorCode.UPSTREAM_MODEL_NOT_FOUND
    return ErrorCode.UPSTREAM_BAD_REQUEST


def http_verdict(status: int, body: bytes) -> tuple[ErrorCode, CheckCategory, str, str]:
    """Code, category, what happened and a hint (a bare 404/405 page: not the Messages API)."""
    code = classify_error(status, body)
    category, what, hint = _VERDICTS[code]
    if status in (404, 405) and anthropic_error(body) is None:
        category, what, hint = _NOT_ANTHROPIC
    return code, category, what, hint


def classify_upstream_error(
    status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
) -> UpstreamError:
    """``Provider.classify_error``: the verdict plus the upstream's ``error.type`` and Retry-After."""
    code, category, what, hint = http_verdict(status, body)
    error = anthropic_error(body)
    kind = error.get("type") if error else None
    label = error_label(error) if error else str(status)
    return UpstreamError(
        code,
        category,
        status,
        f"{status} {label}: {what}" if error else f"{label}: {what}",
        kind if isinstance(kind, str) and _SAFE_TYPE.match(kind) else None,
        retry_after(header_map(headers)),
        hint,
    )


def classify_stream_error(error: Mapping[str, Any]) -> ErrorCode:
    """The code of a stream's ``error`` event (the status was already 200); unknown types are the
    upstream's failure."""
    return _type_code(error) or ErrorCode.UPSTREAM_SERVER_ERROR


def error_label(error: Mapping[str, Any]) -> str:
    """``overloaded_error``: the type only, never the upstream's free text (it may echo input)."""
    kind = error.get("type")
    return kind if isinstance(kind, str) and _SAFE_TYPE.match(kind) else "unknown error"
