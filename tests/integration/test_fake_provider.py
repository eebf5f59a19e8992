"""The fake provider over real loopback sockets: each spec's happy path, errors, tools and every fault."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_gateway_fake_provider import FakeProviderHandle, start_in_thread
from llm_gateway_fake_provider.cli import main as cli_main
from llm_gateway_fake_provider.cli import usage_text
from llm_gateway_fake_provider.completion import words_for

KEY = "fake-key"
OPENAI_AUTH = {"Authorization": f"Bearer {KEY}"}
AZURE_AUTH = {"api-key": KEY}
GEMINI_AUTH = {"x-goog-api-key": KEY}
CHAT = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "say hi"}]}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "say hi"}]}]}
AZURE_CLASSIC = "/openai/deployments/fake-deployment/chat/completions?api-version=2024-10-21"
GEMINI_SSE = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
EXPECTED_TEXT = "".join(words_for(5))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderHandle]:
    with start_in_thread(port=0) as handle:
        yield handle


@pytest.fixture
def client(fake: FakeProviderHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as http:
        http.post("/_fake/reset").raise_for_status()
        yield http


# --- helpers -----------------------------------------------------------------------------------


def sse_data(body: str) -> list[str]:
    """The data values of each dispatched event (WHATWG rules that matter here: LF/CRLF, comments)."""
    events: list[str] = []
    for block in re.split(r"\r\n\r\n|\n\n", body):
        lines = [ln[5:].removeprefix(" ") for ln in re.split(r"\r\n|\n", block) if ln.startswith("data:")]
        if lines:
            events.append("\n".join(lines))
    return events


def openai_stream(client: httpx.Client, path: str = "/v1/chat/completions", **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("json", CHAT)
    kwargs.setdefault("headers", OPENAI_AUTH)
    return client.post(path, **kwargs)


def read_until(events: int, stream: Iterator[bytes]) -> bytes:
    """Read from a streaming response's raw iterator until ``events`` complete SSE events arrived."""
    buffer = b""
    while len(re.findall(rb"\r\n\r\n|\n\n", buffer)) < events:
        buffer += next(stream)
    return buffer


