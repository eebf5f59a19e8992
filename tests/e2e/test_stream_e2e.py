"""The stream API through `llm-gateway dev` with the official `openai` SDK (DESIGN.md §3).

Text and tool calls from the demo LLM of each spec; bad, tampered and revoked tokens; the
client-side built-in; response headers; the persona's system prompt reaching the upstream first.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LeakCollector
from tests.e2e.conftest import RunningStack

SPECS = ["openai", "azure_openai", "gemini", "anthropic"]
SYSTEM_PROMPT = "You are Cara, the e2e persona."
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def mint(api: httpx.Client, llm_id: str, system_prompt: str = SYSTEM_PROMPT) -> dict[str, Any]:
    response = api.post(
        "/v1/auth/session-token",
        json={"personaConfig": {"name": "p", "llmId": llm_id, "systemPrompt": system_prompt}},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sdk(stack: RunningStack, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=token, max_retries=0, timeout=30)


def fake_requests(stack: RunningStack) -> list[dict[str, Any]]:
    assert stack.fake_provider_url
    with httpx.Client(base_url=stack.fake_provider_url, timeout=10) as fake:
        entries: list[dict[str, Any]] = fake.get("/_fake/requests").json()["requests"]
    return entries


@pytest.mark.parametrize("spec", SPECS)
def test_sdk_streams_text_from_each_demo_llm(
    stack: RunningStack, api: httpx.Client, leak_collector: LeakCollector, spec: str
) -> None:
    token = mint(api, stack.llms[spec])["sessionToken"]
    stream = sdk(stack, token).chat.completions.create(
        model="ignored-by-the-gateway",
        messages=[{"role": "user", "content": "Say hello in a few words."}],
        stream=True,
    )
    text, finish = [], []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    answer = "".join(text)
    leak_collector.add(f"sdk stream {spec}", answer)
    assert answer.strip()
    assert finish == ["stop"]


@pytest.mark.parametrize("spec", SPECS)
def test_the_sdks_non_streaming_call_returns_the_same_text_as_streaming(
    stack: RunningStack, api: httpx.Client, leak_collector: LeakCollector, spec: str
) -> None:
    """Issue 9: `stream=False` is one chat.completion object, built from the upstream's stream."""
    token = mint(api, stack.llms[spec])["sessionToken"]
    client = sdk(stack, token)
    messages: Any = [{"role": "user", "content": "Say hello in a few words."}]
    streamed = "".join(
        choice.delta.content or ""
        for chunk in client.chat.completions.create(model="m", messages=messages, stream=True)
        for choice in chunk.choices
    )
    completion = client.chat.completions.create(model="m", messages=messages, stream=False)
    leak_collector.add(f"sdk non-streaming {spec}", completion.model_dump_json())
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == streamed != ""
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    tools = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice="required",
    )  # fmt: skip
    [call] = tools.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments)["city"]  # type: ignore[union-attr]
    assert tools.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("spec", SPECS)
def test_sdk_streams_tool_calls_from_each_demo_llm(stack: RunningStack, api: httpx.Client, spec: str) -> None:
    token = mint(api, stack.llms[spec])["sessionToken"]
    stream = sdk(stack, token).chat.completions.create(
        model="x",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = []
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert "city" in json.loads(calls[0]["arguments"])
    assert finish == ["tool_calls"]


def test_streams_carry_request_id_and_server_timing_and_end_with_done(
    stack: RunningStack, api: httpx.Client
) -> None:
    token = mint(api, stack.llms["openai"])["sessionToken"]
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{stack.api_url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"]
    assert "gateway;dur=" in response.headers["server-timing"]
    assert body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("spec", SPECS)
def test_the_persona_system_prompt_reaches_the_upstream_first(
    stack: RunningStack, api: httpx.Client, spec: str
) -> None:
    prompt = f"System prompt for {spec}: be brief."
    token = mint(api, stack.llms[spec], system_prompt=prompt)["sessionToken"]
    before = len(fake_requests(stack))
    list(
        sdk(stack, token).chat.completions.create(
            model="x",
            messages=[
                {"role": "system", "content": "client system message"},
                {"role": "user", "content": "hi"},
            ],
            stream=True,
        )
    )
    # Only model calls: the shared stack's fake provider also receives webhook deliveries (/hooks).
    seen = [r for r in fake_requests(stack)[before:] if r["path"] != "/hooks"]
    assert len(seen) == 1
    body = seen[0]["body"]
    if spec == "gemini":
        texts = [part["text"] for part in body["systemInstruction"]["parts"]]
        assert texts[0] == prompt
    elif spec == "anthropic":  # the Messages API takes the system prompt apart from the turns
        assert body["system"] == f"{prompt}\n\nclient system message"
        assert body["messages"][0]["role"] == "user"
    else:
        assert body["messages"][0] == {"role": "system", "content": prompt}
        assert body["messages"][1]["content"] == "client system message"


# -- tokens ----------------------------------------------------------------------------------------


def stream_error(stack: RunningStack, token: str) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        list(
            sdk(stack, token).chat.completions.create(
                model="x", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    error = caught.value
    assert error.response.headers["content-type"] == "application/json"
    body = error.response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return error


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["llm"] = "someone-elses-llm"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _flipped_signature(token: str) -> str:
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    return f"{head}.{flipped}"


@pytest.mark.parametrize(
    "make_token",
    [
        lambda _: "garbage",
        lambda _: "a.b.c",
        _tampered,
        _flipped_signature,
    ],
    ids=["garbage", "three-dots", "tampered-claims", "flipped-signature"],
)
def test_bad_and_tampered_tokens_get_401(stack: RunningStack, api: httpx.Client, make_token: Any) -> None:
    token = mint(api, stack.llms["openai"])["sessionToken"]
    error = stream_error(stack, make_token(token))
    assert error.status_code == 401
    assert isinstance(error, openai.AuthenticationError)


def test_missing_bearer_gets_401(stack: RunningStack) -> None:
    response = httpx.post(
        f"{stack.api_url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_missing"


def test_an_api_key_is_not_a_session_token(stack: RunningStack) -> None:
    assert stream_error(stack, stack.api_key).status_code == 401


def test_revoked_token_gets_403(stack: RunningStack, api: httpx.Client) -> None:
    minted = mint(api, stack.llms["openai"])
    assert api.delete(f"/v1/sessions/{minted['sessionId']}").status_code in (200, 204)
    error = stream_error(stack, minted["sessionToken"])
    assert error.status_code == 403
    assert error.response.json()["error"]["code"] == "session_revoked"


def test_customer_client_builtin_gets_409_client_side_llm(stack: RunningStack, api: httpx.Client) -> None:
    token = mint(api, "CUSTOMER_CLIENT_V1")["sessionToken"]
    error = stream_error(stack, token)
    assert error.status_code == 409
    assert error.response.json()["error"]["code"] == "client_side_llm"
