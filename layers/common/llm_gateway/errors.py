"""Typed errors: each knows its public code and HTTP status; mapped to responses in one place."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class PublicCode:
    """One public error code: the HTTP status it answers and what it means, for people."""

    status: int
    meaning: str
    #: The other status the stream endpoint answers this code with (a URL refused at stream time).
    stream_status: int | None = None

    @property
    def statuses(self) -> tuple[int, ...]:
        return (self.status,) if self.stream_status is None else (self.status, self.stream_status)


#: Every error code a client can see: the one vocabulary of every function, the stream, the OpenAPI
#: document and the README's error table (a test keeps each of them equal to this).
ERROR_TABLE: dict[str, PublicCode] = {
    "validation_error": PublicCode(400, "The body or a parameter is invalid; `details` names each field."),
    "invalid_json": PublicCode(400, "The body is not valid JSON."),
    "invalid_body": PublicCode(400, "The body holds NUL characters or nests deeper than 32 levels."),
    "invalid_encoding": PublicCode(400, "The body is not valid UTF-8 (or not valid base64)."),
    "invalid_path": PublicCode(400, "The path holds control characters."),
    "invalid_request": PublicCode(400, "A chat request the gateway cannot use; `details` names the field."),
    "invalid_if_match": PublicCode(400, "`If-Match` is not the LLM's version number."),
    "invalid_idempotency_key": PublicCode(400, "`Idempotency-Key` is not 1-255 printable ASCII characters."),
    "unknown_parameter": PublicCode(400, "A query parameter the route does not take (a typo)."),
    "invalid_cursor": PublicCode(400, "The `cursor` is not one a request log page returned."),
    "invalid_time_range": PublicCode(400, "The request log's `since`/`until` are not a valid time range."),
    "credential_in_url": PublicCode(
        400, "A URL carries user information or a key-like query parameter: put the key in `secret`."
    ),
    "endpoint_blocked": PublicCode(
        400,
        "A URL the gateway will not call: a private address, or the gateway's own origin.",
        stream_status=502,
    ),
    "upstream_bad_request": PublicCode(400, "The LLM endpoint rejected the request as invalid."),
    "upstream_context_length_exceeded": PublicCode(
        400, "The LLM refused the conversation as too long for its context (no fallback LLM fit it)."
    ),
    "upstream_content_filtered": PublicCode(400, "The LLM's content filter refused the request."),
    "invalid_fallback": PublicCode(
        400, "A `fallbackLlmIds` entry is not one of your valid LLMs or a built-in, or makes a cycle."
    ),
    "bad_request": PublicCode(400, "API Gateway refused the request before any function ran."),
    "unauthorized": PublicCode(401, "No or a wrong account API key."),
    "token_missing": PublicCode(401, "No session token: send `Authorization: Bearer <sessionToken>`."),
    "token_invalid": PublicCode(401, "The session token is not valid."),
    "token_malformed": PublicCode(401, "The session token is not a well-formed JWT."),
    "token_header_rejected": PublicCode(
        401, "The session token's header names an algorithm or type the gateway refuses."
    ),
    "token_unknown_key": PublicCode(401, "The session token names a signing key the gateway does not know."),
    "token_signature_invalid": PublicCode(401, "The session token's signature does not verify."),
    "token_claims_invalid": PublicCode(
        401, "The session token's claims are missing or wrong (issuer, audience, types)."
    ),
    "token_expired": PublicCode(401, "The session token has expired: mint a new one."),
    "token_not_yet_valid": PublicCode(401, "The session token is not valid yet (clock skew)."),
    "token_lifetime_exceeded": PublicCode(401, "The session token claims a lifetime over one hour."),
    "forbidden": PublicCode(403, "Not allowed."),
    "builtin_read_only": PublicCode(
        403, "Built-in LLMs are the platform's: read-only, validated by the platform."
    ),
    "session_revoked": PublicCode(403, "The session was revoked."),
    "session_inactive": PublicCode(403, "The session is not active (ended, or its LLM is gone)."),
    "account_not_enrolled": PublicCode(
        403, "The account has no usage plan key (create accounts with `llm-gateway accounts create`)."
    ),
    "not_found": PublicCode(404, "No such thing."),
    "route_not_found": PublicCode(404, "No such route."),
    "llm_not_found": PublicCode(404, "No such LLM (also for another account's ids)."),
    "api_key_not_found": PublicCode(404, "No such API key."),
    "webhook_not_found": PublicCode(404, "No such webhook."),
    "session_not_found": PublicCode(404, "No such session."),
    "validation_not_found": PublicCode(404, "This LLM has not been validated yet."),
    "health_not_tracked": PublicCode(404, "Built-in LLMs have no health record of yours."),
    "method_not_allowed": PublicCode(405, "A known path, another method (see the `Allow` header)."),
    "conflict": PublicCode(409, "The request conflicts with the current state."),
    "llm_validation_pending": PublicCode(409, "The LLM is still being validated."),
    "llm_invalid": PublicCode(409, "The LLM failed validation (the report says why)."),
    "llm_limit_reached": PublicCode(409, "The account has its 500 LLMs: delete one first."),
    "api_key_limit_reached": PublicCode(409, "The account has its 10 API keys: revoke one first."),
    "last_api_key": PublicCode(409, "The account's last API key cannot be revoked."),
    "too_many_webhooks": PublicCode(409, "The account has its 10 webhooks: delete one first."),
    "idempotency_key_reused": PublicCode(
        409, "The `Idempotency-Key` was used with another body, or for an LLM deleted since."
    ),
    "idempotency_in_progress": PublicCode(
        409, "A request with this `Idempotency-Key` is still being processed."
    ),
    "client_side_llm": PublicCode(409, "A client-side LLM has no server-side stream."),
    "version_mismatch": PublicCode(412, "`If-Match` names a version that is no longer current."),
    "payload_too_large": PublicCode(413, "The body is over 1 MB."),
    "unsupported_media_type": PublicCode(
        415, "The body is not `application/json` (or its media type is malformed)."
    ),
    "rate_limited": PublicCode(429, "Too many requests: retry after `Retry-After`."),
    "token_mint_throttled": PublicCode(
        429, "Too many session tokens are being minted right now: retry in a second."
    ),
    "upstream_rate_limited": PublicCode(
        429, "The LLM endpoint is rate limiting requests (with `Retry-After`)."
    ),
    "target_rate_limited": PublicCode(
        429, "The gateway already sent that host its share of tests and probes: retry after `Retry-After`."
    ),
    "internal_error": PublicCode(500, "Our bug: quote the `x-request-id` (also in `details.requestId`)."),
    "credentials_unavailable": PublicCode(500, "The stored key of the LLM could not be decrypted."),
    "upstream_unauthorized": PublicCode(502, "The LLM endpoint rejected the stored key."),
    "upstream_model_not_found": PublicCode(502, "The LLM endpoint does not know the model or deployment."),
    "upstream_server_error": PublicCode(502, "The LLM endpoint failed while answering."),
    "upstream_unreachable": PublicCode(502, "The LLM endpoint could not be reached."),
    "upstream_protocol_error": PublicCode(502, "The LLM endpoint sent a stream the gateway could not read."),
    "gateway_error": PublicCode(502, "API Gateway failed to reach a function."),
    "upstream_timeout": PublicCode(504, "The LLM endpoint did not answer in time."),
    "gateway_deadline": PublicCode(504, "The answer was cut off at the gateway's time limit."),
    "loop_detected": PublicCode(
        508, "The request carries this deployment's own hop marker: an LLM URL points at the gateway."
    ),
}


class GatewayError(Exception):
    """Base of every error a client may see. ``message`` must never hold a secret.

    The status comes from ``ERROR_TABLE`` whenever the code is there (every public code is; a test
    fails on any other), so a code answers the same status wherever it is raised."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        entry = ERROR_TABLE.get(self.code)
        if entry is not None and self.status not in entry.statuses:
            self.status = entry.status
        self.details = details

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InternalError(GatewayError):
    """Our own bug, as a client sees it: no detail but the request id to quote."""

    def __init__(self, request_id: str | None = None) -> None:
        super().__init__(
            "Something went wrong on our side; quote the x-request-id when reporting it.",
            details={"requestId": request_id} if request_id else None,
        )


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
