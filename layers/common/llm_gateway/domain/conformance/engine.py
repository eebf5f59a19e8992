"""The conformance engine: probe every URL of a config and judge it, as one ``Report``.

Per URL: the URL form, the address guard, one exchange (timed), the provider's spec checks on the
raw bytes, the stream's completeness, latency, and whether a wrong key is rejected. Which spec
applies is the provider's business (``providers.registry``); nothing here knows any spec.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from llm_gateway.domain.conformance.budget import RunBudget, RunClock
from llm_gateway.domain.conformance.config import (
    EndpointConfig,
    HttpPort,
    ProbeConfigError,
    build_probe_request,
    public_url,
)
from llm_gateway.domain.conformance.continuation import continuation_check
from llm_gateway.domain.conformance.continuation import skipped as continuation_skipped
from llm_gateway.domain.conformance.exchange import Budget, Exchange, TokenWatch, exchange
from llm_gateway.domain.conformance.failures import Failure, budget_failure, budget_hint, transport_failure
from llm_gateway.domain.conformance.thoughts import ThoughtWatch, parsed_relay, thoughts_check
from llm_gateway.errors import EndpointBlocked, ErrorCode, TransportError
from llm_gateway.models.report import Check, CheckCategory, CheckStatus, Report, Timings
from llm_gateway.providers.common.findings import trim_evidence
from llm_gateway.providers.registry import provider_for
from llm_gateway.providers.request import UpstreamRequest

#: Upper bound of one URL's probe when the caller gives none (DESIGN.md: a probe is quick).
DEFAULT_MAX_TOTAL_S = 30.0
#: TTFT above this is reported as a latency warning (never a failure).
SLOW_FIRST_TOKEN_S = 2.0
#: A 16-token stream is a few KiB; far more means max_tokens was ignored. Reading stops here.
MAX_STREAM_BYTES = 2 * 1024 * 1024
#: The authentication probe only needs the status line and the start of the body.
AUTH_PROBE_MAX_S = 10.0
AUTH_PROBE_BODY_BYTES = 16 * 1024
#: Obviously not a real key in any provider's format, so no real account is ever hit with it.
WRONG_KEY = "llm-gateway-conformance-probe-invalid-key-000000"
#: A stream whose events all arrive in one read after this long was held back, not streamed
#: (judged only with enough token events to have been spread out; a one-word answer may be one read).
BUFFERED_AFTER_S = 2.0
BUFFERED_MIN_TOKEN_EVENTS = 3
#: Past the run's deadline, URL probes still running get this long to report their own cut (every
#: read is bounded by the deadline, so they end within about one read).
JOIN_GRACE_S = 2.0

_NETWORK, _AUTH, _ENDPOINT = CheckCategory.NETWORK, CheckCategory.AUTH, CheckCategory.ENDPOINT
_STREAMING, _LATENCY = CheckCategory.STREAMING, CheckCategory.LATENCY
_PASS, _WARN, _FAIL, _SKIP = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP


@dataclass(slots=True)
class _Finding:
    """A check plus the gateway error code its failure stands for."""

    check: Check
    code: ErrorCode | None = None


def _check(
    check_id: str,
    category: CheckCategory,
    status: CheckStatus,
    message: str,
    hint: str | None = None,
    *,
    evidence: str | None = None,
    duration_s: float | None = None,
    code: ErrorCode | None = None,
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


def _with_hint(check: Check) -> Check:
    """Every failure carries a hint, whatever the spec module wrote."""
    if check.status is _FAIL and not check.hint:
        return check.model_copy(
            update={"hint": "Fix the endpoint's response to follow the provider's streaming format."}
        )
    return check


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
        budget: Budget,
        monotonic: Callable[[], float],
        run: RunClock | None = None,
        light: bool = False,
    ) -> None:
        self.light = light
        self.config = config
        self.provider = provider_for(config.llm_format)
        self.api_key = api_key
        self.http = http
        self.budget = budget
        self.monotonic = monotonic
        self.run = run
        self.secrets = tuple(s for s in (api_key, WRONG_KEY) if s)

    def skipped(self, reason: str, *, address: bool = False, hint: str | None = None) -> list[_Finding]:
        """Everything after a check that stopped the probe, as ``skip`` with ``reason``."""
        ids = [("address", _NETWORK)] if address else []
        ids += [("connection", _NETWORK), *self.provider.plan.without_response, ("stream_complete", _NETWORK),
                ("incremental", _STREAMING), ("latency", _LATENCY), ("thoughts", CheckCategory.FORMAT),
                ("auth_probe", _AUTH), ("continuation", _STREAMING)]  # fmt: skip
        return [_check(cid, cat, _SKIP, reason, hint) for cid, cat in ids]

    def _url(self, url: str) -> tuple[UpstreamRequest | None, _Finding]:
        try:
            request = build_probe_request(self.config, url, self.api_key)
        except ProbeConfigError as exc:
            return None, _check("url", _ENDPOINT, _FAIL, f"the URL cannot be used: {exc}", self.provider.url_hint,
                                code=ErrorCode.UPSTREAM_BAD_REQUEST)  # fmt: skip
        return request, _check("url", _ENDPOINT, _PASS, f"POST {public_url(request.url)}")

    def _out_of_time(self) -> bool:
        return self.run is not None and not self.run.allows()

    def cut_short(self, url: str) -> _UrlResult:
        """A URL the run's budget cut short: it had not answered (or not started) by the deadline."""
        assert self.run is not None
        request, url_check = self._url(url)
        failure = budget_failure(self.run.label, "headers")
        reason = f"skipped: {self.run.label} ran out"
        findings = [url_check, _check("address", _NETWORK, _SKIP, reason, failure.hint)]
        skipped = self.skipped(reason, hint=failure.hint)
        if request is not None:  # an unusable URL has failed already; otherwise the budget did
            skipped[0] = _check(
                "connection", _NETWORK, _FAIL, failure.message, failure.hint, code=failure.code
            )
        return _UrlResult(findings + skipped, Timings(), public_url(request.url if request else url), None)

    def probe(self, url: str) -> _UrlResult:
        request, url_check = self._url(url)
        if request is None:
            findings = [url_check, *self.skipped("skipped: the URL cannot be used", address=True)]
            return _UrlResult(findings, Timings(), public_url(url), None)
        if self._out_of_time():
            return self.cut_short(url)
        shown = public_url(request.url)
        findings = [url_check]
        host = urlsplit(request.url).hostname or "?"
        address = self._address(request.url, host)
        findings.append(address)
        if address.check.status is _FAIL:
            findings += self.skipped("skipped: the address check failed")
            return _UrlResult(findings, Timings(), shown, None)
        if self._out_of_time():
            return self.cut_short(url)
        watch = TokenWatch(self.provider, ThoughtWatch(parsed_relay(self.provider, self.config, url)))
        main = exchange(
            self.http.client, request, self.budget, watch, self.monotonic, max_body=MAX_STREAM_BYTES,
            run=self.run,
        )  # fmt: skip
        timings = Timings(ttfb_ms=_ms(main.ttfb_s), ttft_ms=_ms(main.ttft_s), total_ms=_ms(main.total_s),
                          first_thought_ms=_ms(main.first_thought_s))  # fmt: skip
        if main.status is None:
            findings.append(self._no_response(main))
            findings += self.skipped("skipped: no HTTP response")[1:]
            return _UrlResult(findings, timings, shown, None)
        findings.append(
            _check("connection", _NETWORK, _PASS, f"HTTP {main.status} response headers after {_fmt_s(main.ttfb_s)}",
                   duration_s=main.ttfb_s)
        )  # fmt: skip
        findings, spec_conforms = self._judge(request, main, findings, url)
        findings.append(self._continuation(url, main))
        return _UrlResult(findings, timings, shown, spec_conforms)

    def _continuation(self, url: str, main: Exchange) -> _Finding:
        """Whether a cut answer could be continued here (``warn``/``skip`` only, never ``fail``)."""
        if self.light:
            return _Finding(continuation_skipped("not run: a re-validation sends one streaming request"))
        if not 200 <= (main.status or 0) < 300 or not main.complete:
            return _Finding(continuation_skipped("skipped: the endpoint did not stream a whole answer"))
        check = continuation_check(
            self.config, url, self.api_key, self.http.client, self.budget.capped(AUTH_PROBE_MAX_S),
            self.monotonic, self.run, self.secrets,
        )  # fmt: skip
        return _Finding(check)

    def _address(self, url: str, host: str) -> _Finding:
        started = self.monotonic()
        try:
            self.http.guard.check(url)
        except EndpointBlocked as exc:
            failure = transport_failure(
                TransportError.refused_by_guard(exc), host=host, phase="headers", budget_s=0
            )
            return _check("address", _NETWORK, _FAIL, failure.message, failure.hint,
                          duration_s=self.monotonic() - started, code=failure.code)  # fmt: skip
        return _check("address", _NETWORK, _PASS, f"{host} resolves to an allowed address",
                      duration_s=self.monotonic() - started)  # fmt: skip

    def _no_response(self, main: Exchange) -> _Finding:
        failure = main.failure or Failure(
            "no response", "Check the endpoint.", ErrorCode.UPSTREAM_UNREACHABLE
        )
        return _check("connection", _NETWORK, _FAIL, failure.message, failure.hint,
                      evidence=_redact(failure.evidence, self.secrets), duration_s=main.total_s,
                      code=failure.code)  # fmt: skip

    def _judge(
        self, request: UpstreamRequest, main: Exchange, findings: list[_Finding], url: str
    ) -> tuple[list[_Finding], bool | None]:
        """The checks of an answer that arrived: completeness, spec, latency, the wrong-key probe."""
        status = main.status or 0
        streaming = 200 <= status < 300
        findings.append(self._stream_complete(main, streaming))
        findings.append(self._incremental(main, streaming))
        if 300 <= status < 400:
            findings.append(self._redirect(main))
            findings += [_check(cid, cat, _SKIP, f"skipped: HTTP {status} redirect")
                         for cid, cat in self.provider.plan.without_response[1:]]  # fmt: skip
            findings.append(self._latency(main, streaming))
            findings.append(
                _check("thoughts", CheckCategory.FORMAT, _SKIP, "skipped: the endpoint redirects")
            )
            findings.append(_check("auth_probe", _AUTH, _SKIP, "skipped: the endpoint redirects"))
            return findings, False
        checks = self.provider.check_response(
            status, main.headers, bytes(main.body), expect_complete=main.complete, secrets=self.secrets
        )
        spec = [self._reasoning_hint(self._live(c, main)) for c in checks]
        error = self.provider.classify_error(status, bytes(main.body), main.headers, secrets=self.secrets)
        findings += [_Finding(c, self._code_for(c, error.code) if c.status is _FAIL else None) for c in spec]
        findings.append(self._latency(main, streaming))
        findings.append(self._thoughts(main, streaming, url))
        findings.append(self._auth_probe(request, main, spec))
        return findings, self.provider.conforms(spec)

    def _reasoning_hint(self, check: Check) -> Check:
        """A request refused while the LLM sends a reasoning parameter: say which field to change."""
        if not self.config.thinks or check.status is not _FAIL or check.id != "http_status":
            return check
        if check.category is not CheckCategory.REQUEST:
            return check
        hint = (
            f"The request carried reasoningEffort {self.config.reasoning_effort} as the spec's reasoning "
            "parameter; if the model is not a reasoning model (or takes other values), unset "
            "reasoningEffort or change it, then validate again. " + (check.hint or "")
        )
        return check.model_copy(update={"hint": hint.strip()})

    def _code_for(self, check: Check, status_code: ErrorCode) -> ErrorCode:
        plan = self.provider.plan
        if check.id in plan.status_ids:
            return status_code
        if check.id in plan.inband_error_ids:
            return ErrorCode.UPSTREAM_SERVER_ERROR
        return ErrorCode.UPSTREAM_PROTOCOL_ERROR

    def _redirect(self, main: Exchange) -> _Finding:
        location = next((v for k, v in main.headers if k.lower() == "location"), "")
        target = public_url(location) if "://" in location else location
        return _check(
            "http_status", _ENDPOINT, _FAIL,
            f"HTTP {main.status} redirect" + (f" to {trim_evidence(target, self.secrets, 200)}" if target
                                              else "") + "; redirects are never followed",
            "Register the final URL (where the redirect points), with https and the exact path; the "
            "gateway never follows redirects.",
            evidence=trim_evidence(f"location: {location}", self.secrets),
            code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
        )  # fmt: skip

    def _live(self, check: Check, main: Exchange) -> Check:
        """A spec check as seen on a live probe. When the stream was cut (timeout, reset), the
        checks that need what never arrived are ``skip``: the ``stream_complete`` failure says why."""
        plan = self.provider.plan
        if not main.complete:
            if main.ttft_s is None and check.id not in plan.head_ids:
                return check.model_copy(
                    update={"status": _SKIP, "message": "skipped: the stream was cut before the first token",
                            "hint": None, "evidence": None}
                )  # fmt: skip
            if check.id in plan.end_of_stream_ids and check.status is not _PASS:
                return check.model_copy(
                    update={"status": _SKIP, "message": "skipped: the stream did not complete",
                            "hint": None, "evidence": None}
                )  # fmt: skip
        return _with_hint(check)

    def _stream_complete(self, main: Exchange, streaming: bool) -> _Finding:
        if not streaming:
            return _check("stream_complete", _NETWORK, _SKIP, f"no stream: HTTP {main.status}")
        size = len(main.body)
        if main.oversized:
            return _check(
                "stream_complete", _STREAMING, _FAIL,
                f"the response exceeds {MAX_STREAM_BYTES // (1024 * 1024)} MiB for a "
                f"{self.config.probe_max_tokens}-token request; reading stopped",
                "Honour max_tokens (max_output_tokens on Gemini) and stream only the completion.",
                duration_s=main.total_s, code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
            )  # fmt: skip
        if main.failure is not None:
            failure = main.failure
            return _check(
                "stream_complete", _NETWORK, _FAIL,
                f"{failure.message}, after {size} bytes in {_fmt_s(main.total_s)}",
                failure.hint, evidence=_redact(failure.evidence, self.secrets),
                duration_s=main.total_s, code=failure.code,
            )  # fmt: skip
        return _check(
            "stream_complete", _NETWORK, _PASS,
            f"the stream ended normally ({size} bytes in {_fmt_s(main.total_s)})",
            duration_s=main.total_s,
        )  # fmt: skip

    def _incremental(self, main: Exchange, streaming: bool) -> _Finding:
        """Whether the events came as they were generated or all at once (a buffering server or proxy)."""
        if not streaming:
            return _check("incremental", _STREAMING, _SKIP, f"no stream: HTTP {main.status}")
        if main.event_reads == 0:
            return _check(
                "incremental", _STREAMING, _SKIP, "no SSE event arrived, so delivery cannot be timed"
            )
        if main.event_reads > 1:
            return _check("incremental", _STREAMING, _PASS,
                          f"events arrived as they were sent ({main.events} events in {main.event_reads} reads)")  # fmt: skip
        waited = main.first_event_s or 0.0
        if waited < BUFFERED_AFTER_S:
            return _check("incremental", _STREAMING, _PASS,
                          f"the whole answer ({main.events} events) arrived within {_fmt_s(waited)}")  # fmt: skip
        if main.token_events < BUFFERED_MIN_TOKEN_EVENTS or not main.complete:
            return _check("incremental", _STREAMING, _SKIP,
                          f"cannot tell: a short answer ({main.events} events) arrived in one read after {_fmt_s(waited)}")  # fmt: skip
        return _check(
            "incremental", _STREAMING, _FAIL,
            f"not streamed: all {main.events} events ({main.token_events} with tokens) arrived at once, "
            f"after {_fmt_s(waited)}",
            "The answer was held back and sent in one piece, so users wait for all of it. Flush each SSE "
            "event as soon as it is generated, and turn off response buffering in any proxy in front of the "
            "endpoint (nginx: `proxy_buffering off` or `X-Accel-Buffering: no`).",
            duration_s=waited, code=ErrorCode.UPSTREAM_PROTOCOL_ERROR,
        )  # fmt: skip

    def _thoughts(self, main: Exchange, streaming: bool, url: str) -> _Finding:
        """Whether the answer can be told from the thoughts (the relay's own verdict, replayed)."""
        if not streaming or main.status != 200:
            return _check("thoughts", CheckCategory.FORMAT, _SKIP, f"no stream: HTTP {main.status}")
        return _Finding(
            thoughts_check(parsed_relay(self.provider, self.config, url), bytes(main.body), self.config)
        )

    def _latency(self, main: Exchange, streaming: bool) -> _Finding:
        if not streaming:
            return _check("latency", _LATENCY, _SKIP, f"no stream: HTTP {main.status}")
        if main.ttft_s is None:
            if main.first_thought_s is not None:
                return _check("latency", _LATENCY, _WARN,
                              f"thoughts from {_fmt_s(main.first_thought_s)}, but no answer token arrived",
                              "Give the model room to answer (reasoningEffort, maxTokens).")  # fmt: skip
            return _check("latency", _LATENCY, _SKIP, "no token arrived, so no time to first token")
        thought = (
            f"first thought after {_fmt_s(main.first_thought_s)}, "
            if main.first_thought_s is not None
            else ""
        )
        message = f"first answer token after {_fmt_s(main.ttft_s)} ({thought}first byte after {_fmt_s(main.ttfb_s)})"
        if main.ttft_s > SLOW_FIRST_TOKEN_S:
            return _check(
                "latency", _LATENCY, _WARN, message + f"; above {SLOW_FIRST_TOKEN_S:g} s",
                "Conversations feel slow above ~2 s to the first token: use a faster model or region, "
                "or check for a proxy that buffers the stream.",
                duration_s=main.ttft_s,
            )  # fmt: skip
        return _check("latency", _LATENCY, _PASS, message, duration_s=main.ttft_s)

    def _auth_probe(self, request: UpstreamRequest, main: Exchange, spec: list[Check]) -> _Finding:
        """Send the same request with a wrong key: accepting it is a warning, never a failure."""
        if self.light:
            return _check("auth_probe", _AUTH, _SKIP, "not run: a re-validation sends one streaming request")
        skipped = self._auth_probe_skipped(main, spec)
        if skipped is not None:
            return skipped
        if self.run is not None and not self.run.allows():
            return _check("auth_probe", _AUTH, _SKIP, f"skipped: {self.run.label} ran out",
                          budget_hint(self.run.label))  # fmt: skip
        try:
            wrong = build_probe_request(self.config, request.url, WRONG_KEY)
        except ProbeConfigError:  # pragma: no cover - the same URL built once already
            return _check("auth_probe", _AUTH, _SKIP, "skipped: the URL cannot be used")
        budget = self.budget.capped(AUTH_PROBE_MAX_S)
        result = exchange(
            self.http.client,
            wrong,
            budget,
            None,
            self.monotonic,
            max_body=AUTH_PROBE_BODY_BYTES,
            run=self.run,
        )
        if result.status is None:
            failure = result.failure
            return _check(
                "auth_probe", _AUTH, _WARN,
                "the request with a wrong key got no response" + (f" ({failure.message})" if failure else ""),
                "Answer a wrong key with HTTP 401 promptly.", duration_s=result.total_s,
            )  # fmt: skip
        if (
            self.provider.classify_error(result.status, bytes(result.body)).code
            is ErrorCode.UPSTREAM_UNAUTHORIZED
        ):
            return _check("auth_probe", _AUTH, _PASS, f"a wrong key is rejected (HTTP {result.status})",
                          duration_s=result.total_s)  # fmt: skip
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
            evidence=trim_evidence(bytes(result.body), self.secrets),
            duration_s=result.total_s,
        )  # fmt: skip

    @staticmethod
    def _auth_probe_skipped(main: Exchange, spec: list[Check]) -> _Finding | None:
        http_status = next((c for c in spec if c.id in ("http_status", "redirect")), None)
        if http_status is None or http_status.status is not _FAIL:
            return None
        if http_status.category is _AUTH:
            return _check("auth_probe", _AUTH, _SKIP, "skipped: the real key was already rejected")
        status = main.status or 0
        if http_status.category in (_ENDPOINT, _NETWORK) or 300 <= status < 400:
            return _check(
                "auth_probe", _AUTH, _SKIP, f"skipped: the endpoint answered HTTP {status} to the real key"
            )
        return None


