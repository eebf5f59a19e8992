"""What a probe says when the exchange failed below HTTP: a message, a hint and the gateway code,
by the typed ``TransportError`` the HTTP adapter raised (its ``kind``) and the phase it hit."""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.errors import ErrorCode, TransportError, TransportKind
from llm_gateway.providers.common.findings import trim_evidence

_BLOCKED_HINT = (
    "The gateway only calls public https endpoints on port 443 or 8443. Use the endpoint's public "
    "https URL; private, loopback and metadata addresses are refused (the local stack and "
    "`llm-gateway check --allow-private` allow private ones for development)."
)
_TIMEOUT_HINT = (
    "The endpoint must start answering quickly and keep sending: check its load, model "
    "warm-up and that it flushes each SSE event instead of buffering the response."
)
_BROKE_HINT = (
    "Keep the connection open until the last event (`data: [DONE]` for OpenAI/Azure) is sent; "
    "check the server and any proxy in front of it for idle or response-size limits."
)


@dataclass(frozen=True, slots=True)
class Failure:
    message: str
    hint: str
    code: ErrorCode
    evidence: str | None = None


def timeout_failure(phase: str, budget_s: float, evidence: str | None = None) -> Failure:
    what = {
        "headers": f"no response headers within {budget_s:g} s",
        "first_token": f"no first token within {budget_s:g} s",
        "stream": f"no bytes for {budget_s:g} s (the stream stalled)",
        "total": f"the stream did not finish within {budget_s:g} s",
    }[phase]
    return Failure(f"timeout: {what}", _TIMEOUT_HINT, ErrorCode.UPSTREAM_TIMEOUT, evidence)


def transport_failure(exc: TransportError, *, host: str, phase: str, budget_s: float) -> Failure:
    """A clear message and hint for a failure while connecting or reading."""
    kind, detail = exc.kind, trim_evidence(exc.detail, limit=300) if exc.detail else None
    if kind is TransportKind.DNS:
        return Failure(
            f"DNS: the host {host} could not be resolved",
            "Check the host name for typos and that it has a public DNS record (A/AAAA).",
            ErrorCode.UPSTREAM_UNREACHABLE,
            detail,
        )
    if kind is TransportKind.BLOCKED:
        reason = f" (reason: {exc.reason})" if exc.reason else ""
        return Failure(f"blocked address: {exc.detail}{reason}", _BLOCKED_HINT, ErrorCode.ENDPOINT_BLOCKED)
    if kind is TransportKind.TIMEOUT and exc.connecting:
        return Failure(
            f"connect timeout: no TCP/TLS connection to {host} within {budget_s:g} s",
            "Check that the host is up and reachable from the internet on this port (firewall, "
            "security group, IP allow-list).",
            ErrorCode.UPSTREAM_TIMEOUT,
            detail,
        )
    if kind is TransportKind.TIMEOUT:
        return timeout_failure(phase, budget_s, detail)
    if kind is TransportKind.TLS:
        return Failure(
            f"TLS handshake with {host} failed",
            "Serve a certificate valid for this host name from a public CA (full chain), with TLS 1.2+; "
            "check that the URL's port speaks https.",
            ErrorCode.UPSTREAM_UNREACHABLE,
            detail,
        )
    if phase != "headers":
        return broken_failure(detail)
    if kind is TransportKind.CONNECT:
        return Failure(
            f"connection to {host} failed" + (f" ({exc.reason})" if exc.reason else ""),
            "Check the host and port: something must listen there and accept connections from the internet.",
            ErrorCode.UPSTREAM_UNREACHABLE,
            detail,
        )
    if kind is TransportKind.PROTOCOL:
        return Failure(
            "the server did not answer with a valid HTTP response",
            "Check that the URL's scheme and port match the server (https on 443) and that it speaks "
            "HTTP/1.1.",
            ErrorCode.UPSTREAM_PROTOCOL_ERROR,
            detail,
        )
    return Failure(
        f"the connection to {host} was reset before a response",
        "Check that the endpoint is reachable and answers HTTP requests on this URL.",
        ErrorCode.UPSTREAM_UNREACHABLE,
        detail,
    )


def broken_failure(detail: str | None) -> Failure:
    return Failure(
        "the connection broke before the stream ended (reset or closed early)",
        _BROKE_HINT,
        ErrorCode.UPSTREAM_PROTOCOL_ERROR,
        detail,
    )


def unexpected_failure(exc: Exception, *, phase: str) -> Failure:
    """An error no adapter typed (a bug in a client, not the endpoint's doing): named, never raised."""
    detail = trim_evidence(f"{type(exc).__name__}: {exc}", limit=300)
    if phase != "headers":
        return broken_failure(detail)
    return Failure(
        f"the request could not be completed ({type(exc).__name__})",
        "Check that the endpoint is reachable and answers HTTP requests on this URL.",
        ErrorCode.UPSTREAM_UNREACHABLE,
        detail,
    )
