"""Gemini error answers: the gateway code (Gemini reports a bad key as 400 ``INVALID_ARGUMENT``
with reason ``API_KEY_INVALID``, so the body is read, not only the status), the report's category
and hint, and a short safe label for messages."""

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
    "classify_error",
    "classify_stream_error",
    "classify_upstream_error",
    "error_label",
    "gemini_error_object",
    "http_verdict",
]

_GRPC_STATUS = re.compile(r"^[A-Z][A-Z_]{0,40}$")
_AUTH_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        "CREDENTIALS_MISSING",
    }
)
_CODE_BY_RPC_STATUS = {
    "UNAUTHENTICATED": ErrorCode.UPSTREAM_UNAUTHORIZED,
    "PERMISSION_DENIED": ErrorCode.UPSTREAM_UNAUTHORIZED,
    "NOT_FOUND": ErrorCode.UPSTREAM_MODEL_NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorCode.UPSTREAM_RATE_LIMITED,
    "DEADLINE_EXCEEDED": ErrorCode.UPSTREAM_TIMEOUT,
    "INVALID_ARGUMENT": ErrorCode.UPSTREAM_BAD_REQUEST,
    "FAILED_PRECONDITION": ErrorCode.UPSTREAM_BAD_REQUEST,
    "OUT_OF_RANGE": ErrorCode.UPSTREAM_BAD_REQUEST,
    "ALREADY_EXISTS": ErrorCode.UPSTREAM_BAD_REQUEST,
}

#: (category, what happened, hint) per code, for the report's ``http_status`` check.
_VERDICTS: dict[ErrorCode, tuple[CheckCategory, str, str]] = {
    ErrorCode.UPSTREAM_UNAUTHORIZED: (
        CheckCategory.AUTH,
        "the API key was rejected",
        "Check the API key: create one in Google AI Studio (or enable the Generative Language API "
        "for the key's project) and update the LLM's secret.",
    ),
    ErrorCode.UPSTREAM_MODEL_NOT_FOUND: (
        CheckCategory.MODEL,
        "the model was not found",
        "Check modelName (e.g. gemini-2.5-flash) against the models your key can use "
        "(GET https://generativelanguage.googleapis.com/v1beta/models).",
    ),
    ErrorCode.UPSTREAM_RATE_LIMITED: (
        CheckCategory.REQUEST,
        "the request was rate limited or the quota is exhausted",
        "Raise the quota or billing tier of the key's project, or retry later.",
    ),
    ErrorCode.UPSTREAM_TIMEOUT: (
        CheckCategory.NETWORK,
        "the upstream timed out",
        "Retry; if it persists, check the endpoint's health or use a faster model.",
    ),
    ErrorCode.UPSTREAM_SERVER_ERROR: (
        CheckCategory.ENDPOINT,
        "the upstream failed with a server error",
        "Retry later; if it persists, check the endpoint's status page or logs.",
    ),
    ErrorCode.UPSTREAM_BAD_REQUEST: (
        CheckCategory.REQUEST,
        "the upstream rejected a well-formed streamGenerateContent request",
        "Make sure the URL is a Gemini API endpoint that accepts streamGenerateContent with "
        "contents/systemInstruction/generationConfig, and that the model supports them.",
    ),
    ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED: (
        CheckCategory.REQUEST,
        "the prompt is longer than the model's input token limit",
        "Shorten the conversation the client sends, or add a fallback LLM with a longer context.",
    ),
    ErrorCode.UPSTREAM_PROTOCOL_ERROR: (
        CheckCategory.ENDPOINT,
        "the endpoint answered with a redirect, which the gateway never follows",
        "Register the final URL (the one the redirect points to), e.g. "
        "https://generativelanguage.googleapis.com.",
    ),
}
_NOT_GEMINI = (
    CheckCategory.ENDPOINT,
    "the URL does not serve the Gemini API",
    "Use the API base https://generativelanguage.googleapis.com or the full URL "
    ".../v1beta/models/{model}:streamGenerateContent.",
)


