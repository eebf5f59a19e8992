"""The conformance engine: one live probe of an endpoint, judged on its raw bytes, as a ``Report``.

Used by the validator function, the on-demand routes, ``llms/test`` and ``llm-gateway check``,
so all four say the same thing about the same endpoint. The engine sends what the platform
will send (``stream: true``, a short user message, a small ``max_tokens``), reads the raw
response bytes itself (never an SDK: the customer's clients read bytes too), and hands them
to the spec checks in ``llm_gateway.providers``. It adds what only a live call can tell:
address, connection, time to first byte/token, a stream that stalls or is cut, and whether
the endpoint rejects a wrong key.

Pure domain: the HTTP client and the URL guard come in through ``HttpPort`` (the composition
layer passes a ``GuardedHttp`` client), so tests inject fakes and no socket is opened here.

Semantics (DESIGN.md §4):

- ``compatible`` is false iff some check failed. For a LIVE probe an error answer (401, 404,
  429, 5xx, a redirect) is a failure even when its body is well formed: the endpoint does not
  work with this config. The providers' weaker ``conforms()`` ("the bytes follow the spec")
  is kept in ``details.specConforms`` for callers that want it (fixture verdicts).
- A check that cannot run because an earlier one failed is ``skip``, never ``fail``.
- ``errorCode`` is the gateway code of the first failed check.
- Several ``urls``: every URL is probed (the gateway fails over between them, so each must
  work). Checks of the first URL keep their plain ids; those of URL *n* > 1 get ``@n``, and
  every message names its URL. ``timings`` and ``endpoint`` describe the first URL.
- Deadlines: per URL, connect / first token / idle / total from the config's ``Timeouts``,
  with the total capped at ``max_total_s`` (30 s by default). A read blocks at most
  ``min(first token, idle, total)``, so one URL takes at most about total + that read timeout.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from llm_gateway.domain.ports import UrlGuard
from llm_gateway.errors import EndpointBlocked
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat, Timeouts
from llm_gateway.models.report import Check, CheckCategory, CheckStatus, Report, Timings
from llm_gateway.providers import azure_openai, gemini, openai
from llm_gateway.providers.openai import trim_evidence
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.providers.sse import SseLimitExceeded, SseParser

__all__ = [
    "DEFAULT_MAX_TOTAL_S",
    "PROBE_MAX_TOKENS",
    "EndpointConfig",
    "HttpPort",
    "ProbeConfigError",
    "ProbeResponse",
    "StreamingClient",
    "build_probe_request",
    "public_url",
    "run_conformance",
]

#: Upper bound of one URL's probe when the caller gives none (DESIGN.md: a probe is quick).
DEFAULT_MAX_TOTAL_S = 30.0
#: The probe asks for a few tokens: enough to see a stream, cheap for the LLM owner.
PROBE_MAX_TOKENS = 16
PROBE_PROMPT = "Reply with one short word: ok"
#: TTFT above this is reported as a latency warning (never a failure).
SLOW_FIRST_TOKEN_S = 2.0
#: A 16-token stream is a few KiB; far more means max_tokens was ignored. Reading stops here.
MAX_STREAM_BYTES = 2 * 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024
#: The authentication probe only needs the status line and the start of the body.
AUTH_PROBE_MAX_S = 10.0
AUTH_PROBE_BODY_BYTES = 16 * 1024
#: Obviously not a real key in any provider's format, so no real account is ever hit with it.
WRONG_KEY = "llm-gateway-conformance-probe-invalid-key-000000"

_SECRET_QUERY_PARAMS = frozenset(
    {"key", "api-key", "api_key", "apikey", "access_token", "token", "sig", "signature", "secret", "password"}
)


# ---------------------------------------------------------------------------------------------
# Ports and inputs
# ---------------------------------------------------------------------------------------------


class ProbeResponse(Protocol):
    """The part of an httpx-like streamed response the engine reads."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]: ...


class StreamingClient(Protocol):
    """An httpx-like sync client (``httpx.Client`` fits). ``timeout`` is (connect, read, write, pool)."""

    def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float, float, float],
    ) -> AbstractContextManager[ProbeResponse]: ...


