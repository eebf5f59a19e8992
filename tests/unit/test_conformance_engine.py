"""The conformance engine with an injected HTTP port: skip logic, error mapping, timing, redaction."""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from llm_gateway.adapters.probe_http import ProbeHttpClient
from llm_gateway.domain.conformance import (
    WRONG_KEY,
    EndpointConfig,
    HttpPort,
    public_url,
    run_conformance,
)
from llm_gateway.errors import EndpointBlocked, EndpointUnresolvable
from llm_gateway.models.llm import LlmFormat, Timeouts
from llm_gateway.models.report import Report

KEY = "sk-unit-test-key-0123456789"
URL = "https://api.example.com/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    """One scripted answer: status, headers, body chunks with the seconds before each, or an error."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    raise_before: BaseException | None = None
    raise_after: BaseException | None = None
    header_delay: float = 0.0


class FakeResponse:
    def __init__(self, reply: Reply, clock: Clock) -> None:
        self.reply = reply
        self.clock = clock
        self.status_code = reply.status
        self.headers: Mapping[str, str] = reply.headers

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body as sent (the probe client reads it undecoded: identity encoding only)."""
        for delay, chunk in self.reply.chunks:
            self.clock.now += delay
            yield chunk
        if self.reply.raise_after is not None:
            raise self.reply.raise_after


class FakeClient:
    def __init__(self, clock: Clock, by_key: dict[str, Reply]) -> None:
        self.clock = clock
        self.by_key = by_key
        self.calls: list[tuple[str, dict[str, str], tuple[float, ...]]] = []

    @contextmanager
    def stream(
        self, method: str, url: str, *, content: bytes, headers: Mapping[str, str], timeout: tuple[float, ...]
    ) -> Iterator[FakeResponse]:
        self.calls.append((url, dict(headers), timeout))
        values = " ".join(headers.values())
        reply = next((r for k, r in self.by_key.items() if k in values), Reply(status=599))
        self.clock.now += reply.header_delay
        if reply.raise_before is not None:
            raise reply.raise_before
        yield FakeResponse(reply, self.clock)


class Guard:
    def __init__(self, error: EndpointBlocked | None = None) -> None:
        self.error = error
        self.checked: list[str] = []

    def check(self, url: str) -> None:
        self.checked.append(url)
        if self.error is not None:
            raise self.error


def openai_stream(*, content: str = "ok") -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    return (
        chunk({"role": "assistant", "content": ""})
        + chunk({"content": content})
        + chunk({}, "stop")
        + b"data: [DONE]\n\n"
    )


UNAUTHORIZED = Reply(
    status=401,
    headers={"content-type": "application/json"},
    chunks=[(0, b'{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":null}}')],
)


def probe(
    replies: dict[str, Reply],
    *,
    guard: Guard | None = None,
    urls: tuple[str, ...] = (URL,),
    llm_format: LlmFormat = LlmFormat.OPENAI,
    timeouts: Timeouts | None = None,
) -> tuple[Report, FakeClient]:
    clock = Clock()
    client = FakeClient(clock, replies)
    config = EndpointConfig(llm_format=llm_format, urls=urls, model_name="m", timeouts=timeouts)
    # The fake stands in for httpx; the real adapter types its failures, as in production.
    http = HttpPort(ProbeHttpClient(client), guard or Guard())
    report = run_conformance(config, KEY, http, monotonic=clock)
    return report, client


def _caused(error: Exception, cause: BaseException) -> Exception:
    """An exception as httpx raises it: chained to the OS error underneath."""
    error.__cause__ = cause
    return error


def status_of(report: Report) -> dict[str, str]:
    return {c.id: c.status.value for c in report.checks}


def assert_invariants(report: Report) -> None:
    failures = [c for c in report.checks if c.status.value == "fail"]
    assert report.compatible is (not failures)
    assert all(c.hint for c in failures)
    assert KEY not in report.model_dump_json()
    if failures:
        assert report.error_code


# -------------------------------------------------------------------------------------------


def test_a_good_stream_passes_and_times_the_first_token() -> None:
    good = Reply(chunks=[(0.05, openai_stream()[:40]), (0.2, openai_stream()[40:])])
    report, client = probe({KEY: good, WRONG_KEY: UNAUTHORIZED})
    assert_invariants(report)
    assert report.compatible and report.error_code is None
    assert status_of(report)["auth_probe"] == "pass"
    assert report.timings.ttft_ms == pytest.approx(250.0)
    assert report.timings.ttfb_ms == pytest.approx(0.0)
    url, headers, timeout = client.calls[0]
    assert url == "https://api.example.com/v1/chat/completions"
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert timeout == (3.0, 20.0, 20.0, 3.0)  # (connect, read, write, pool) from the default Timeouts


def test_probe_request_is_small_and_streamed() -> None:
    captured: dict[str, bytes] = {}

    class Capturing(FakeClient):
        @contextmanager
        def stream(self, method: str, url: str, *, content: bytes, headers: Mapping[str, str],
                   timeout: tuple[float, ...], deadline_s: float | None = None) -> Iterator[FakeResponse]:  # fmt: skip
            captured.setdefault("body", content)
            captured.setdefault("deadline_s", deadline_s)
            with super().stream(method, url, content=content, headers=headers, timeout=timeout) as r:
                yield r

    clock = Clock()
    client = Capturing(clock, {KEY: Reply(chunks=[(0, openai_stream())]), WRONG_KEY: UNAUTHORIZED})
    config = EndpointConfig(llm_format=LlmFormat.OPENAI, urls=(URL,), model_name="m")
    run_conformance(config, KEY, HttpPort(client, Guard()), monotonic=clock)
    body = json.loads(captured["body"])
    assert body["stream"] is True and body["max_tokens"] == 16 and body["model"] == "m"
    assert captured["deadline_s"], "every exchange has a wall-clock deadline"


def test_blocked_address_skips_everything_after_it_and_never_connects() -> None:
    guard = Guard(EndpointBlocked("The endpoint address is not publicly routable (loopback).",
                                  details={"reason": "loopback"}))  # fmt: skip
    report, client = probe({KEY: Reply()}, guard=guard)
    assert_invariants(report)
    statuses = status_of(report)
    assert statuses["address"] == "fail"
    assert report.error_code == "endpoint_blocked"
    assert not client.calls
    after = [c for c in report.checks if c.id not in ("url", "address")]
    assert after and all(c.status.value == "skip" for c in after)


def test_unresolvable_host_is_a_dns_failure() -> None:
    guard = Guard(EndpointUnresolvable("no"))
    report, _ = probe({}, guard=guard)
    address = next(c for c in report.checks if c.id == "address")
    assert "DNS" in address.message and address.category.value == "network"
    assert report.error_code == "upstream_unreachable"


@pytest.mark.parametrize(
    ("error", "words", "code"),
    [
        (httpx.ConnectTimeout("timed out"), "connect timeout", "upstream_timeout"),
        (httpx.ReadTimeout("timed out"), "no response headers", "upstream_timeout"),
        (
            _caused(
                httpx.ConnectError("[Errno 111] Connection refused"), ConnectionRefusedError(111, "refused")
            ),
            "refused",
            "upstream_unreachable",
        ),
        (httpx.RemoteProtocolError("illegal status line"), "valid HTTP response", "upstream_protocol_error"),
        (RuntimeError("boom"), "could not be completed", "upstream_unreachable"),
    ],
)
def test_transport_errors_before_a_response_map_to_network_checks(
    error: Exception, words: str, code: str
) -> None:
    report, client = probe({KEY: Reply(raise_before=error)})
    assert_invariants(report)
    connection = next(c for c in report.checks if c.id == "connection")
    assert connection.status.value == "fail" and connection.category.value == "network"
    assert words in connection.message and connection.hint
    assert report.error_code == code
    statuses = status_of(report)
    assert statuses["http_status"] == "skip" and statuses["auth_probe"] == "skip"
    assert len(client.calls) == 1  # no auth probe after a failed connection


def test_tls_failure_is_named() -> None:
    error = httpx.ConnectError("handshake failed")
    error.__cause__ = ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED")
    report, _ = probe({KEY: Reply(raise_before=error)})
    connection = next(c for c in report.checks if c.id == "connection")
    assert "TLS" in connection.message and "certificate" in (connection.hint or "")


def test_endpoint_blocked_raised_by_the_transport_is_reported() -> None:
    report, _ = probe(
        {KEY: Reply(raise_before=EndpointBlocked("x", details={"reason": "non_public_address"}))}
    )
    assert report.error_code == "endpoint_blocked"


def test_rejected_real_key_skips_the_auth_probe() -> None:
    report, client = probe({KEY: UNAUTHORIZED})
    assert_invariants(report)
    http_status = next(c for c in report.checks if c.id == "http_status")
    assert (http_status.status.value, http_status.category.value) == ("fail", "auth")
    assert status_of(report)["auth_probe"] == "skip"
    assert report.error_code == "upstream_unauthorized"
    assert len(client.calls) == 1


def test_unknown_model_still_probes_auth() -> None:
    not_found = Reply(status=404, headers={"content-type": "application/json"}, chunks=[
        (0, b'{"error":{"message":"The model `m` does not exist","type":"invalid_request_error",'
            b'"param":null,"code":"model_not_found"}}')])  # fmt: skip
    report, client = probe({KEY: not_found, WRONG_KEY: UNAUTHORIZED})
    assert_invariants(report)
    assert report.error_code == "upstream_model_not_found"
    assert status_of(report)["auth_probe"] == "pass" and len(client.calls) == 2
    assert report.details and report.details["specConforms"] is True  # a well-formed error


def test_accepting_a_wrong_key_is_a_warning_only() -> None:
    good = Reply(chunks=[(0, openai_stream())])
    report, _ = probe({KEY: good, WRONG_KEY: good})
    assert report.compatible
    auth = next(c for c in report.checks if c.id == "auth_probe")
    assert auth.status.value == "warn" and auth.hint


def test_a_cut_stream_fails_once_and_skips_the_end_of_stream_rules() -> None:
    cut = Reply(chunks=[(0, openai_stream()[:150])], raise_after=httpx.RemoteProtocolError("peer closed"))
    report, _ = probe({KEY: cut, WRONG_KEY: UNAUTHORIZED})
    assert_invariants(report)
    failures = [c for c in report.checks if c.status.value == "fail"]
    assert [(c.id, c.category.value) for c in failures] == [("stream_complete", "network")]
    assert report.error_code == "upstream_protocol_error"
    assert status_of(report)["done_terminator"] == "skip"


def test_slow_first_token_is_a_latency_warning() -> None:
    slow = Reply(chunks=[(2.5, openai_stream())])
    report, _ = probe({KEY: slow, WRONG_KEY: UNAUTHORIZED})
    latency = next(c for c in report.checks if c.id == "latency")
    assert latency.status.value == "warn" and latency.category.value == "latency"
    assert report.compatible


def test_no_first_token_within_the_budget_is_a_timeout() -> None:
    drip = Reply(chunks=[(0.4, b"data: {") for _ in range(20)])
    report, _ = probe({KEY: drip, WRONG_KEY: UNAUTHORIZED}, timeouts=Timeouts(first_token_ms=1000))
    assert_invariants(report)
    complete = next(c for c in report.checks if c.id == "stream_complete")
    assert complete.status.value == "fail" and "first token" in complete.message
    assert report.error_code == "upstream_timeout"
    assert status_of(report)["sse_framing"] == "skip"


def test_total_deadline_is_capped() -> None:
    _, client = probe({KEY: Reply(chunks=[(0, openai_stream())]), WRONG_KEY: UNAUTHORIZED},
                      timeouts=Timeouts(total_ms=600_000, first_token_ms=60_000, idle_ms=60_000))  # fmt: skip
    assert client.calls[0][2][1] == 30.0  # the read timeout never exceeds the 30 s probe cap


def test_redirect_fails_with_the_target_redacted() -> None:
    redirect = Reply(status=302, headers={"location": "https://other.example.com/v1?key=" + KEY})
    report, client = probe({KEY: redirect})
    assert_invariants(report)
    status = next(c for c in report.checks if c.id == "http_status")
    assert status.status.value == "fail" and "redirect" in status.message and status.hint
    assert "other.example.com" in status.message
    assert report.error_code == "upstream_protocol_error"
    assert status_of(report)["auth_probe"] == "skip" and len(client.calls) == 1


def test_an_unusable_url_fails_the_url_check() -> None:
    report, client = probe({}, urls=("https://api.example.com/not-chat",))
    assert_invariants(report)
    assert status_of(report)["url"] == "fail" and not client.calls
    assert all(c.status.value == "skip" for c in report.checks if c.id != "url")


def test_every_url_is_probed_and_named() -> None:
    good = Reply(chunks=[(0, openai_stream())])
    second = "https://backup.example.com/v1"
    report, client = probe({KEY: good, WRONG_KEY: UNAUTHORIZED}, urls=(URL, second))
    ids = [c.id for c in report.checks]
    assert "http_status" in ids and "http_status@2" in ids
    assert all("backup.example.com" in c.message for c in report.checks if c.id.endswith("@2"))
    assert report.details and len(report.details["urls"]) == 2
    assert len(client.calls) == 6  # per URL: the probe, the wrong-key probe, the continuation probe


def test_secrets_never_reach_the_report() -> None:
    echo = Reply(status=401, headers={"content-type": "application/json"},
                 chunks=[(0, json.dumps({"error": {"message": f"bad key {KEY}"}}).encode())])  # fmt: skip
    report, _ = probe({KEY: echo})
    assert KEY not in report.model_dump_json()


def test_gemini_endpoint_has_no_key_in_the_report() -> None:
    stream = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},'
              b'"finishReason":"STOP"}],"usageMetadata":{"totalTokenCount":2}}\r\n\r\n')  # fmt: skip
    wrong = Reply(status=400, headers={"content-type": "application/json"}, chunks=[(0, json.dumps(
        {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                   "details": [{"reason": "API_KEY_INVALID"}]}}).encode())])  # fmt: skip
    report, client = probe(
        {KEY: Reply(chunks=[(0, stream)]), WRONG_KEY: wrong},
        urls=(f"https://generativelanguage.googleapis.com?key={KEY}",),
        llm_format=LlmFormat.GEMINI,
    )
    assert_invariants(report)
    assert report.compatible, [c for c in report.checks if c.status.value == "fail"]
    assert "key=" not in report.endpoint and "alt=sse" in report.endpoint
    assert client.calls[0][1]["x-goog-api-key"] == KEY
    assert status_of(report)["auth_probe"] == "pass"


def test_public_url_strips_credentials() -> None:
    assert (
        public_url("https://u:p@h.example.com:8443/x?key=1&alt=sse&API-Key=2&code=3&x-api-key=4")
        == "https://h.example.com:8443/x?key=[REDACTED]&alt=sse&API-Key=[REDACTED]&code=[REDACTED]&x-api-key=[REDACTED]"
    )


def test_a_compressed_answer_is_refused_unread_not_inflated() -> None:
    """Probes ask for identity encoding; a gzip body (a bomb inflates 1,000-fold, a whole chunk at
    a time) fails the stream check naming the encoding, with not one byte of it read."""
    bomb = gzip.compress(b"\0" * 1_000_000)
    replies = {
        KEY: Reply(
            headers={"content-type": "text/event-stream", "content-encoding": "gzip"}, chunks=[(0, bomb)]
        ),
        WRONG_KEY: UNAUTHORIZED,
    }
    report, _ = probe(replies)
    assert_invariants(report)
    (stream,) = [c for c in report.checks if c.id == "stream_complete"]
    assert stream.status.value == "fail" and "after 0 bytes" in stream.message
    assert "Content-Encoding: gzip" in (stream.evidence or "") and "identity" in (stream.evidence or "")
