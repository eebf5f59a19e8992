"""Every way a probe can fail has its own hint, and the hint fits the failure (issue 11, item 11).

Table-driven: each row makes the engine see one failure mode through the fake HTTP port and names
the check that must fail and words its hint must contain. Across the table, two different modes
never share a hint (the same mode seen through two specs may).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from llm_gateway.adapters.probe_http import ProbeHttpClient
from llm_gateway.domain.conformance import EndpointConfig, HttpPort, run_conformance
from llm_gateway.domain.conformance.budget import RunBudget
from llm_gateway.errors import EndpointBlocked, EndpointUnresolvable
from llm_gateway.models.llm import LlmFormat, Timeouts
from llm_gateway.models.report import Report
from tests.unit.test_conformance_engine import (
    KEY,
    UNAUTHORIZED,
    URL,
    WRONG_KEY,
    Clock,
    FakeClient,
    Guard,
    Reply,
    probe,
)

JSON = {"content-type": "application/json"}


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def stream(
    *words: str, done: bool = True, error: dict[str, Any] | None = None, error_first: bool = False
) -> bytes:
    body = chunk({"role": "assistant", "content": ""})
    if error is not None and error_first:
        return body + b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
    body += b"".join(chunk({"content": w}) for w in words)
    if error is not None:
        return body + b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
    return body + chunk({}, "stop") + (b"data: [DONE]\n\n" if done else b"")


def openai_error(status: int, message: str, type_: str, code: str | None = None) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Reply(status=status, headers=JSON, chunks=[(0, json.dumps(body).encode())])


def caused(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def gemini_after_tokens() -> Report:
    body = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"o"}]}}]}\r\n\r\n'
            b'data: {"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}\r\n\r\n')  # fmt: skip
    wrong = Reply(status=400, headers=JSON, chunks=[(0, json.dumps(
        {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                   "details": [{"reason": "API_KEY_INVALID"}]}}).encode())])  # fmt: skip
    report, _ = probe({KEY: Reply(chunks=[(0, body)]), WRONG_KEY: wrong},
                      urls=("https://generativelanguage.googleapis.com",), llm_format=LlmFormat.GEMINI)  # fmt: skip
    return report


def over_budget() -> Report:
    clock = Clock()
    drip = Reply(chunks=[(1.0, b"data: {") for _ in range(60)])
    client = FakeClient(clock, {KEY: drip, WRONG_KEY: UNAUTHORIZED})
    config = EndpointConfig(llm_format=LlmFormat.OPENAI, urls=(URL,), model_name="m")
    return run_conformance(config, KEY, HttpPort(ProbeHttpClient(client), Guard()),
                           budget=RunBudget(4, "the 4 s budget of a test"), monotonic=clock)  # fmt: skip


def one(reply: Reply, **kwargs: Any) -> Callable[[], Report]:
    return lambda: probe({KEY: reply, WRONG_KEY: UNAUTHORIZED}, **kwargs)[0]


@dataclass(frozen=True)
class Mode:
    name: str
    make: Callable[[], Report]
    check: str
    words: tuple[str, ...]


MODES = [
    # Error answers before the first byte, per status class.
    Mode("redirect (3xx)", one(Reply(status=302, headers={"location": "https://other.example.com/v1"})),
         "http_status", ("final URL", "redirect")),
    Mode("key rejected (401/403)", one(UNAUTHORIZED), "http_status", ("rejected the API key",)),
    Mode("unknown model or deployment (404)",
         one(openai_error(404, "The model `m` does not exist", "invalid_request_error", "model_not_found")),
         "http_status", ("model", "deployment")),
    Mode("wrong path (404)", one(Reply(status=404, headers={"content-type": "text/html"}, chunks=[(0, b"<h1>404</h1>")])),
         "http_status", ("path",)),
    Mode("wrong method (405)", one(openai_error(405, "Method Not Allowed", "invalid_request_error")),
         "http_status", ("POST",)),
    Mode("request refused (other 4xx)",
         one(openai_error(400, "Unsupported parameter: 'max_tokens'", "invalid_request_error")),
         "http_status", ("rejected", "max_tokens")),
    Mode("rate limited (429)", one(openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded")),
         "http_status", ("rate limit",)),
    Mode("quota exhausted (429)", one(openai_error(429, "You exceeded your quota", "insufficient_quota",
                                                    "insufficient_quota")), "http_status", ("quota",)),
    Mode("server error (5xx)", one(openai_error(500, "The server had an error", "server_error")),
         "http_status", ("server error",)),
    Mode("timeout status (408/504)", one(openai_error(504, "Gateway timeout", "timeout")),
         "http_status", ("timeout status",)),
    Mode("error body not JSON", one(Reply(status=500, headers={"content-type": "text/plain"}, chunks=[(0, b"oops")])),
         "error_body", ("JSON body",)),
    # Errors inside a 200 stream.
    Mode("error event after tokens", one(Reply(chunks=[(0, stream("o", "k", error={"message": "overloaded",
                                                                                 "type": "server_error"}))])),
         "inband_error", ("started the answer", "failed while generating")),
    Mode("error event after tokens", gemini_after_tokens, "mid_stream_error", ("started the answer",)),
    Mode("rate limit after tokens", one(Reply(chunks=[(0, stream("o", error={"message": "slow down",
                                                                           "code": "rate_limit_exceeded"}))])),
         "inband_error", ("started the answer", "rate-limit")),
    Mode("content filter after tokens", one(Reply(chunks=[(0, stream("o", error={"message": "filtered",
                                                                               "code": "invalid_prompt"}))])),
         "inband_error", ("started the answer", "content filter")),
    Mode("error event before any token", one(Reply(chunks=[(0, stream(error={"message": "no", "type": "server_error"},
                                                                      error_first=True))])),
         "inband_error", ("non-2xx",)),
    # Streams that do not follow the protocol.
    Mode("stream cut without terminator", one(Reply(chunks=[(0, stream("o", "k", done=False))])),
         "done_terminator", ("[DONE]",)),
    Mode("connection broke mid-stream", one(Reply(chunks=[(0, stream("o")[:150])],
                                                  raise_after=httpx.RemoteProtocolError("peer closed"))),
         "stream_complete", ("Keep the connection open",)),
    Mode("wrong content type", one(Reply(headers=JSON, chunks=[(0, stream("o", "k"))])),
         "content_type", ("text/event-stream",)),
    Mode("no content type", one(Reply(headers={}, chunks=[(0, stream("o", "k"))])),
         "content_type", ("Content-Type: text/event-stream",)),
    Mode("no incremental delivery", one(Reply(chunks=[(3.0, stream("a", "b", "c", "d"))])),
         "incremental", ("held back", "buffering")),
    Mode("answer far too long", one(Reply(chunks=[(0, stream("o") + b": " + b"x" * (2 * 1024 * 1024) + b"\n")])),
         "stream_complete", ("max_tokens",)),
    # Below HTTP.
    Mode("DNS", lambda: probe({}, guard=Guard(EndpointUnresolvable("no address")))[0], "address", ("DNS",)),
    Mode("blocked address", lambda: probe({}, guard=Guard(EndpointBlocked("loopback", details={"reason": "loopback"})))[0],
         "address", ("public https",)),
    Mode("connection refused", one(Reply(raise_before=caused(httpx.ConnectError("refused"),
                                                             ConnectionRefusedError(111, "refused")))),
         "connection", ("listen",)),
    Mode("connect timeout", one(Reply(raise_before=httpx.ConnectTimeout("timed out"))),
         "connection", ("firewall",)),
    Mode("TLS", one(Reply(raise_before=caused(httpx.ConnectError("handshake"),
                                              ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED")))),
         "connection", ("certificate",)),
    Mode("not HTTP", one(Reply(raise_before=httpx.RemoteProtocolError("illegal status line"))),
         "connection", ("HTTP/1.1",)),
    Mode("reset before a response", one(Reply(raise_before=httpx.ReadError("connection reset"))),
         "connection", ("without answering",)),
    Mode("no response headers in time", one(Reply(raise_before=httpx.ReadTimeout("timed out"))),
         "connection", ("no response headers",)),
    Mode("no first token in time", one(Reply(chunks=[(0.4, b"data: {") for _ in range(20)]),
                                       timeouts=Timeouts(first_token_ms=1000)),
         "stream_complete", ("no token in time",)),
    Mode("stream stalled", one(Reply(chunks=[(0, chunk({"content": "o"}))], raise_after=httpx.ReadTimeout("timed out"))),
         "stream_complete", ("stopped mid-answer",)),
    Mode("stream too slow overall", one(Reply(chunks=[(0.4, chunk({"content": "o"})) for _ in range(20)]),
                                        timeouts=Timeouts(total_ms=2000)),
         "stream_complete", ("too slowly",)),
    Mode("run budget ran out", over_budget, "stream_complete", ("too slow for the 4 s budget of a test",)),
    Mode("unusable URL", lambda: probe({}, urls=("https://api.example.com/not-chat",))[0], "url", ("/v1",)),
]  # fmt: skip


@pytest.mark.parametrize("mode", MODES, ids=[f"{m.name}:{m.check}" for m in MODES])
def test_each_failure_mode_fails_its_check_with_a_fitting_hint(mode: Mode) -> None:
    report = mode.make()
    check = next(c for c in report.checks if c.id == mode.check)
    assert check.status.value == "fail", (
        check.message,
        [c.id for c in report.checks if c.status.value == "fail"],
    )
    assert check.hint, check
    for word in mode.words:
        assert word in check.hint, (mode.name, check.hint)
    assert (
        "well-formed chat-completions request" not in check.hint or mode.name == "request refused (other 4xx)"
    )


def test_different_failure_modes_never_share_a_hint() -> None:
    hints: dict[str, str] = {}
    for mode in MODES:
        report = mode.make()
        hint = next(c.hint for c in report.checks if c.id == mode.check)
        assert hint
        if mode.name in hints:
            assert hints[mode.name] == hint, f"{mode.name} has two hints"
        hints[mode.name] = hint
    by_hint: dict[str, list[str]] = {}
    for name, hint in hints.items():
        by_hint.setdefault(hint, []).append(name)
    assert [names for names in by_hint.values() if len(names) > 1] == []