@dataclass(frozen=True, slots=True)
class HttpPort:
    """The outside world of a probe: a client that never follows redirects, and the SSRF guard.

    Production: ``HttpPort(guarded.sync_client(), guarded)`` with one ``GuardedHttp``; the guard
    is also enforced inside its transport, the explicit check gives a clear ``address`` check.
    """

    client: StreamingClient
    guard: UrlGuard


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """What the probe needs from an LLM config (registered, stored, or typed on the command line)."""

    llm_format: LlmFormat
    urls: tuple[str, ...]
    model_name: str
    deployment_name: str | None = None
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    temperature: float | None = None
    max_tokens: int | None = None
    timeouts: Timeouts | None = None

    @classmethod
    def from_llm(cls, llm: Any) -> EndpointConfig:
        """From any LLM model (``Llm``, ``StoredLlm``, a create/spec body): same field names."""
        urls = tuple(u if isinstance(u, str) else u.url for u in llm.urls)
        return cls(
            llm_format=LlmFormat(llm.llm_format),
            urls=urls,
            model_name=llm.model_name,
            deployment_name=getattr(llm, "deployment_name", None),
            api_version=getattr(llm, "api_version", None),
            headers=dict(getattr(llm, "headers", None) or {}),
            temperature=getattr(llm, "temperature", None),
            max_tokens=getattr(llm, "max_tokens", None),
            timeouts=getattr(llm, "timeouts", None),
        )


class ProbeConfigError(ValueError):
    """The config cannot be turned into a request (URL form, model name); the message says why."""


def probe_chat() -> ChatRequest:
    """The chat request the probe sends: what the platform sends, minus the persona."""
    return ChatRequest(
        messages=[ChatMessage(role="user", content=PROBE_PROMPT)],
        stream=True,
        max_tokens=PROBE_MAX_TOKENS,
        stream_options={"include_usage": True},
    )


def build_probe_request(config: EndpointConfig, url: str, api_key: str) -> UpstreamRequest:
    """The provider's own request for ``url``; raises ``ProbeConfigError`` with a fix-it message."""
    chat = probe_chat()
    common: dict[str, Any] = {
        "url": url,
        "model_name": config.model_name,
        "api_key": api_key,
        "chat": chat,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "extra_headers": config.headers,
    }
    try:
        if config.llm_format is LlmFormat.OPENAI:
            built: Any = openai.build_request(**common)
        elif config.llm_format is LlmFormat.AZURE_OPENAI:
            built = azure_openai.build_request(
                **common, deployment=config.deployment_name, api_version=config.api_version
            )
        else:
            built = gemini.build_request(**common)
    except ValueError as exc:  # EndpointUrlError, GeminiRequestError
        raise ProbeConfigError(str(exc)) from None
    headers = dict(built.headers)
    # Compressed bodies would hide the bytes the spec checks judge; ask for them as sent.
    headers["Accept-Encoding"] = "identity"
    return UpstreamRequest(built.method, built.url, headers, built.body)