def _redact(text: str | None, secrets: tuple[str, ...]) -> str | None:
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


def run_conformance(
    config: EndpointConfig,
    api_key: str,
    http: HttpPort,
    *,
    max_total_s: float = DEFAULT_MAX_TOTAL_S,
    budget: RunBudget | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    light: bool = False,
) -> Report:
    """Probe every URL of ``config`` with ``api_key`` (all at once) and return the report. Never
    raises for anything the endpoint does; ``budget`` bounds the whole run: what it cuts short is
    reported as such, and the report comes back by the deadline (plus one read at most).
    ``light`` is the scheduled re-validation's probe set: one streaming request per URL, no
    wrong-key probe (``auth_probe`` is ``skip``)."""
    checked_at = now()
    per_check = Budget.of(config.timeouts, max_total_s)
    run = budget.start(monotonic) if budget is not None else None
    prober = _Prober(config, api_key, http, per_check, monotonic, run, light)
    several = len(config.urls) > 1
    results = _probe_all(prober, config.urls, run)
    findings = [
        f for index, r in enumerate(results) for f in _for_url(r.findings, index, r.probed_url, several)
    ]
    first_failure = next((f for f in findings if f.check.status is _FAIL), None)
    primary = results[0] if results else None
    return Report(
        compatible=first_failure is None,
        llm_format=config.llm_format.value,
        endpoint=primary.probed_url if primary else (public_url(config.urls[0]) if config.urls else ""),
        checked_at=checked_at,
        error_code=(first_failure.code or ErrorCode.UPSTREAM_PROTOCOL_ERROR) if first_failure else None,
        timings=primary.timings if primary else Timings(),
        checks=[f.check for f in findings],
        details={
            "probe": {"maxTokens": config.probe_max_tokens, "stream": True, "timeoutS": per_check.total_s}
            | ({"budgetS": round(budget.seconds, 1)} if budget is not None else {})
            | ({"probeSet": "light"} if light else {}),
            "urls": [r.probed_url for r in results],
            "specConforms": primary.spec_conforms if primary else None,
        },
    )


def _probe_all(prober: _Prober, urls: tuple[str, ...], run: RunClock | None) -> list[_UrlResult]:
    """Every URL at once (one thread each); without a budget and with one URL, in this thread.

    Each probe bounds itself by the deadline; a probe still running a grace period after it (a
    resolver that hangs) is reported as cut short and left to finish on its own."""
    if run is None and len(urls) == 1:
        return [prober.probe(urls[0])]
    pool = ThreadPoolExecutor(max_workers=max(1, len(urls)), thread_name_prefix="conformance")
    try:
        futures: list[Future[_UrlResult]] = [pool.submit(prober.probe, url) for url in urls]
        timeout = None if run is None else max(0.0, run.remaining()) + JOIN_GRACE_S
        done, _ = wait(futures, timeout=timeout)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [f.result() if f in done else prober.cut_short(url) for f, url in zip(futures, urls, strict=True)]
