"""The stream app under attack (issue 9, items 1, 3 and 7), over real loopback sockets: bodies it
cannot use are 400s, anything unexpected is a JSON 500 with the request id, a request carrying this
deployment's hop marker is 508 before any lookup, every upstream request carries the marker, and
``stream: false`` is one ``chat.completion`` object."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import pytest

from llm_gateway.domain import proxy as proxy_module
from llm_gateway.domain import streaming
from llm_gateway.domain.loops import HOP_HEADER
from llm_gateway.models.llm import LlmFormat
from tests.conftest import CANARY
from tests.integration.conftest import AwsStack
from tests.integration.test_stream_faults import FAST, Gateway, fake, faults, gateway  # noqa: F401

USER = [{"role": "user", "content": "hello"}]


def post(gateway: Gateway, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:  # noqa: F811
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"{gateway.url}/v1/chat/completions",
            content=content,
            headers={"Content-Type": "application/json", **headers},
        )
    gateway.leaks.add(f"hardening answer {response.status_code}", response.text)
    return response


def spec_llm(gateway: Gateway, spec: LlmFormat, **kwargs: Any) -> str:  # noqa: F811
    model = {LlmFormat.GEMINI: "gemini-2.5-flash", LlmFormat.AZURE_OPENAI: "fake-deployment"}
    return gateway.llm(llm_format=spec, model=model.get(spec, "fake-model"), **kwargs)


BAD_BODIES = {
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "lone surrogate in content": b'{"messages":[{"role":"user","content":"\\ud800"}]}',
    "lone surrogate in role": b'{"messages":[{"role":"\\ud800","content":"x"}]}',
    "lone surrogate in name": b'{"messages":[{"role":"user","content":"x","name":"\\udfff"}]}',
    "lone surrogate in tools": (
        b'{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"\\ud800"}}]}'
    ),
    "not an object": b"[1, 2, 3]",
    "wrong type": b'{"messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}',
    "invalid UTF-8": b'{"messages":[{"role":"user","content":"\xff"}]}',
    "not JSON": b"{",
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_a_body_the_gateway_cannot_use_is_a_400_naming_the_field(gateway: Gateway, name: str) -> None:  # noqa: F811
    token = gateway.token(gateway.llm())
    response = post(gateway, BAD_BODIES[name], Authorization=f"Bearer {token}", **{"X-Request-Id": "req-1"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-1"
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    if "surrogate" in name:
        field = {"content": "messages[0].content", "role": "messages[0].role", "name": "messages[0].name"}
        expected = field.get(name.rsplit(" ", 1)[1], "tools[0].function.name")
        assert [d["field"] for d in error["details"]] == [expected]
    assert gateway.upstream_requests() == [], "nothing went upstream"


def test_an_unexpected_error_is_a_json_500_with_the_request_id_and_a_redacted_log(
    gateway: Gateway,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = gateway.token(gateway.llm())

    def broken(body: bytes) -> Any:
        raise RuntimeError(f"a bug that quotes {CANARY}")

    monkeypatch.setattr(proxy_module, "parse_chat", broken)
    response = post(
        gateway, {"messages": USER}, Authorization=f"Bearer {token}", **{"X-Request-Id": "req-500"}
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "req-500"
    logged = capsys.readouterr().out
    line = next(json.loads(x) for x in logged.splitlines() if "failed unexpectedly" in x)
    assert line["request_id"] == "req-500" and line["error_type"] == "RuntimeError"
    assert any("app.py" in frame for frame in line["where"])
    assert CANARY not in logged


def test_a_failure_after_the_first_byte_ends_the_stream_with_an_error_event(
    gateway: Gateway,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = gateway.token(gateway.llm())
    original = streaming.OpenStream.body

    async def breaks_midway(self: streaming.OpenStream) -> AsyncGenerator[bytes, None]:
        async for piece in original(self):
            yield piece
            raise RuntimeError("bug after the first byte")

    monkeypatch.setattr(streaming.OpenStream, "body", breaks_midway)
    answer = gateway.stream(token)
    assert answer.status == 200
    assert answer.errors()[-1]["code"] == "internal_error"
    assert not answer.body.endswith(b"data: [DONE]\n\n")


def test_a_request_carrying_our_hop_marker_is_508_before_any_lookup(
    aws: AwsStack,
    gateway: Gateway,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = gateway.token(gateway.llm())
    looked_up: list[str] = []

    async def no_lookups() -> Any:
        looked_up.append("proxy built")
        raise AssertionError("no lookup for a looping request")

    runtime = gateway.server.app.state.runtime
    runtime.proxy = None
    monkeypatch.setattr(runtime, "ready_proxy", no_lookups)
    marker = aws.registry.hop_marker.headers
    for headers in ({HOP_HEADER: marker[HOP_HEADER]}, {"Via": f"1.1 proxy.example, {marker['Via'][4:]}"}):
        response = post(
            gateway, {"messages": USER, "stream": True}, Authorization=f"Bearer {token}", **headers
        )
        assert response.status_code == 508
        assert response.json()["error"]["code"] == "loop_detected"
    assert looked_up == [] and gateway.upstream_requests() == []


@pytest.mark.parametrize("spec", list(LlmFormat))
def test_every_upstream_request_carries_this_deployments_hop_marker(
    aws: AwsStack,
    gateway: Gateway,  # noqa: F811
    spec: LlmFormat,
) -> None:
    answer = gateway.stream(gateway.token(spec_llm(gateway, spec)))
    assert answer.status == 200
    [request] = gateway.upstream_requests()
    marker = aws.registry.hop_marker.headers
    assert request["headers"]["x-llm-gateway-hop"] == marker[HOP_HEADER]
    assert request["headers"]["via"] == marker["Via"]


def test_an_upstream_that_answers_508_is_the_gateway_behind_an_alias(gateway: Gateway) -> None:  # noqa: F811
    answer = gateway.stream(gateway.token(gateway.llm(headers=faults("status-508"))))
    assert answer.status == 508
    assert answer.json_error()["code"] == "loop_detected"
    assert len(gateway.upstream_requests()) == 1, "a loop is never retried"


# -- stream: false -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(LlmFormat))
@pytest.mark.parametrize("stream_field", [{"stream": False}, {}])
def test_a_non_streaming_request_gets_one_chat_completion_with_the_streamed_text(
    gateway: Gateway,  # noqa: F811
    spec: LlmFormat,
    stream_field: dict[str, Any],
) -> None:
    token = gateway.token(spec_llm(gateway, spec))
    streamed = gateway.stream(token).text()
    response = post(gateway, {"messages": USER, **stream_field}, Authorization=f"Bearer {token}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "x-request-id" in response.headers and "server-timing" in response.headers
    completion = response.json()
    assert completion["object"] == "chat.completion"
    [choice] = completion["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == streamed != ""
    assert choice["finish_reason"] == "stop"
    assert completion["usage"]["completion_tokens"] > 0
    upstream = gateway.upstream_requests()[-1]
    assert upstream["body"].get("stream", True) is not False, "the upstream is always called streaming"


def test_a_non_streaming_tool_call_is_assembled(gateway: Gateway) -> None:  # noqa: F811
    token = gateway.token(gateway.llm())
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    response = post(
        gateway,
        {"messages": USER, "tools": [tool], "tool_choice": "required"},
        Authorization=f"Bearer {token}",
    )
    assert response.status_code == 200, response.text
    [choice] = response.json()["choices"]
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert choice["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("status-401", 502, "upstream_unauthorized"),
        ("reset:2", 502, "upstream_server_error"),  # after the first byte: still a real status here
        ("mid-stream-error", 502, "upstream_server_error"),
    ],
)
def test_a_failing_non_streaming_answer_is_a_json_error_with_a_real_status(
    gateway: Gateway,  # noqa: F811
    fault: str,
    status: int,
    code: str,
) -> None:
    token = gateway.token(gateway.llm(headers=faults(fault, **{"x-fake-chunks": "6"})))
    response = post(gateway, {"messages": USER, "stream": False}, Authorization=f"Bearer {token}")
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert "data:" not in response.text


def test_a_stalled_non_streaming_answer_ends_in_a_504(gateway: Gateway) -> None:  # noqa: F811
    llm = gateway.llm(headers=faults("stall:2"), timeouts={**FAST, "idleMs": 500})
    response = post(gateway, {"messages": USER}, Authorization=f"Bearer {gateway.token(llm)}")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
