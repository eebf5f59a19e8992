"""Typed errors: each knows its public code and HTTP status; mapped to responses in one place."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error a client may see. ``message`` must never hold a secret."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(GatewayError):
    status, code = 400, "validation_error"


class Unauthorized(GatewayError):
    status, code = 401, "unauthorized"


class Forbidden(GatewayError):
    status, code = 403, "forbidden"


class NotFound(GatewayError):
    status, code = 404, "not_found"


class Conflict(GatewayError):
    status, code = 409, "conflict"


class PreconditionFailed(GatewayError):
    status, code = 412, "version_mismatch"


class PayloadTooLarge(GatewayError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(GatewayError):
    status, code = 429, "rate_limited"


class EndpointBlocked(BadRequest):
    """An outbound URL points somewhere the gateway refuses to connect (SSRF guard)."""

    code = "endpoint_blocked"


class CredentialsUnavailable(GatewayError):
    """Stored credentials could not be decrypted for this account and LLM: fail closed."""

    status, code = 500, "credentials_unavailable"