def gemini_error_object(body: Any) -> dict[str, Any] | None:
    """The ``error`` object of a Gemini error body (bytes, text or parsed), if the body is one."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    return error_object(body, unwrap_list=True)


def _error_reasons(error: Mapping[str, Any]) -> set[str]:
    details = error.get("details")
    if not isinstance(details, list):
        return set()
    return {str(d["reason"]) for d in details if isinstance(d, Mapping) and isinstance(d.get("reason"), str)}


def _is_key_rejection(error: Mapping[str, Any]) -> bool:
    message = error.get("message")
    return bool(_error_reasons(error) & _AUTH_REASONS) or (
        isinstance(message, str) and "api key" in message.lower() and "valid" in message.lower()
    )


def _is_token_limit(error: Mapping[str, Any]) -> bool:
    """Gemini's 400 for a prompt over the model's limit: "The input token count (N) exceeds the
    maximum number of tokens allowed (M)." (the message is read, never relayed)."""
    message = error.get("message")
    text = message.lower() if isinstance(message, str) else ""
    return "token" in text and ("exceeds the maximum" in text or "too long" in text)


def classify_error(status: int, body: bytes | str | Mapping[str, Any] | None = None) -> ErrorCode | None:
    """The gateway's upstream error code for a response that failed before streaming (``None`` on 2xx)."""
    if 200 <= status < 300:
        return None
    error = gemini_error_object(body) or {}
    if _is_key_rejection(error):
        return ErrorCode.UPSTREAM_UNAUTHORIZED
    common = code_for_status(status)
    if common is not None:
        return common
    if status == 404:
        return ErrorCode.UPSTREAM_MODEL_NOT_FOUND
    if status in (400, 413) and _is_token_limit(error):
        return ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED
    rpc_status = error.get("status")
    if isinstance(rpc_status, str) and rpc_status in _CODE_BY_RPC_STATUS:
        return _CODE_BY_RPC_STATUS[rpc_status]
    return ErrorCode.UPSTREAM_BAD_REQUEST


def http_verdict(status: int, body: bytes) -> tuple[ErrorCode, CheckCategory, str, str]:
    """Code, category, what happened and a hint for an error answer (a bare 404/405 page means
    the URL is not the Gemini API at all)."""
    code = classify_error(status, body) or ErrorCode.UPSTREAM_BAD_REQUEST
    category, what, hint = _VERDICTS[code]
    if status in (404, 405) and gemini_error_object(body) is None:
        category, what, hint = _NOT_GEMINI
    return code, category, what, hint


def classify_upstream_error(
    status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
) -> UpstreamError:
    """``Provider.classify_error``: the verdict plus the upstream's label and Retry-After."""
    code, category, what, hint = http_verdict(status, body)
    error = gemini_error_object(body)
    rpc_status = error.get("status") if error else None
    return UpstreamError(
        code,
        category,
        status,
        f"{error_label(error) if error else status}: {what}",
        rpc_status if isinstance(rpc_status, str) else None,
        retry_after(header_map(headers)),
        hint,
    )


def classify_stream_error(error: Mapping[str, Any]) -> ErrorCode:
    """Code for an error that arrived after the stream started (status already 200)."""
    if _is_key_rejection(error):
        return ErrorCode.UPSTREAM_UNAUTHORIZED
    rpc_status = error.get("status")
    if isinstance(rpc_status, str) and rpc_status in _CODE_BY_RPC_STATUS:
        return _CODE_BY_RPC_STATUS[rpc_status]
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 500 and code != 499:
        return classify_error(code, {"error": error}) or ErrorCode.UPSTREAM_SERVER_ERROR
    return ErrorCode.UPSTREAM_SERVER_ERROR


def error_label(error: Mapping[str, Any]) -> str:
    """A short, safe label (``400 INVALID_ARGUMENT``) for messages: never upstream free text."""
    bits = []
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        bits.append(str(code))
    status = error.get("status")
    if isinstance(status, str) and _GRPC_STATUS.match(status):
        bits.append(status)
    reasons = sorted(r for r in _error_reasons(error) if _GRPC_STATUS.match(r))
    if reasons:
        bits.append(f"({', '.join(reasons[:2])})")
    return " ".join(bits) or "unknown error"
