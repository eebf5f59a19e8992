"""OpenAI (and Azure) error answers: the gateway code, the report's category and a hint.

The status codes that mean the same for every spec come from ``common``; this module reads what
OpenAI puts in its ``{"error": {"message", "type", "param", "code"}}`` body for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.models.report import CheckCategory
from llm_gateway.providers.common.findings import trim_evidence
from llm_gateway.providers.common.http import (
    Headers,
    UpstreamError,
    code_for_status,
    error_object,
    header_map,
    retry_after,
)

_MODEL_NOT_FOUND_CODES = frozenset({"model_not_found", "deploymentnotfound"})
#: OpenAI's ``code`` for a prompt over the model's context (vLLM and others say it in the message).
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_PHRASES = ("maximum context length", "context length", "context window", "too many tokens")
#: Azure's content filter: ``code: content_filter``, inner ``ResponsibleAIPolicyViolation``.
_FILTER_CODES = frozenset({"content_filter", "responsibleaipolicyviolation", "content_policy_violation"})
_CONTEXT_HINT = (
    "The conversation is longer than the model's context window. Shorten the history the client "
    "sends, lower max_tokens, or add a fallback LLM with a longer context."
)
_BY_STATUS: dict[ErrorCode, tuple[CheckCategory, str]] = {
    ErrorCode.UPSTREAM_UNAUTHORIZED: (
        CheckCategory.AUTH,
        "The endpoint rejected the API key. Check the secret (and, on Azure, that the key belongs "
        "to this resource and region).",
    ),
    ErrorCode.UPSTREAM_TIMEOUT: (
        CheckCategory.NETWORK,
        "The endpoint (or a gateway in front of it) answered with a timeout status before streaming: "
        "it could not start the answer in time. Check its load and the timeouts between its proxy and model.",
    ),
    ErrorCode.UPSTREAM_SERVER_ERROR: (
        CheckCategory.ENDPOINT,
        "The endpoint failed with a server error. Check its health and logs, then validate again.",
    ),
    ErrorCode.UPSTREAM_PROTOCOL_ERROR: (
        CheckCategory.ENDPOINT,
        "The endpoint redirects; redirects are never followed. Register the final URL.",
    ),
}
_MODEL_HINT = (
    "The model (or Azure deployment) name is unknown to this endpoint. Check modelName / "
    "deploymentName and that the key has access to it."
)
_PATH_HINT = (
    "Nothing answers at this path. Use the full chat-completions URL (…/v1/chat/completions) "
    "or the base the provider documents."
)
_REQUEST_HINT = (
    "The endpoint rejected a well-formed chat-completions request. Check that it supports "
    "stream=true, the model name and parameters such as max_tokens and temperature."
)


def classify_upstream_error(
    status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
) -> UpstreamError:
    """Map a non-2xx answer (or an in-band error object) to a gateway code and a check category."""
    error = error_object(body) or {}
    raw_code = error.get("code")
    upstream_code = str(raw_code) if raw_code is not None else None
    inner = error.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    message_text = error.get("message") if isinstance(error.get("message"), str) else ""
    message = trim_evidence(str(message_text), secrets, 300) if message_text else f"HTTP {status}"
    codes = {c.lower() for c in (upstream_code, inner_code, error.get("type")) if isinstance(c, str)}
    code, category, hint = _classify(status, codes, str(message_text).lower())
    return UpstreamError(
        code, category, status, message, upstream_code, retry_after(header_map(headers)), hint
    )


def _classify(status: int, codes: set[str], text: str) -> tuple[ErrorCode, CheckCategory, str]:
    common = code_for_status(status)
    if common is ErrorCode.UPSTREAM_RATE_LIMITED:
        if "insufficient_quota" in codes:
            hint = "The account behind this key has no quota left; add credit or raise the limit."
            return common, CheckCategory.AUTH, hint
        hint = "The endpoint is rate limiting this key. Retry later or raise the key's rate limit."
        return common, CheckCategory.REQUEST, hint
    if common is not None:
        return (common, *_BY_STATUS[common])
    if status == 404:
        named = ("model" in text or "deployment" in text) and ("not exist" in text or "not found" in text)
        if codes & _MODEL_NOT_FOUND_CODES or named:
            return ErrorCode.UPSTREAM_MODEL_NOT_FOUND, CheckCategory.MODEL, _MODEL_HINT
        return ErrorCode.UPSTREAM_BAD_REQUEST, CheckCategory.ENDPOINT, _PATH_HINT
    if status == 405:
        hint = "The URL does not accept POST. Point it at the chat-completions route, not a base page."
        return ErrorCode.UPSTREAM_BAD_REQUEST, CheckCategory.ENDPOINT, hint
    if codes & _FILTER_CODES:
        hint = "The provider's content filter blocked the request; review the filter policy."
        return ErrorCode.UPSTREAM_CONTENT_FILTERED, CheckCategory.REQUEST, hint
    if status in (400, 413, 422) and (codes & _CONTEXT_CODES or any(p in text for p in _CONTEXT_PHRASES)):
        return ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED, CheckCategory.REQUEST, _CONTEXT_HINT
    return ErrorCode.UPSTREAM_BAD_REQUEST, CheckCategory.REQUEST, _REQUEST_HINT


def inband_code(error: Mapping[str, Any]) -> ErrorCode:
    """The gateway code for an error object sent inside a started stream."""
    code = str(error.get("code") or error.get("type") or "").lower()
    if "rate" in code or code == "429":
        return ErrorCode.UPSTREAM_RATE_LIMITED
    if code in _FILTER_CODES:
        return ErrorCode.UPSTREAM_CONTENT_FILTERED
    if code in _CONTEXT_CODES:
        return ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED
    if "context" in code or "invalid" in code or code == "400":
        return ErrorCode.UPSTREAM_BAD_REQUEST
    return ErrorCode.UPSTREAM_SERVER_ERROR
