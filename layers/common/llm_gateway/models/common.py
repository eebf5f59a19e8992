"""Shared pydantic building blocks: camelCase JSON, the error envelope, pagination."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Public JSON is camelCase; Python code uses snake_case. Unknown fields are rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=False
    )

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


#: The error codes a client can act on, by status (README, "Errors"); the stream endpoint's upstream
#: codes (``upstream_*``) are listed in DESIGN.md §3.
ERROR_CODES_BY_STATUS: dict[int, tuple[str, ...]] = {
    400: ("validation_error", "invalid_json", "invalid_request", "credential_in_url", "endpoint_blocked",
          "unknown_parameter"),
    401: ("unauthorized", "token_malformed", "token_expired", "token_signature_invalid"),
    403: ("builtin_read_only", "session_revoked"),
    404: ("llm_not_found", "route_not_found"),
    409: ("llm_validation_pending", "llm_invalid", "idempotency_key_reused", "client_side_llm"),
    412: ("version_mismatch",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    429: ("rate_limited", "upstream_rate_limited", "target_rate_limited"),
    500: ("internal_error",),
    502: ("upstream_unauthorized", "upstream_server_error", "upstream_unreachable", "endpoint_blocked"),
    504: ("upstream_timeout",),
    508: ("loop_detected",),
}  # fmt: skip
_CODES_TEXT = "; ".join(f"{status}: {', '.join(codes)}" for status, codes in ERROR_CODES_BY_STATUS.items())


class ErrorDetail(BaseModel):
    code: str = Field(
        description=(
            "Why the request failed, in snake_case, stable for programs to branch on. By status: "
            f"{_CODES_TEXT}. `credential_in_url`: a URL carries user information or a key-like "
            "query parameter (put the key in `secret`); `endpoint_blocked`: a URL the gateway will not "
            "call (a private address, or the gateway's own origin); `invalid_request`: a chat request "
            "body the gateway cannot use; `loop_detected`: a request that carries this deployment's "
            "own hop marker (the gateway calling itself); `internal_error`: our bug."
        ),
        examples=["validation_error", "credential_in_url", "endpoint_blocked", "loop_detected"],
    )
    message: str = Field(description="What went wrong and how to fix it, for people.")
    details: Any = None


class ErrorResponse(BaseModel):
    """``{"error": {"code", "message", "details"}}`` — the only error shape the API returns."""

    error: ErrorDetail


class PageMeta(ApiModel):
    page: int
    per_page: int
    total: int
