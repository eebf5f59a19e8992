"""Typed errors: each knows its public code and HTTP status; mapped to responses in one place."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Why a call to a customer's LLM failed: the stream path's error codes (DESIGN.md §3), a report's
    ``errorCode`` and the stream metrics' ``code`` dimension. Members equal their string values."""

    UPSTREAM_UNAUTHORIZED = "upstream_unauthorized"
    UPSTREAM_MODEL_NOT_FOUND = "upstream_model_not_found"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_BAD_REQUEST = "upstream_bad_request"
    #: The upstream refused the prompt as longer than the model's context (a fallback LLM may fit it).
    UPSTREAM_CONTEXT_LENGTH_EXCEEDED = "upstream_context_length_exceeded"
    #: The provider's content filter refused the prompt (or cut the answer); never retried.
    UPSTREAM_CONTENT_FILTERED = "upstream_content_filtered"
    UPSTREAM_SERVER_ERROR = "upstream_server_error"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_UNREACHABLE = "upstream_unreachable"
    UPSTREAM_PROTOCOL_ERROR = "upstream_protocol_error"
    ENDPOINT_BLOCKED = "endpoint_blocked"
    LOOP_DETECTED = "loop_detected"
    #: The gateway's own time limit cut the answer (the stream outcome, never an upstream's fault).
    GATEWAY_DEADLINE = "gateway_deadline"
    #: The client went away mid-stream (a stream outcome for metrics, never sent to anyone).
    CLIENT_DISCONNECTED = "client_disconnected"


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


class InternalError(GatewayError):
    """Our own bug, as a client sees it: no detail, and the request id to quote."""

    def __init__(self) -> None:
        super().__init__("Something went wrong on our side; quote the x-request-id when reporting it.")


class BadRequest(GatewayError):
    status, code = 400, "validation_error"


class InvalidRequest(BadRequest):
    """A stream request body the gateway cannot use (not JSON, wrong types, unencodable text)."""

    code = "invalid_request"


class CredentialInUrl(BadRequest):
    """A URL carries a credential (user information or a key-like query parameter)."""

    code = "credential_in_url"


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


class TargetRateLimited(TooManyRequests):
    """The host a request would reach has had its share of the gateway's requests this minute
    (shared by every tenant): the gateway is nobody's amplifier."""

    code = "target_rate_limited"

    def __init__(self, host: str, retry_after_s: float, limit: int) -> None:
        super().__init__(
            f"The gateway has sent {host} its {limit} requests for this minute (tests, validations and "
            f"webhooks of every account share them); retry in {max(1, round(retry_after_s))} s.",
            details={"host": host, "retryAfterSeconds": max(1, round(retry_after_s))},
        )
        self.retry_after_s = retry_after_s


class SigningThrottled(TooManyRequests):
    """The token signing key's KMS quota is spent for the moment (asymmetric Sign: shared per account)."""

    code = "token_mint_throttled"

    def __init__(self) -> None:
        super().__init__("Too many session tokens are being minted right now; retry in a second.")


class EndpointBlocked(BadRequest):
    """An outbound URL points somewhere the gateway refuses to connect (SSRF guard)."""

    code = ErrorCode.ENDPOINT_BLOCKED


class EndpointUnresolvable(EndpointBlocked):
    """The endpoint's host name has no address (yet): a DNS problem, not a forbidden address."""

    def __init__(self, message: str = "The endpoint host could not be resolved.") -> None:
        super().__init__(message, details={"reason": "unresolvable"})


class LoopDetected(GatewayError):
    """The request carries this deployment's own hop marker: the gateway is calling itself."""

    status, code = 508, ErrorCode.LOOP_DETECTED

    def __init__(self) -> None:
        super().__init__(
            "The request came back to this gateway: an LLM endpoint points at the gateway itself. "
            "Register the LLM provider's own URL instead."
        )


class CredentialsUnavailable(GatewayError):
    """Stored credentials could not be decrypted for this account and LLM: fail closed."""

    status, code = 500, "credentials_unavailable"


class TransportKind(StrEnum):
    """How an outbound HTTP exchange failed below HTTP."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    RESET = "reset"  # the connection broke after it was established
    PROTOCOL = "protocol"  # the peer did not speak valid HTTP
    BLOCKED = "blocked"  # the address guard refused the connection


class TransportError(Exception):
    """An outbound HTTP exchange failed below HTTP, as the HTTP adapters report it (never a client's error).

    ``detail`` names the underlying error (type and text, no request data) for evidence;
    ``connecting`` says it happened before a connection existed (a connect timeout); ``reason``
    is a short qualifier for messages ("refused", or the address guard's reason).
    """

    def __init__(
        self, kind: TransportKind, detail: str = "", *, connecting: bool = False, reason: str | None = None
    ) -> None:
        super().__init__(f"{kind}: {detail}" if detail else str(kind))
        self.kind = kind
        self.detail = detail
        self.connecting = connecting
        self.reason = reason

    @classmethod
    def refused_by_guard(cls, exc: EndpointBlocked) -> TransportError:
        """The address guard's refusal as a transport failure: ``dns`` when the host has no address."""
        if isinstance(exc, EndpointUnresolvable):
            return cls(TransportKind.DNS, exc.message)
        reason = exc.details.get("reason") if isinstance(exc.details, dict) else None
        return cls(TransportKind.BLOCKED, exc.message, reason=str(reason) if reason else None)
