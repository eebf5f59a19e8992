"""The promises every registered ``Provider`` keeps, whatever its spec.

One test per promise, parameterised over the registry, so a new spec inherits them all and a rule
that drifts between specs fails here: error codes per status (on the stream path and in a
validation report alike), Retry-After parsing and its cap, the extra-header filter, redaction of
the key in every message and evidence string, and a URL hint when a URL cannot be used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from llm_gateway.domain.conformance import EndpointConfig, HttpPort, run_conformance
from llm_gateway.errors import ErrorCode
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import FORBIDDEN_HEADERS, LlmFormat
from llm_gateway.providers.base import EndpointSpec, Provider, ProviderConfigError
from llm_gateway.providers.common import MAX_RETRY_AFTER_S
from llm_gateway.providers.dispatch import build_call, classify_status, make_relay
from llm_gateway.providers.registry import PROVIDERS
from tests.conftest import CANARY

URL = "https://llm.example/v1"
CHAT = ChatRequest(messages=[ChatMessage(role="user", content="hi")])
#: A key no "looks like a key" pattern matches: only the known-secret redaction can catch it.
PLAIN_KEY = "tenant-secret-9f8e7d6c5b4a3f2e1d0c"


def provider_ids(provider: Provider) -> str:
    return str(provider.llm_format)


@pytest.fixture(params=list(PROVIDERS.values()), ids=provider_ids)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


def spec(provider: Provider, **over: Any) -> EndpointSpec:
    return EndpointSpec(provider.llm_format, over.pop("url", URL), "model-x", **over)


def error_bodies(status: int, message: str = "something went wrong") -> dict[str, bytes]:
    """The error shapes upstreams send: none, an HTML page, OpenAI's and Google's JSON."""
    return {
        "empty": b"",
        "html": f"<html><body>{status}</body></html>".encode(),
        "openai": json.dumps(
            {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
        ).encode(),
        "google": json.dumps({"error": {"code": status, "message": message, "status": "UNKNOWN"}}).encode(),
    }


# -- the registry -------------------------------------------------------------------------------


def test_every_format_has_exactly_its_provider() -> None:
    assert set(PROVIDERS) == set(LlmFormat)
    for llm_format, provider in PROVIDERS.items():
        assert provider.llm_format == llm_format


# -- error codes --------------------------------------------------------------------------------

STATUS_CODES = {
    401: ErrorCode.UPSTREAM_UNAUTHORIZED,
    403: ErrorCode.UPSTREAM_UNAUTHORIZED,
    408: ErrorCode.UPSTREAM_TIMEOUT,
    429: ErrorCode.UPSTREAM_RATE_LIMITED,
    500: ErrorCode.UPSTREAM_SERVER_ERROR,
    502: ErrorCode.UPSTREAM_SERVER_ERROR,
    503: ErrorCode.UPSTREAM_SERVER_ERROR,
    504: ErrorCode.UPSTREAM_TIMEOUT,  # the upstream's own gateway timed out
    301: ErrorCode.UPSTREAM_PROTOCOL_ERROR,  # redirects are never followed
}


@pytest.mark.parametrize("status", sorted(STATUS_CODES))
def test_a_status_means_the_same_code_for_every_spec_and_every_body(provider: Provider, status: int) -> None:
    for name, body in error_bodies(status).items():
        error = provider.classify_error(status, body, {})
        assert error.code == STATUS_CODES[status], (name, error)
        assert error.hint, "every classified error tells the customer what to do"


def test_a_404_naming_the_model_is_model_not_found(provider: Provider) -> None:
    body = json.dumps(
        {"error": {"code": 404, "message": "models/model-x is not found", "status": "NOT_FOUND"}}
    )
    assert provider.classify_error(404, body.encode()).code == ErrorCode.UPSTREAM_MODEL_NOT_FOUND
    bare = provider.classify_error(404, b"<html>Not Found</html>").code
    assert bare in (ErrorCode.UPSTREAM_MODEL_NOT_FOUND, ErrorCode.UPSTREAM_BAD_REQUEST)


@pytest.mark.parametrize("status", [*sorted(STATUS_CODES), 400, 404])
def test_the_stream_path_and_the_validator_agree_on_the_code(provider: Provider, status: int) -> None:
    body = error_bodies(status)["openai"]
    on_stream, _ = classify_status(spec(provider), status, body, {}, ("k",))
    report = _probe_once(provider, status, {"content-type": "application/json"}, body)
    assert on_stream == provider.classify_error(status, body).code
    assert report.error_code == on_stream, [c.id for c in report.checks if c.status == "fail"]


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "99999"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "Fri, 31 Dec 2999 23:59:59 GMT"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_parsed_and_capped_alike(
    provider: Provider, headers: dict[str, str], seconds: float | None
) -> None:
    for status in (429, 503):
        error = provider.classify_error(status, b"", headers)
        assert error.retry_after_s == seconds
        assert classify_status(spec(provider), status, b"", headers, ()) == (error.code, seconds)


# -- extra headers ------------------------------------------------------------------------------

RESERVED = {
    **{name.title(): "evil" for name in FORBIDDEN_HEADERS},
    "Accept": "application/json",
    "Proxy-Authorization": "Basic evil",
    "Proxy-Connection": "keep-alive",
    "X-Amz-Security-Token": "evil",
    "X-Amz-Date": "20240101T000000Z",
}
UNSAFE = {"X-Crlf": "a\r\nInjected: 1", "X-Lf": "a\nb", "X-Nul": "a\x00b", "X-Bad\r\nName": "v"}


def test_extra_headers_never_override_auth_framing_or_routing(provider: Provider) -> None:
    extra = {**RESERVED, **UNSAFE, "X-Keep": "kept"}
    request = build_call(spec(provider, headers=extra), CHAT, PLAIN_KEY)
    sent = {name.lower(): value for name, value in request.headers.items()}
    assert sent.get("x-keep") == "kept"
    for name in [*RESERVED, *UNSAFE]:
        assert sent.get(name.lower()) != extra[name], f"{name} passed through"
    assert not [n for n in sent if n.startswith(("proxy-", "x-amz-"))]
    assert not [v for n, v in request.headers.items() for ch in "\r\n\x00" if ch in n or ch in v]
    assert sent.get("accept") == "text/event-stream"
    assert [v for v in request.headers.values() if PLAIN_KEY in v], (
        "the key travels in the provider's auth header"
    )


# -- redaction ----------------------------------------------------------------------------------


def _bodies_with(key: str) -> Iterator[tuple[int, dict[str, str], bytes]]:
    padding = "x" * 497  # puts the key across the 512-byte evidence cut
    message = f"Incorrect API key provided: {key}. {padding}{key}"
    for status in (400, 401, 404, 429, 500):
        for body in error_bodies(status, message).values():
            yield status, {"content-type": "application/json"}, body.replace(b"500", key.encode())
    yield 301, {"location": f"https://other.example/v1?key={key}"}, b""
    sse = f'data: {{"error": {{"message": "{message}", "code": 500, "status": "INTERNAL"}}}}\n\n'
    yield 200, {"content-type": "text/event-stream"}, sse.encode()
    yield 200, {"content-type": "text/event-stream"}, f"data: not json {key}\n\n{padding}{key}\n".encode()
    yield 200, {"content-type": f"text/plain; key={key}"}, f'{{"token": "{key}"}}\n'.encode()


@pytest.mark.parametrize("key", [CANARY, PLAIN_KEY], ids=["key-shaped", "plain"])
def test_the_key_never_appears_in_a_message_or_evidence(provider: Provider, key: str) -> None:
    for status, headers, body in _bodies_with(key):
        checks = provider.check_response(status, headers, body, secrets=(key,))
        shown = [text for c in checks for text in (c.message, c.hint, c.evidence) if text]
        assert shown
        assert not [text for text in shown if key in text or key[:12] in text], (status, body[:80])
        assert all(len((c.evidence or "").encode()) <= 512 for c in checks)
        if status >= 300:
            assert key not in provider.classify_error(status, body, headers, secrets=(key,)).message


def test_the_key_never_appears_in_a_live_report(provider: Provider) -> None:
    echo = json.dumps(
        {"error": {"code": 401, "message": f"bad key {PLAIN_KEY}", "status": "UNAUTHENTICATED"}}
    )
    report = _probe_once(provider, 401, {"content-type": "application/json"}, echo.encode(), key=PLAIN_KEY)
    assert PLAIN_KEY not in report.model_dump_json()


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["not-a-url", "https://", "/v1/chat/completions"])
def test_an_unusable_url_is_a_config_error_with_the_providers_hint(provider: Provider, url: str) -> None:
    assert provider.url_hint.startswith("Use ")
    with pytest.raises(ProviderConfigError) as error:
        provider.build_request(spec(provider, url=url), CHAT, "k")
    assert str(error.value)
    report = _probe_once(provider, 200, {}, b"", url=url)
    first = report.checks[0]
    assert (first.id, first.status, first.hint) == ("url", "fail", provider.url_hint)
    assert report.error_code == ErrorCode.UPSTREAM_BAD_REQUEST


# -- the relay ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"data: {not json}\n\n", b"<html>oops</html>"])
def test_a_stream_that_never_finishes_properly_is_a_protocol_error(provider: Provider, body: bytes) -> None:
    relay = make_relay(spec(provider), CHAT)
    relay.feed(body)
    relay.finish()
    assert not relay.complete
    assert relay.failure == ErrorCode.UPSTREAM_PROTOCOL_ERROR


# -- helpers ------------------------------------------------------------------------------------


class _Reply:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code, self.headers, self._body = status, headers, body

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        yield self._body


class _Client:
    def __init__(self, reply: _Reply) -> None:
        self.reply = reply

    @contextmanager
    def stream(self, method: str, url: str, **_: Any) -> Iterator[_Reply]:
        yield self.reply


class _OpenGuard:
    def check(self, url: str) -> None:
        return None


def _probe_once(
    provider: Provider,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    key: str = "k",
    url: str = URL,
) -> Any:
    config = EndpointConfig(llm_format=provider.llm_format, urls=(url,), model_name="model-x")
    http = HttpPort(_Client(_Reply(status, headers, body)), _OpenGuard())
    return run_conformance(config, key, http, now=lambda: datetime(2025, 1, 1, tzinfo=UTC))