def public_url(url: str) -> str:
    """``url`` without credentials: no userinfo, no ``key=``-like query parameters."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _SECRET_QUERY_PARAMS
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


# ---------------------------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------------------------

_NETWORK, _AUTH, _ENDPOINT = CheckCategory.NETWORK, CheckCategory.AUTH, CheckCategory.ENDPOINT
_STREAMING, _FORMAT, _LATENCY = CheckCategory.STREAMING, CheckCategory.FORMAT, CheckCategory.LATENCY
_PASS, _WARN, _FAIL, _SKIP = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP

#: The spec checks shown as ``skip`` when no response arrived (ids as the providers name them).
_SPEC_CHECKS: dict[LlmFormat, tuple[tuple[str, CheckCategory], ...]] = {
    LlmFormat.OPENAI: (
        ("http_status", _ENDPOINT), ("content_type", _STREAMING), ("sse_framing", _STREAMING),
        ("data_json", _FORMAT), ("chunk_schema", _FORMAT), ("finish_reason", _FORMAT),
        ("done_terminator", _FORMAT),
    ),
    LlmFormat.GEMINI: (
        ("http_status", _ENDPOINT), ("content_type", _STREAMING), ("sse_framing", _STREAMING),
        ("chunk_schema", _FORMAT), ("finish_reason", _FORMAT), ("mid_stream_error", _STREAMING),
    ),
}  # fmt: skip
_SPEC_CHECKS[LlmFormat.AZURE_OPENAI] = _SPEC_CHECKS[LlmFormat.OPENAI]

#: Failures that report an error the upstream *said* mid-stream rather than a framing problem.
_INBAND_ERROR_IDS = frozenset({"inband_error", "mid_stream_error"})
#: Rules about how a stream ends: they cannot be judged on a stream that was cut.
_END_OF_STREAM_IDS = frozenset({"finish_reason", "done_terminator", "terminator"})


@dataclass(slots=True)
class _Finding:
    """A check plus the gateway error code its failure stands for."""

    check: Check
    code: str | None = None


def _check(
    check_id: str,
    category: CheckCategory,
    status: CheckStatus,
    message: str,
    hint: str | None = None,
    *,
    evidence: str | None = None,
    duration_s: float | None = None,
    code: str | None = None,
) -> _Finding:
    return _Finding(
        Check(
            id=check_id,
            category=category,
            status=status,
            message=message,
            hint=hint,
            evidence=evidence,
            duration_ms=None if duration_s is None else round(duration_s * 1000, 1),
        ),
        code if status is _FAIL else None,
    )


# ---------------------------------------------------------------------------------------------
# Transport failures: httpx-like exceptions, recognised by class name so the domain imports no httpx
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Failure:
    message: str
    hint: str
    code: str
    evidence: str | None = None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _blocked_failure(exc: EndpointBlocked, host: str) -> _Failure:
    reason = (exc.details or {}).get("reason") if isinstance(exc.details, dict) else None
    if reason == "unresolvable":
        return _Failure(
            f"DNS: the host {host} could not be resolved",
            "Check the host name for typos and that it has a public DNS record (A/AAAA).",
            "upstream_unreachable",
        )
    return _Failure(
        f"blocked address: {exc.message}" + (f" (reason: {reason})" if reason else ""),
        "The gateway only calls public https endpoints on port 443 or 8443. Use the endpoint's public "
        "https URL; private, loopback and metadata addresses are refused (the local stack and "
        "`llm-gateway check --allow-private` allow private ones for development).",
        "endpoint_blocked",
    )


def _transport_failure(exc: BaseException, *, host: str, phase: str, budget_s: float) -> _Failure:
    """A clear message and hint for an exception raised while connecting or reading."""
    if isinstance(exc, EndpointBlocked):
        return _blocked_failure(exc, host)
    names = _names(exc)
    detail = trim_evidence(f"{type(exc).__name__}: {exc}", limit=300)
    chain = list(_causes(exc))
    if "ConnectTimeout" in names:
        return _Failure(
            f"connect timeout: no TCP/TLS connection to {host} within {budget_s:g} s",
            "Check that the host is up and reachable from the internet on this port (firewall, "
            "security group, IP allow-list).",
            "upstream_timeout",
            detail,
        )
    if "TimeoutException" in names or isinstance(exc, TimeoutError):
        what = {
            "headers": f"no response headers within {budget_s:g} s",
            "first_token": f"no first token within {budget_s:g} s",
            "stream": f"no bytes for {budget_s:g} s (the stream stalled)",
            "total": f"the stream did not finish within {budget_s:g} s",
        }[phase]
        return _Failure(
            f"timeout: {what}",
            "The endpoint must start answering quickly and keep sending: check its load, model "
            "warm-up and that it flushes each SSE event instead of buffering the response.",
            "upstream_timeout",
            detail,
        )
    if any(isinstance(e, ssl.SSLError) for e in chain) or any(
        marker in str(e).upper() for e in chain for marker in ("SSL", "CERTIFICATE", "TLS")
    ):
        return _Failure(
            f"TLS handshake with {host} failed",
            "Serve a certificate valid for this host name from a public CA (full chain), with TLS 1.2+; "
            "check that the URL's port speaks https.",
            "upstream_unreachable",
            detail,
        )
    text = " ".join(str(e).lower() for e in chain)
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return _Failure(
            f"DNS: the host {host} could not be resolved",
            "Check the host name and its public DNS record.",
            "upstream_unreachable",
            detail,
        )
    if phase != "headers":
        return _Failure(
            "the connection broke before the stream ended (reset or closed early)",
            "Keep the connection open until the last event (`data: [DONE]` for OpenAI/Azure) is sent; "
            "check the server and any proxy in front of it for idle or response-size limits.",
            "upstream_protocol_error",
            detail,
        )
    if "ConnectError" in names or "connection refused" in text:
        return _Failure(
            f"connection to {host} failed" + (" (refused)" if "refused" in text else ""),
            "Check the host and port: something must listen there and accept connections from the internet.",
            "upstream_unreachable",
            detail,
        )
    if "RemoteProtocolError" in names or "ProtocolError" in names:
        return _Failure(
            "the server did not answer with a valid HTTP response",
            "Check that the URL's scheme and port match the server (https on 443) and that it speaks "
            "HTTP/1.1.",
            "upstream_protocol_error",
            detail,
        )
    return _Failure(
        f"the request could not be completed ({type(exc).__name__})",
        "Check that the endpoint is reachable and answers HTTP requests on this URL.",
        "upstream_unreachable",
        detail,
    )


# ---------------------------------------------------------------------------------------------
# One exchange: send, read the raw bytes with timing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Budget:
    connect_s: float
    first_token_s: float
    idle_s: float
    total_s: float

    @property
    def read_s(self) -> float:
        return min(self.first_token_s, self.idle_s, self.total_s)


def _budget(timeouts: Timeouts | None, max_total_s: float) -> _Budget:
    t = timeouts or Timeouts()
    total = max(0.1, min(t.total_ms / 1000, max_total_s))
    return _Budget(
        connect_s=min(t.connect_ms / 1000, total),
        first_token_s=min(t.first_token_ms / 1000, total),
        idle_s=min(t.idle_ms / 1000, total),
        total_s=total,
    )


class _Deadline(Exception):
    def __init__(self, phase: str, budget_s: float) -> None:
        super().__init__(phase)
        self.phase = phase
        self.budget_s = budget_s


@dataclass(slots=True)
class _Exchange:
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ttfb_s: float | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    failure: _Failure | None = None
    failure_phase: str | None = None
    oversized: bool = False

    @property
    def complete(self) -> bool:
        return self.failure is None and not self.oversized


class _TokenWatch:
    """Finds the first event that carries model output, to time the first token."""

    def __init__(self, llm_format: LlmFormat) -> None:
        self.gemini = llm_format is LlmFormat.GEMINI
        self.parser: SseParser | None = SseParser(max_line_bytes=256 * 1024)
        self.seen = False

    def feed(self, chunk: bytes) -> bool:
        if self.seen or self.parser is None:
            return self.seen
        try:
            events = self.parser.feed(chunk)
        except SseLimitExceeded:
            self.parser = None  # the spec checks report it; timing just stops looking
            return False
        self.seen = any(self._carries_token(e.data) for e in events)
        return self.seen

    def _carries_token(self, data: str) -> bool:
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        if not isinstance(payload, dict):
            return False
        if self.gemini:
            for candidate in payload.get("candidates") or []:
                content = candidate.get("content") if isinstance(candidate, dict) else None
                parts = content.get("parts") if isinstance(content, dict) else None
                for part in parts if isinstance(parts, list) else []:
                    if isinstance(part, dict) and (part.get("text") or part.get("functionCall")):
                        return True
            return False
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and any(delta.get(k) for k in ("content", "tool_calls", "refusal")):
                return True
        return False


def _exchange(
    client: StreamingClient,
    request: UpstreamRequest,
    budget: _Budget,
    watch: _TokenWatch | None,
    monotonic: Callable[[], float],
    *,
    max_body: int,
) -> _Exchange:
    """Send once and read the body as it arrives, timing the first byte and the first token."""
    out = _Exchange()
    host = urlsplit(request.url).hostname or "?"
    start = monotonic()
    phase = "headers"
    timeout = (budget.connect_s, budget.read_s, budget.read_s, budget.connect_s)
    try:
        with client.stream(
            request.method, request.url, content=request.body, headers=request.headers, timeout=timeout
        ) as response:
            out.ttfb_s = monotonic() - start
            out.status = response.status_code
            out.headers = [(str(k), str(v)) for k, v in response.headers.items()]
            streaming = 200 <= out.status < 300
            limit = max_body if streaming else min(max_body, MAX_ERROR_BODY_BYTES)
            phase = "first_token" if streaming and watch is not None else "stream"
            for chunk in response.iter_bytes():
                now = monotonic() - start
                out.body += chunk
                if watch is not None and out.ttft_s is None and streaming and watch.feed(chunk):
                    out.ttft_s = now
                    phase = "stream"
                if len(out.body) >= limit:
                    del out.body[limit:]
                    out.oversized = streaming
                    break
                if phase == "first_token" and now > budget.first_token_s:
                    raise _Deadline("first_token", budget.first_token_s)
                if now > budget.total_s:
                    raise _Deadline("total", budget.total_s)
    except _Deadline as exc:
        out.failure = _transport_failure(TimeoutError(), host=host, phase=exc.phase, budget_s=exc.budget_s)
        out.failure_phase = exc.phase
    except Exception as exc:  # the client's errors are not ours to type: map them, never raise
        phase_budget = {
            "headers": budget.read_s,
            "first_token": budget.first_token_s,
            "stream": budget.read_s,
        }[phase]
        if "ConnectTimeout" in _names(exc):
            phase_budget = budget.connect_s
        out.failure = _transport_failure(exc, host=host, phase=phase, budget_s=phase_budget)
        out.failure_phase = phase if out.status is not None else "headers"
    out.total_s = monotonic() - start
    return out


# ---------------------------------------------------------------------------------------------
# Judging one URL
# ---------------------------------------------------------------------------------------------


def _spec_checks(config: EndpointConfig, exchange: _Exchange, secrets: Sequence[str]) -> list[Check]:
    status = exchange.status or 0
    body = bytes(exchange.body)
    if config.llm_format is LlmFormat.GEMINI:
        return gemini.check_response(status, exchange.headers, body, alt_sse=True, secrets=secrets)
    profile = (
        azure_openai.AZURE_PROFILE if config.llm_format is LlmFormat.AZURE_OPENAI else openai.OPENAI_PROFILE
    )
    return openai.check_response(
        status, exchange.headers, body, profile=profile, expect_complete=exchange.complete, secrets=secrets
    )


def _status_code(config: EndpointConfig, exchange: _Exchange, secrets: Sequence[str]) -> str:
    """The gateway code for a non-2xx answer, as the proxy will classify it."""
    status = exchange.status or 0
    if 300 <= status < 400:
        return "upstream_protocol_error"
    if config.llm_format is LlmFormat.GEMINI:
        return gemini.classify_error(status, bytes(exchange.body)) or "upstream_bad_request"
    return openai.classify_upstream_error(
        status, bytes(exchange.body), exchange.headers, secrets=secrets
    ).code


def _code_for(check: Check, status_code: str) -> str:
    if check.id in ("http_status", "redirect"):
        return status_code
    if check.id in _INBAND_ERROR_IDS:
        return "upstream_server_error"
    return "upstream_protocol_error"


def _with_hint(check: Check) -> Check:
    """Every failure carries a hint, whatever the spec module wrote."""
    if check.status is _FAIL and not check.hint:
        return check.model_copy(
            update={"hint": "Fix the endpoint's response to follow the provider's streaming format."}
        )
    return check


def _is_auth_rejection(config: EndpointConfig, exchange: _Exchange) -> bool:
    status = exchange.status or 0
    if config.llm_format is LlmFormat.GEMINI:
        return gemini.classify_error(status, bytes(exchange.body)) == "upstream_unauthorized"
    return openai.classify_upstream_error(status, bytes(exchange.body)).code == "upstream_unauthorized"


@dataclass(slots=True)
class _UrlResult:
    findings: list[_Finding]
    timings: Timings
    probed_url: str
    spec_conforms: bool | None


class _Prober:
    def __init__(
        self,
        config: EndpointConfig,
        api_key: str,
        http: HttpPort,
        budget: _Budget,
        monotonic: Callable[[], float],
    ) -> None:
        self.config = config
        self.api_key = api_key
        self.http = http
        self.budget = budget
        self.monotonic = monotonic
        self.secrets = tuple(s for s in (api_key, WRONG_KEY) if s)

    def skip_spec(self, reason: str) -> list[_Finding]:
        return [_check(cid, cat, _SKIP, reason) for cid, cat in _SPEC_CHECKS[self.config.llm_format]]

    def probe(self, url: str) -> _UrlResult:
        findings: list[_Finding] = []
        try:
            request = build_probe_request(self.config, url, self.api_key)
        except ProbeConfigError as exc:
            findings.append(
                _check("url", _ENDPOINT, _FAIL, f"the URL cannot be used: {exc}",
                       _url_hint(self.config.llm_format), code="upstream_bad_request")
            )  # fmt: skip
            findings.append(_check("address", _NETWORK, _SKIP, "skipped: the URL cannot be used"))
            findings.append(_check("connection", _NETWORK, _SKIP, "skipped: the URL cannot be used"))
            findings += self.skip_spec("skipped: the URL cannot be used")
            findings += self._skip_tail("skipped: the URL cannot be used")
            return _UrlResult(findings, Timings(), public_url(url), None)
        shown = public_url(request.url)
        findings.append(_check("url", _ENDPOINT, _PASS, f"POST {shown}"))
        host = urlsplit(request.url).hostname or "?"

        started = self.monotonic()
        try:
            self.http.guard.check(request.url)
        except EndpointBlocked as exc:
            failure = _blocked_failure(exc, host)
            findings.append(
                _check("address", _NETWORK, _FAIL, failure.message, failure.hint,
                       duration_s=self.monotonic() - started, code=failure.code)
            )  # fmt: skip
            reason = "skipped: the address check failed"
            findings.append(_check("connection", _NETWORK, _SKIP, reason))
            findings += self.skip_spec(reason)
            findings += self._skip_tail(reason)
            return _UrlResult(findings, Timings(), shown, None)
        findings.append(
            _check("address", _NETWORK, _PASS, f"{host} resolves to an allowed address",
                   duration_s=self.monotonic() - started)
        )  # fmt: skip

        watch = _TokenWatch(self.config.llm_format)
        exchange = _exchange(
            self.http.client, request, self.budget, watch, self.monotonic, max_body=MAX_STREAM_BYTES
        )
        timings = Timings(
            ttfb_ms=_ms(exchange.ttfb_s), ttft_ms=_ms(exchange.ttft_s), total_ms=_ms(exchange.total_s)
        )
        if exchange.status is None:
            failure = exchange.failure or _Failure(
                "no response", "Check the endpoint.", "upstream_unreachable"
            )
            findings.append(
                _check("connection", _NETWORK, _FAIL, failure.message, failure.hint,
                       evidence=_redact(failure.evidence, self.secrets), duration_s=exchange.total_s,
                       code=failure.code)
            )  # fmt: skip
            reason = "skipped: no HTTP response"
            findings += self.skip_spec(reason)
            findings += self._skip_tail(reason)
            return _UrlResult(findings, timings, shown, None)
        findings.append(
            _check("connection", _NETWORK, _PASS,
                   f"HTTP {exchange.status} response headers after {_fmt_s(exchange.ttfb_s)}",
                   duration_s=exchange.ttfb_s)
        )  # fmt: skip

        streaming = 200 <= exchange.status < 300
        findings.append(self._stream_complete(exchange, streaming))
        if 300 <= exchange.status < 400:
            findings.append(self._redirect(exchange))
            findings += self.skip_spec(f"skipped: HTTP {exchange.status} redirect")[1:]
            findings.append(self._latency(exchange, streaming))
            findings.append(_check("auth_probe", _AUTH, _SKIP, "skipped: the endpoint redirects"))
            return _UrlResult(findings, timings, shown, False)
        spec = [self._live(c, exchange) for c in _spec_checks(self.config, exchange, self.secrets)]
        status_code = _status_code(self.config, exchange, self.secrets)
        findings += [_Finding(c, _code_for(c, status_code) if c.status is _FAIL else None) for c in spec]
        spec_conforms = (gemini.conforms(spec) if self.config.llm_format is LlmFormat.GEMINI
                         else openai.conforms(spec))  # fmt: skip

        findings.append(self._latency(exchange, streaming))
        findings.append(self._auth_probe(request, exchange, spec))
        return _UrlResult(findings, timings, shown, spec_conforms)

    def _redirect(self, exchange: _Exchange) -> _Finding:
        location = next((v for k, v in exchange.headers if k.lower() == "location"), "")
        target = public_url(location) if "://" in location else location
        return _check(
            "http_status", _ENDPOINT, _FAIL,
            f"HTTP {exchange.status} redirect" + (f" to {trim_evidence(target, self.secrets, 200)}" if target
                                                  else "") + "; redirects are never followed",
            "Register the final URL (where the redirect points), with https and the exact path; the "
            "gateway never follows redirects.",
            evidence=trim_evidence(f"location: {location}", self.secrets), code="upstream_protocol_error",
        )  # fmt: skip

    @staticmethod
    def _live(check: Check, exchange: _Exchange) -> Check:
        """A spec check as seen on a live probe. When the stream was cut (timeout, reset), the
        checks that need what never arrived are ``skip``: the ``stream_complete`` failure says why."""
        if not exchange.complete:
            if exchange.ttft_s is None and check.id not in ("http_status", "content_type"):
                return check.model_copy(
                    update={"status": _SKIP, "message": "skipped: the stream was cut before the first token",
                            "hint": None, "evidence": None}
                )  # fmt: skip
            if check.id in _END_OF_STREAM_IDS and check.status is not _PASS:
                return check.model_copy(
                    update={"status": _SKIP, "message": "skipped: the stream did not complete",
                            "hint": None, "evidence": None}
                )  # fmt: skip
        return _with_hint(check)

    def _skip_tail(self, reason: str) -> list[_Finding]:
        return [
            _check("stream_complete", _NETWORK, _SKIP, reason),
            _check("latency", _LATENCY, _SKIP, reason),
            _check("auth_probe", _AUTH, _SKIP, reason),
        ]

    def _stream_complete(self, exchange: _Exchange, streaming: bool) -> _Finding:
        if not streaming:
            return _check("stream_complete", _NETWORK, _SKIP, f"no stream: HTTP {exchange.status}")
        size = len(exchange.body)
        if exchange.oversized:
            return _check(
                "stream_complete", _STREAMING, _FAIL,
                f"the response exceeds {MAX_STREAM_BYTES // (1024 * 1024)} MiB for a "
                f"{PROBE_MAX_TOKENS}-token request; reading stopped",
                "Honour max_tokens (max_output_tokens on Gemini) and stream only the completion.",
                duration_s=exchange.total_s, code="upstream_protocol_error",
            )  # fmt: skip
        if exchange.failure is not None:
            failure = exchange.failure
            return _check(
                "stream_complete", _NETWORK, _FAIL,
                f"{failure.message}, after {size} bytes in {_fmt_s(exchange.total_s)}",
                failure.hint, evidence=_redact(failure.evidence, self.secrets),
                duration_s=exchange.total_s, code=failure.code,
            )  # fmt: skip
        return _check(
            "stream_complete", _NETWORK, _PASS,
            f"the stream ended normally ({size} bytes in {_fmt_s(exchange.total_s)})",
            duration_s=exchange.total_s,
        )  # fmt: skip

    def _latency(self, exchange: _Exchange, streaming: bool) -> _Finding:
        if not streaming:
            return _check("latency", _LATENCY, _SKIP, f"no stream: HTTP {exchange.status}")
        if exchange.ttft_s is None:
            return _check("latency", _LATENCY, _SKIP, "no token arrived, so no time to first token")
        message = f"first token after {_fmt_s(exchange.ttft_s)} (first byte after {_fmt_s(exchange.ttfb_s)})"
        if exchange.ttft_s > SLOW_FIRST_TOKEN_S:
            return _check(
                "latency", _LATENCY, _WARN, message + f"; above {SLOW_FIRST_TOKEN_S:g} s",
                "Conversations feel slow above ~2 s to the first token: use a faster model or region, "
                "or check for a proxy that buffers the stream.",
                duration_s=exchange.ttft_s,
            )  # fmt: skip
        return _check("latency", _LATENCY, _PASS, message, duration_s=exchange.ttft_s)

    def _auth_probe(self, request: UpstreamRequest, main: _Exchange, spec: list[Check]) -> _Finding:
        """Send the same request with a wrong key: accepting it is a warning, never a failure."""
        http_status = next((c for c in spec if c.id in ("http_status", "redirect")), None)
        status = main.status or 0
        if http_status is not None and http_status.status is _FAIL:
            if http_status.category is _AUTH:
                return _check("auth_probe", _AUTH, _SKIP, "skipped: the real key was already rejected")
            if http_status.category in (_ENDPOINT, _NETWORK) or 300 <= status < 400:
                return _check(
                    "auth_probe",
                    _AUTH,
                    _SKIP,
                    f"skipped: the endpoint answered HTTP {status} to the real key",
                )
        try:
            wrong = build_probe_request(self.config, request.url, WRONG_KEY)
        except ProbeConfigError:  # pragma: no cover - the same URL built once already
            return _check("auth_probe", _AUTH, _SKIP, "skipped: the URL cannot be used")
        budget = _Budget(
            connect_s=self.budget.connect_s,
            first_token_s=min(self.budget.first_token_s, AUTH_PROBE_MAX_S),
            idle_s=min(self.budget.idle_s, AUTH_PROBE_MAX_S),
            total_s=min(self.budget.total_s, AUTH_PROBE_MAX_S),
        )
        result = _exchange(
            self.http.client, wrong, budget, None, self.monotonic, max_body=AUTH_PROBE_BODY_BYTES
        )
        if result.status is None:
            failure = result.failure
            return _check(
                "auth_probe", _AUTH, _WARN,
                "the request with a wrong key got no response"
                + (f" ({failure.message})" if failure else ""),
                "Answer a wrong key with HTTP 401 promptly.", duration_s=result.total_s,
            )  # fmt: skip
        if _is_auth_rejection(self.config, result):
            return _check(
                "auth_probe", _AUTH, _PASS, f"a wrong key is rejected (HTTP {result.status})",
                duration_s=result.total_s,
            )  # fmt: skip
        if 200 <= result.status < 300:
            return _check(
                "auth_probe", _AUTH, _WARN,
                f"the endpoint accepted a wrong key (HTTP {result.status}): anyone who finds the URL can use it",
                "Require the API key on every request and answer a wrong key with HTTP 401.",
                duration_s=result.total_s,
            )  # fmt: skip
        return _check(
            "auth_probe", _AUTH, _WARN,
            f"a wrong key got HTTP {result.status}, not 401/403",
            "Answer a missing or wrong key with HTTP 401 and an error body, so clients can tell a bad key "
            "from other errors.",
            evidence=trim_evidence(bytes(result.body).decode("utf-8", "replace"), self.secrets),
            duration_s=result.total_s,
        )  # fmt: skip


def _url_hint(llm_format: LlmFormat) -> str:
    return {
        LlmFormat.OPENAI: "Use the full chat-completions URL (https://host/v1/chat/completions) or the base "
        "ending in /v1.",
        LlmFormat.AZURE_OPENAI: "Use the resource endpoint (https://<resource>.openai.azure.com) with a "
        "deployment name and api-version, or the v1 base https://<resource>.openai.azure.com/openai/v1.",
        LlmFormat.GEMINI: "Use the API base https://generativelanguage.googleapis.com or the full URL "
        ".../v1beta/models/{model}:streamGenerateContent.",
    }[llm_format]


def _redact(text: str | None, secrets: Sequence[str]) -> str | None:
    return None if text is None else trim_evidence(text, secrets)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _for_url(findings: Iterable[_Finding], index: int, url: str, several: bool) -> list[_Finding]:
    """Name the URL in every message when there are several; suffix the ids after the first."""
    if not several:
        return list(findings)
    out = []
    for finding in findings:
        check = finding.check
        update: dict[str, Any] = {"message": f"[{url}] {check.message}"}
        if index:
            update["id"] = f"{check.id}@{index + 1}"
        out.append(_Finding(check.model_copy(update=update), finding.code))
    return out


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def run_conformance(
    config: EndpointConfig,
    api_key: str,
    http: HttpPort,
    *,
    max_total_s: float = DEFAULT_MAX_TOTAL_S,
    overall_budget_s: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    """Probe every URL of ``config`` with ``api_key`` and return the report. Never raises for
    anything the endpoint does; ``overall_budget_s`` bounds all URLs together (Lambda time)."""
    checked_at = now()
    budget = _budget(config.timeouts, max_total_s)
    prober = _Prober(config, api_key, http, budget, monotonic)
    several = len(config.urls) > 1
    started = monotonic()
    findings: list[_Finding] = []
    results: list[_UrlResult] = []
    for index, url in enumerate(config.urls):
        left = None if overall_budget_s is None else overall_budget_s - (monotonic() - started)
        if left is not None and index and left < budget.total_s:
            findings.append(
                _check(f"url@{index + 1}", _ENDPOINT, _SKIP,
                       f"[{public_url(url)}] not probed: the validation time budget is used up")
            )  # fmt: skip
            continue
        result = prober.probe(url)
        results.append(result)
        findings += _for_url(result.findings, index, result.probed_url, several)

    checks = [f.check for f in findings]
    first_failure = next((f for f in findings if f.check.status is _FAIL), None)
    primary = results[0] if results else None
    details: dict[str, Any] = {
        "probe": {"maxTokens": PROBE_MAX_TOKENS, "stream": True, "timeoutS": budget.total_s},
        "urls": [r.probed_url for r in results],
        "specConforms": primary.spec_conforms if primary else None,
    }
    return Report(
        compatible=first_failure is None,
        llm_format=config.llm_format.value,
        endpoint=primary.probed_url if primary else (public_url(config.urls[0]) if config.urls else ""),
        checked_at=checked_at,
        error_code=(first_failure.code or "upstream_protocol_error") if first_failure else None,
        timings=primary.timings if primary else Timings(),
        checks=checks,
        details=details,
    )