def wait_for(predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def connections(client: httpx.Client) -> dict[str, Any]:
    return client.get("/_fake/connections").json()


# --- happy streams -----------------------------------------------------------------------------


def test_openai_stream_is_lf_framed_with_role_content_finish_usage_and_done(client: httpx.Client) -> None:
    body = {**CHAT, "stream_options": {"include_usage": True}}
    response = openai_stream(client, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert "\r" not in response.text
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == EXPECTED_TEXT
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert finishes.count(None) == len(finishes) - 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == chunks[-1]["usage"]["prompt_tokens"] + 5


def test_openai_stream_without_include_usage_has_no_usage(client: httpx.Client) -> None:
    chunks = [json.loads(d) for d in sse_data(openai_stream(client).text)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_chunk_count_and_pacing_come_from_headers(client: httpx.Client) -> None:
    many = openai_stream(client, headers={**OPENAI_AUTH, "x-fake-chunks": "100"})
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for d in sse_data(many.text)[:-1]]
    assert len([c for c in contents if c]) == 100
    started = time.monotonic()
    openai_stream(client, headers={**OPENAI_AUTH, "x-fake-chunks": "5", "x-fake-interval-ms": "40"})
    # role + 5 content + finish = 7 events, 6 gaps of 40 ms.
    assert time.monotonic() - started >= 0.22


def test_max_tokens_truncates_with_length_finish(client: httpx.Client) -> None:
    response = openai_stream(
        client, json={**CHAT, "max_tokens": 2}, headers={**OPENAI_AUTH, "x-fake-chunks": "10"}
    )
    chunks = [json.loads(d) for d in sse_data(response.text)[:-1]]
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) == 2
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_openai_non_stream_returns_chat_completion(client: httpx.Client) -> None:
    response = openai_stream(client, json={**CHAT, "stream": False})
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == EXPECTED_TEXT


def test_azure_classic_stream_has_prompt_filter_chunk_and_content_filter_results(
    client: httpx.Client,
) -> None:
    body = {"messages": CHAT["messages"], "stream": True, "stream_options": {"include_usage": True}}
    response = client.post(AZURE_CLASSIC, json=body, headers=AZURE_AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    first = chunks[0]
    assert first["object"] == "" and first["choices"] == [] and first["id"] == ""
    assert first["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    content = [c for c in chunks[1:] if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert all(c["choices"][0]["content_filter_results"]["violence"]["severity"] == "safe" for c in content)
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == EXPECTED_TEXT
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert list(chunks[1]) == sorted(chunks[1]), "Azure sorts keys"


def test_azure_old_api_version_gets_no_usage_chunk(client: httpx.Client) -> None:
    body = {"messages": CHAT["messages"], "stream": True, "stream_options": {"include_usage": True}}
    path = "/openai/deployments/fake-deployment/chat/completions?api-version=2024-06-01"
    chunks = [json.loads(d) for d in sse_data(client.post(path, json=body, headers=AZURE_AUTH).text)[:-1]]
    assert all("usage" not in c for c in chunks)


def test_azure_classic_requires_api_version(client: httpx.Client) -> None:
    response = client.post(
        "/openai/deployments/fake-deployment/chat/completions", json=CHAT, headers=AZURE_AUTH
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}


@pytest.mark.parametrize("auth", [AZURE_AUTH, OPENAI_AUTH], ids=["api-key", "bearer"])
def test_azure_v1_accepts_api_key_and_bearer(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post(
        "/openai/v1/chat/completions", json={**CHAT, "model": "fake-deployment"}, headers=auth
    )
    assert response.status_code == 200
    assert sse_data(response.text)[-1] == "[DONE]"


def test_gemini_sse_stream_is_crlf_framed_without_done(client: httpx.Client) -> None:
    response = client.post(GEMINI_SSE, json=GEMINI_BODY, headers=GEMINI_AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.text.startswith("data: {") and response.text.endswith("}\r\n\r\n")
    assert "\n\n" not in response.text.replace("\r\n\r\n", "")
    chunks = [json.loads(d) for d in sse_data(response.text)]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == EXPECTED_TEXT
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None] * 4 + ["STOP"]
    assert all(c["modelVersion"] == "gemini-2.5-flash" and c["responseId"] for c in chunks)
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 5


def test_gemini_key_query_param_v1_path_and_json_array_mode(client: httpx.Client) -> None:
    response = client.post(f"/v1/models/gemini-2.5-flash:streamGenerateContent?key={KEY}", json=GEMINI_BODY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    array = response.json()
    assert isinstance(array, list) and len(array) == 5
    assert array[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_generate_content_is_one_json_reply(client: httpx.Client) -> None:
    response = client.post("/v1beta/models/fake-model:generateContent", json=GEMINI_BODY, headers=GEMINI_AUTH)
    reply = response.json()
    assert reply["candidates"][0]["content"]["parts"][0]["text"] == EXPECTED_TEXT
    assert reply["candidates"][0]["finishReason"] == "STOP"


def test_model_lists(client: httpx.Client) -> None:
    assert "fake-model" in {m["id"] for m in client.get("/v1/models", headers=OPENAI_AUTH).json()["data"]}
    assert "fake-deployment" in {
        m["id"] for m in client.get("/openai/v1/models", headers=AZURE_AUTH).json()["data"]
    }
    names = {m["name"] for m in client.get("/v1beta/models", headers=GEMINI_AUTH).json()["models"]}
    assert "models/gemini-2.5-flash" in names
    assert client.get("/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401


# --- keys and unknown models -------------------------------------------------------------------


def test_openai_key_errors(client: httpx.Client) -> None:
    wrong = openai_stream(client, headers={"Authorization": "Bearer sk-wrong"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/json; charset=utf-8"
    error = wrong.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key" and error["param"] is None
    assert "sk-wrong" not in wrong.text
    missing = openai_stream(client, headers={})
    assert missing.status_code == 401
    assert "didn't provide an API key" in missing.json()["error"]["message"]


def test_azure_key_error_is_the_gateway_shape(client: httpx.Client) -> None:
    response = client.post(AZURE_CLASSIC, json=CHAT, headers={"api-key": "wrong"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["apim-request-id"]
    error = response.json()["error"]
    assert error["code"] == "401"
    assert error["message"].startswith("Access denied due to invalid subscription key or wrong API endpoint.")
    assert set(error) == {"code", "message"}


def test_gemini_key_errors(client: httpx.Client) -> None:
    wrong = client.post(GEMINI_SSE, json=GEMINI_BODY, headers={"x-goog-api-key": "wrong"})
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert {d.get("reason") for d in error["details"]} >= {"API_KEY_INVALID"}
    assert "wrong" not in wrong.text
    missing = client.post(GEMINI_SSE, json=GEMINI_BODY)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"


def test_unknown_models_get_each_providers_404(client: httpx.Client) -> None:
    openai_404 = openai_stream(client, json={**CHAT, "model": "gpt-9"})
    assert openai_404.status_code == 404
    assert openai_404.json()["error"]["code"] == "model_not_found"
    azure_404 = client.post(AZURE_CLASSIC.replace("fake-deployment", "nope"), json=CHAT, headers=AZURE_AUTH)
    assert azure_404.status_code == 404
    assert azure_404.json()["error"]["code"] == "DeploymentNotFound"
    gemini_404 = client.post(
        GEMINI_SSE.replace("gemini-2.5-flash", "gemini-9"), json=GEMINI_BODY, headers=GEMINI_AUTH
    )
    assert gemini_404.status_code == 404
    assert gemini_404.json()["error"] == {
        "code": 404,
        "message": gemini_404.json()["error"]["message"],
        "status": "NOT_FOUND",
    }
    assert openai_stream(client, json={**CHAT, "model": "fake-anything"}).status_code == 200


def test_configured_models_are_known(client: httpx.Client) -> None:
    assert openai_stream(client, json={**CHAT, "model": "gpt-4o-mini"}).status_code == 200


def test_unknown_paths_answer_in_provider_shape(client: httpx.Client) -> None:
    assert client.post("/v1/chat/completion", json=CHAT).json()["error"]["message"].startswith("Invalid URL")
    assert client.post("/openai/nope", json=CHAT).json()["error"]["code"] == "404"
    assert client.post("/v1beta/nope", json=CHAT).json()["error"]["status"] == "NOT_FOUND"


def test_bad_requests(client: httpx.Client) -> None:
    no_messages = openai_stream(client, json={"model": "fake-model", "stream": True})
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"
    not_json = client.post("/v1/chat/completions", content=b"{", headers=OPENAI_AUTH)
    assert not_json.status_code == 400
    no_contents = client.post(GEMINI_SSE, json={}, headers=GEMINI_AUTH)
    assert no_contents.status_code == 400


# --- tools -------------------------------------------------------------------------------------


def test_openai_tool_call_deltas(client: httpx.Client) -> None:
    response = openai_stream(client, json={**CHAT, "tools": [WEATHER_TOOL]})
    chunks = [json.loads(d) for d in sse_data(response.text)[:-1]]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert all(isinstance(tc["index"], int) for tc in calls)
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["type"] == "function"
    assert len(calls) > 2, "arguments arrive in fragments"
    arguments = json.loads("".join(tc["function"]["arguments"] for tc in calls))
    assert arguments == {"city": "fake", "days": 1}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_tool_result_turn_gets_text(client: httpx.Client) -> None:
    messages = [
        *CHAT["messages"],
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "x"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "sunny"},
    ]
    response = openai_stream(client, json={**CHAT, "messages": messages, "tools": [WEATHER_TOOL]})
    chunks = [json.loads(d) for d in sse_data(response.text)[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_azure_tool_call(client: httpx.Client) -> None:
    response = client.post(AZURE_CLASSIC, json={**CHAT, "tools": [WEATHER_TOOL]}, headers=AZURE_AUTH)
    chunks = [json.loads(d) for d in sse_data(response.text)[:-1]][1:]
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_gemini_function_call_is_one_whole_part(client: httpx.Client) -> None:
    tools = [
        {
            "functionDeclarations": [
                {"name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
            ]
        }
    ]
    response = client.post(GEMINI_SSE, json={**GEMINI_BODY, "tools": tools}, headers=GEMINI_AUTH)
    chunks = [json.loads(d) for d in sse_data(response.text)]
    call = chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "get_weather", "args": {"city": "fake", "days": 1}}
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


# --- content-level faults ----------------------------------------------------------------------

SPEC_CALLS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "openai": ("/v1/chat/completions", CHAT, OPENAI_AUTH),
    "azure": (AZURE_CLASSIC, CHAT, AZURE_AUTH),
    "gemini": (GEMINI_SSE, GEMINI_BODY, GEMINI_AUTH),
}


def call(client: httpx.Client, spec: str, fault: str, **extra_headers: str) -> httpx.Response:
    path, body, auth = SPEC_CALLS[spec]
    return client.post(path, json=body, headers={**auth, "x-fake-fault": fault, **extra_headers})


@pytest.mark.parametrize("spec", list(SPEC_CALLS))
def test_content_type_faults(client: httpx.Client, spec: str) -> None:
    assert call(client, spec, "wrong-content-type").headers["content-type"] == "application/json"
    assert "content-type" not in call(client, spec, "no-content-type").headers
    ndjson = call(client, spec, "ndjson")
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    lines = ndjson.text.splitlines()
    assert all(not line.startswith("data:") for line in lines)
    assert all(isinstance(json.loads(line), dict) for line in lines)


@pytest.mark.parametrize("spec", ["openai", "azure"])
def test_no_done_fault(client: httpx.Client, spec: str) -> None:
    data = sse_data(call(client, spec, "no-done").text)
    assert "[DONE]" not in data
    assert json.loads(data[-1])["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("spec", list(SPEC_CALLS))
def test_invalid_json_fault(client: httpx.Client, spec: str) -> None:
    bad = []
    for value in sse_data(call(client, spec, "invalid-json").text):
        if value == "[DONE]":
            continue
        try:
            json.loads(value)
        except ValueError:
            bad.append(value)
    assert len(bad) == 1


@pytest.mark.parametrize("spec", ["openai", "azure"])
def test_mid_stream_error_openai_family(client: httpx.Client, spec: str) -> None:
    response = call(client, spec, "mid-stream-error")
    assert response.status_code == 200
    data = sse_data(response.text)
    assert "[DONE]" not in data
    assert any(
        json.loads(d)["choices"] and json.loads(d)["choices"][0]["delta"].get("content") for d in data[:-1]
    )
    assert json.loads(data[-1])["error"]["type"] == "server_error"


def test_mid_stream_error_gemini_is_bare_json_after_events(client: httpx.Client) -> None:
    response = call(client, "gemini", "mid-stream-error")
    assert response.status_code == 200
    events, _, tail = response.text.rpartition("\r\n\r\n")
    assert sse_data(events + "\r\n\r\n")
    assert not tail.startswith("data:")
    assert json.loads(tail)["error"]["status"] == "INTERNAL"


# --- status faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(SPEC_CALLS))
@pytest.mark.parametrize("status", [401, 404, 429, 500, 503])
def test_status_faults(client: httpx.Client, spec: str, status: int) -> None:
    response = call(client, spec, f"status-{status}")
    expected = 400 if (spec, status) == ("gemini", 401) else status
    assert response.status_code == expected
    error = response.json()["error"]
    assert isinstance(error["message"], str)
    if spec == "gemini":
        assert error["code"] == expected and isinstance(error["status"], str)
    elif spec == "azure":
        assert isinstance(error["code"], str)
    else:
        assert {"type", "param", "code"} <= set(error)
    if status == 429:
        assert response.headers["retry-after"] == "1"


def test_fault_times_fails_then_succeeds(client: httpx.Client) -> None:
    headers = {"x-fake-fault-times": "2", "x-fake-scenario": "flaky-1"}
    statuses = [call(client, "openai", "status-503", **headers).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    other = call(client, "openai", "status-503", **{**headers, "x-fake-scenario": "flaky-2"})
    assert other.status_code == 503


def test_unknown_fault_is_rejected(client: httpx.Client) -> None:
    response = call(client, "openai", "no-such-fault")
    assert response.status_code == 400
    assert "unknown fault" in response.json()["error"]["message"]


def test_fault_selected_by_model_and_deployment_name(client: httpx.Client) -> None:
    no_done = openai_stream(client, json={**CHAT, "model": "fake-fault-no-done"})
    assert "[DONE]" not in sse_data(no_done.text)
    azure = client.post(
        AZURE_CLASSIC.replace("fake-deployment", "fake-fault-status-503"), json=CHAT, headers=AZURE_AUTH
    )
    assert azure.status_code == 503
    gemini = client.post(
        GEMINI_SSE.replace("gemini-2.5-flash", "fake-fault-wrong-content-type"),
        json=GEMINI_BODY,
        headers=GEMINI_AUTH,
    )
    assert gemini.headers["content-type"] == "application/json"
    assert client.get("/_fake/requests").json()["requests"][0]["fault"] == "no-done"


# --- transport-level faults --------------------------------------------------------------------


def test_stall_sends_n_events_then_goes_silent_and_disconnect_is_seen(
    fake: FakeProviderHandle, client: httpx.Client
) -> None:
    timeout = httpx.Timeout(10, read=0.5)
    with httpx.Client(base_url=fake.url, timeout=timeout) as http:
        headers = {**OPENAI_AUTH, "x-fake-fault": "stall:2"}
        with http.stream("POST", "/v1/chat/completions", json=CHAT, headers=headers) as response:
            assert response.status_code == 200
            stream = response.iter_raw()
            received = read_until(2, stream)
            with pytest.raises(httpx.ReadTimeout):
                received += next(stream)
            assert len(sse_data(received.decode())) == 2
    assert wait_for(lambda: connections(client)["aborted"] == 1, 1.0) < 1.0
    assert connections(client)["active"] == 0


def test_stall_zero_sends_headers_only(fake: FakeProviderHandle) -> None:
    with httpx.Client(base_url=fake.url, timeout=httpx.Timeout(10, read=0.3)) as http:
        headers = {**GEMINI_AUTH, "x-fake-fault": "stall:0"}
        with http.stream("POST", GEMINI_SSE, json=GEMINI_BODY, headers=headers) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                next(response.iter_raw())


def test_client_disconnect_is_observed_within_a_second(
    fake: FakeProviderHandle, client: httpx.Client
) -> None:
    headers = {**OPENAI_AUTH, "x-fake-chunks": "1000", "x-fake-interval-ms": "100"}
    with (
        httpx.Client(base_url=fake.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=CHAT, headers=headers) as response,
    ):
        # Keep the iterator referenced: dropping it would make httpx close the connection early.
        stream = response.iter_raw()
        read_until(2, stream)
        snapshot = connections(client)
        assert snapshot["active"] == 1, snapshot
    assert wait_for(lambda: connections(client)["aborted"] == 1, 1.0) < 1.0
    assert connections(client)["closed"] == 0


def test_completed_stream_counts_as_closed(client: httpx.Client) -> None:
    openai_stream(client)
    deadline = time.monotonic() + 2  # the server books the close just after the last byte
    while (counts := connections(client))["active"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (counts["opened"], counts["closed"], counts["aborted"], counts["active"]) == (1, 1, 0, 0)


@pytest.mark.parametrize("spec", list(SPEC_CALLS))
def test_reset_after_n_events_is_a_real_tcp_reset(fake: FakeProviderHandle, spec: str) -> None:
    path, body, auth = SPEC_CALLS[spec]
    received = b""
    with httpx.Client(base_url=fake.url, timeout=10) as http:
        with (
            pytest.raises(httpx.ReadError, match="reset"),
            http.stream("POST", path, json=body, headers={**auth, "x-fake-fault": "reset:2"}) as response,
        ):
            assert response.status_code == 200
            for piece in response.iter_raw():
                received += piece
        assert len(sse_data(received.decode())) == 2
        wait_for(lambda: http.get("/_fake/connections").json()["reset"] >= 1, 1.0)


def test_reset_zero_resets_before_any_response(fake: FakeProviderHandle) -> None:
    with httpx.Client(base_url=fake.url, timeout=10) as http, pytest.raises(httpx.TransportError):
        http.post("/v1/chat/completions", json=CHAT, headers={**OPENAI_AUTH, "x-fake-fault": "reset:0"})


def test_drip_sends_one_byte_at_a_time(fake: FakeProviderHandle) -> None:
    with httpx.Client(base_url=fake.url, timeout=10) as http:
        with http.stream(
            "POST", "/v1/chat/completions", json=CHAT, headers={**OPENAI_AUTH, "x-fake-fault": "drip"}
        ) as response:
            stream = response.iter_raw()
            first = next(stream)
            started = time.monotonic()
            second = next(stream)
            gap = time.monotonic() - started
        assert (first, second) == (b"d", b"a")
        assert 0.8 <= gap < 2.0
        fast = http.post("/v1/chat/completions", json=CHAT, headers={**OPENAI_AUTH, "x-fake-fault": "drip:0"})
        assert sse_data(fast.text)[-1] == "[DONE]"


def test_delay_first_byte(client: httpx.Client) -> None:
    started = time.monotonic()
    response = call(client, "openai", "delay-first-byte:300")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_accept_any_key(client: httpx.Client) -> None:
    for spec in SPEC_CALLS:
        path, body, _ = SPEC_CALLS[spec]
        headers = {"Authorization": "Bearer wrong", "api-key": "wrong", "x-goog-api-key": "wrong"}
        response = client.post(path, json=body, headers={**headers, "x-fake-fault": "accept-any-key"})
        assert response.status_code == 200, spec


def test_redirect_points_to_another_origin_and_records_followers(client: httpx.Client) -> None:
    response = call(client, "openai", "redirect")
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert location.host != httpx.URL(str(client.base_url)).host
    assert location.path.startswith("/_fake/redirect-target/")
    target = client.post(location.copy_with(host="127.0.0.1").path, json={})
    assert target.json() == {"redirected": True}
    hits = [r for r in client.get("/_fake/requests").json()["requests"] if r["path"].startswith("/_fake/")]
    assert len(hits) == 1


@pytest.mark.parametrize("spec", list(SPEC_CALLS))
def test_echo_key_in_error(client: httpx.Client, spec: str) -> None:
    path, body, _ = SPEC_CALLS[spec]
    secret = "sk-secret-value-1234"
    headers = {"Authorization": f"Bearer {secret}", "api-key": secret, "x-goog-api-key": secret}
    response = client.post(path, json=body, headers={**headers, "x-fake-fault": "echo-key-in-error"})
    assert response.status_code == (400 if spec == "gemini" else 401)
    assert secret in response.text


# --- observability -----------------------------------------------------------------------------


def test_requests_are_recorded_with_secrets_fingerprinted(client: httpx.Client) -> None:
    openai_stream(client, headers={**OPENAI_AUTH, "x-trace": "t1"})
    client.post(f"/v1beta/models/fake-model:generateContent?key={KEY}", json=GEMINI_BODY)
    log = client.get("/_fake/requests")
    assert KEY not in log.text
    first, second = log.json()["requests"]
    assert first["path"] == "/v1/chat/completions" and first["spec"] == "openai"
    assert first["headers"]["authorization"].startswith("Bearer sha256:")
    assert first["headers"]["x-trace"] == "t1"
    assert first["body"]["messages"] == CHAT["messages"]
    assert second["query"]["key"].startswith("sha256:")
    client.post("/_fake/reset")
    assert client.get("/_fake/requests").json()["requests"] == []


# --- official SDK ------------------------------------------------------------------------------


def test_openai_sdk_streams_from_openai_route(fake: FakeProviderHandle) -> None:
    sdk = openai.OpenAI(base_url=f"{fake.url}/v1", api_key=KEY, max_retries=0)
    stream = sdk.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == EXPECTED_TEXT
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{fake.url}/v1", api_key="bad", max_retries=0).models.list()


def test_openai_sdk_streams_from_azure_v1_route(fake: FakeProviderHandle) -> None:
    sdk = openai.OpenAI(base_url=f"{fake.url}/openai/v1", api_key=KEY, max_retries=0)
    stream = sdk.chat.completions.create(
        model="fake-deployment",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == EXPECTED_TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_azure_sdk_streams_from_classic_route(fake: FakeProviderHandle) -> None:
    sdk = openai.AzureOpenAI(azure_endpoint=fake.url, api_key=KEY, api_version="2024-10-21", max_retries=0)
    stream = sdk.chat.completions.create(
        model="fake-deployment", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == EXPECTED_TEXT


def test_openai_sdk_sees_mid_stream_error(fake: FakeProviderHandle) -> None:
    sdk = openai.OpenAI(base_url=f"{fake.url}/v1", api_key=KEY, max_retries=0)
    stream = sdk.chat.completions.create(
        model="fake-fault-mid-stream-error", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_openai_sdk_tool_call(fake: FakeProviderHandle) -> None:
    sdk = openai.OpenAI(base_url=f"{fake.url}/v1", api_key=KEY, max_retries=0)
    with sdk.chat.completions.stream(
        model="fake-model", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    ) as stream:
        final = stream.get_final_completion()
    tool_call = final.choices[0].message.tool_calls[0]
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "fake", "days": 1}


# --- command line ------------------------------------------------------------------------------


def test_cli_usage_and_errors() -> None:
    text = usage_text("http://127.0.0.1:1234", "k")
    for fragment in (
        "/v1/chat/completions",
        "/openai/deployments/",
        "/openai/v1/",
        ":streamGenerateContent?alt=sse",
    ):
        assert fragment in text
    assert cli_main(["--chunks", "0"]) == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert cli_main(["--port", str(busy.getsockname()[1])]) == 1


def test_scripted_faults_hit_a_fraction_of_a_models_requests_over_http(client: httpx.Client) -> None:
    """For an LLM already registered (the gateway sends no x-fake headers): PUT /_fake/faults."""
    rule = {"model": "fake-model", "fault": "status-500", "ratio": 0.3, "when": "please fail"}
    assert client.put("/_fake/faults", json=rule).status_code == 200
    try:
        failing = {**CHAT, "messages": [{"role": "user", "content": "please fail"}]}
        statuses = [
            client.post("/v1/chat/completions", json=failing, headers=OPENAI_AUTH).status_code
            for _ in range(10)
        ]
        assert statuses == [200, 200, 200, 500, 200, 200, 500, 200, 200, 500]
        assert client.post("/v1/chat/completions", json=CHAT, headers=OPENAI_AUTH).status_code == 200
        listed = client.get("/_fake/faults").json()["faults"]["fake-model"]
        assert listed["requests"] == 10 and listed["ratio"] == 0.3
        assert client.put("/_fake/faults", json={"fault": "no-such-fault"}).status_code == 400
        client.delete("/_fake/faults", params={"model": "fake-model"})
        client.put("/_fake/faults", json={"fault": "status-503", "unless": "say hi"})  # any model
        assert client.post("/v1/chat/completions", json=CHAT, headers=OPENAI_AUTH).status_code == 200
        assert client.post("/v1/chat/completions", json=failing, headers=OPENAI_AUTH).status_code == 503
    finally:
        client.delete("/_fake/faults")
    assert client.get("/_fake/faults").json() == {"faults": {}}
