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
#: One hint per way of being too slow: each points at what usually causes that one.
_TIMEOUT_HINTS = {
    "headers": "The endpoint accepted the connection but sent no response headers in time: check "
    "that it is not queueing requests (load, concurrency limits, cold starts) and that a proxy in "
    "front of it does not hold the response until the end.",
    "first_token": "The endpoint answered but sent no token in time: check the model's load and "
    "warm-up (a cold or overloaded model), and that the server flushes each SSE event as it is "
    "generated instead of buffering.",
    "stream": "The stream stopped mid-answer and stayed silent: check the server's logs for a hung "
    "generation, and that every event is flushed (proxies with response buffering hold bytes back).",
    "total": "The endpoint kept sending but did not finish a 16-token answer in time: it streams too "
    "slowly (a drip of bytes); check its generation speed and any proxy that re-chunks the stream.",
}
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
    """A per-check bound (the LLM's own timeouts, capped for a probe) ran out in ``phase``."""
    what = {
        "headers": f"no response headers within {budget_s:g} s",
        "first_token": f"no first token within {budget_s:g} s",
        "stream": f"no bytes for {budget_s:g} s (the stream stalled)",
        "total": f"the stream did not finish within {budget_s:g} s",
    }[phase]
    return Failure(f"timeout: {what}", _TIMEOUT_HINTS[phase], ErrorCode.UPSTREAM_TIMEOUT, evidence)


_BUDGET_WHERE = {
    "connect": "before a connection was made",
    "headers": "before the response headers arrived",
    "first_token": "before the first token arrived",
    "stream": "before the stream finished",
    "total": "before the stream finished",
}


def budget_failure(label: str, phase: str) -> Failure:
    """The whole run's budget (``label`` names it) ran out while this exchange was in ``phase``."""
    return Failure(
        f"timeout: {label} ran out {_BUDGET_WHERE.get(phase, 'before this check finished')}",
        budget_hint(label),
        ErrorCode.UPSTREAM_TIMEOUT,
    )


def budget_hint(label: str) -> str:
    return (
        f"The endpoint was too slow for {label}, which covers every URL and check of one validation. "
        "A 16-token answer should start within a few seconds and finish soon after: check the "
        "endpoint's load and cold starts, and any proxy that holds the stream back; then validate again."
    )


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
        "The server closed or reset the connection without answering: check that it speaks https on "
        "this port and that no firewall or load balancer in front of it drops the request.",
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
        "The gateway's HTTP client failed in a way it does not recognise (see the evidence). If the "
        "URL answers `curl -N` with a stream, report this evidence to the gateway's operators.",
        ErrorCode.UPSTREAM_UNREACHABLE,
        detail,
    )
