"""Gemini request building: URLs, auth header, and OpenAI → Gemini body translation."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.providers.gemini import (
    SKIP_THOUGHT_SIGNATURE,
    GeminiRequestError,
    GeminiStreamTranslator,
    build_request,
    stream_url,
    translate_chat,
)

BASE = "https://generativelanguage.googleapis.com"
FULL = f"{BASE}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (BASE, FULL),
        (BASE + "/", FULL),
        (BASE + "/v1beta", FULL),
        (BASE + "/v1beta/", FULL),
        (BASE + "/v1", f"{BASE}/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
        (FULL, FULL),
        (f"{BASE}/v1beta/models/gemini-2.5-flash:streamGenerateContent", FULL),
        (f"{BASE}/v1beta/models/gemini-2.5-flash:generateContent", FULL),
        (f"{BASE}/v1beta/models/gemini-2.5-flash", FULL),
        (f"{BASE}/v1beta/models", FULL),
        # the key never stays in the URL, and alt=sse is forced
        (f"{FULL}&key=AIzaSECRET", FULL),
        (f"{BASE}/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=k&alt=json", FULL),
        (
            "https://proxy.example.com/gemini",
            "https://proxy.example.com/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        ),
    ],
)
def test_stream_url_forms(url: str, expected: str) -> None:
    assert stream_url(url, "gemini-2.5-flash") == expected


def test_stream_url_full_url_keeps_its_model_and_other_query() -> None:
    url = stream_url(f"{BASE}/v1beta/models/gemini-pro:streamGenerateContent?foo=1&KEY=x", "other")
    parts = urlsplit(url)
    assert parts.path == "/v1beta/models/gemini-pro:streamGenerateContent"
    assert parse_qs(parts.query) == {"foo": ["1"], "alt": ["sse"]}


def test_stream_url_model_prefixes() -> None:
    assert (
        stream_url(BASE, "models/gemini-2.0-flash")
        == f"{BASE}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    )
    assert (
        stream_url(BASE, "tunedModels/my-tune")
        == f"{BASE}/v1beta/tunedModels/my-tune:streamGenerateContent?alt=sse"
    )


def _chat(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatRequest.model_validate(fields)


def _body(**fields: Any) -> dict[str, Any]:
    request = build_request(url=BASE, model_name="gemini-2.5-flash", api_key="AIzaKEY", chat=_chat(**fields))
    return json.loads(request.body)


def test_build_request_auth_header_not_url() -> None:
    request = build_request(
        url=f"{FULL}&key=AIzaOLD",
        model_name="gemini-2.5-flash",
        api_key="AIzaKEY-123",
        chat=_chat(),
        extra_headers={"X-Trace": "t1", "x-goog-api-key": "evil", "Authorization": "Bearer x", "Host": "h"},
    )
    assert request.method == "POST"
    assert request.url == FULL
    assert "AIza" not in request.url
    assert request.headers["x-goog-api-key"] == "AIzaKEY-123"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-trace"] == "t1"
    assert "authorization" not in request.headers and "host" not in request.headers
    assert "AIzaKEY-123" not in repr(request)
    assert isinstance(request.body, bytes)


def test_roles_translate() -> None:
    body = _body(
        messages=[
            {"role": "system", "content": "You are Ana."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "You are Ana."}, {"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hello"}]},
        {"role": "model", "parts": [{"text": "Hi!"}]},
        {"role": "user", "parts": [{"text": "Weather?"}]},
    ]
    assert "generationConfig" not in body and "tools" not in body


def test_consecutive_same_role_turns_merge_and_empty_ones_drop() -> None:
    body = _body(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "user", "content": ""},
            {"role": "user", "content": "b"},
        ]
    )
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_system_only_prompt_becomes_user_turn() -> None:
    body = _body(messages=[{"role": "system", "content": "Say hi"}])
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hi"}]}]
    assert "systemInstruction" not in body


def test_tool_round_trip_translation() -> None:
    body = _body(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                        "extra_content": {"google": {"thought_signature": "SIG"}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 20}'},
            {"role": "tool", "tool_call_id": "call_b", "content": "sunny"},
        ]
    )
    user, model, responses = body["contents"]
    assert user["role"] == "user"
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                "thoughtSignature": SKIP_THOUGHT_SIGNATURE,
            },
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}}, "thoughtSignature": "SIG"},
        ],
    }
    assert responses == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 20}}},
            {"functionResponse": {"name": "weather", "response": {"result": "sunny"}}},
        ],
    }


def test_tool_message_without_known_call_is_rejected() -> None:
    with pytest.raises(GeminiRequestError):
        _body(
            messages=[
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "nope", "content": "1"},
            ]
        )


def test_unknown_role_is_rejected() -> None:
    # The chat model refuses it first (400 at parse time); the translation stays defensive.
    chat = ChatRequest.model_construct(messages=[ChatMessage.model_construct(role="narrator", content="x")])
    with pytest.raises(GeminiRequestError):
        build_request(url=BASE, model_name="gemini-2.5-flash", api_key="AIzaKEY", chat=chat)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": ["string", "null"], "description": "City"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def test_tools_and_tool_choice() -> None:
    body = _body(tools=[WEATHER_TOOL, {"type": "web_search"}], tool_choice="required")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Current weather",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"functionCallingConfig": {"mode": "AUTO"}}),
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
        (
            {"type": "function", "function": {"name": "weather"}},
            {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
        ),
        (None, None),
    ],
)
def test_tool_choice_modes(choice: Any, config: Any) -> None:
    body = _body(tools=[WEATHER_TOOL], tool_choice=choice)
    assert body.get("toolConfig") == config


def test_tool_choice_without_tools_is_ignored() -> None:
    assert "toolConfig" not in _body(tool_choice="required")


def test_v1_uses_openapi_parameters() -> None:
    payload = translate_chat(_chat(tools=[WEATHER_TOOL]), api_version="v1")
    declaration = payload["tools"][0]["functionDeclarations"][0]
    assert "parametersJsonSchema" not in declaration
    assert declaration["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string", "nullable": True, "description": "City"}},
        "required": ["city"],
    }


def test_generation_config_precedence() -> None:
    request = build_request(
        url=BASE,
        model_name="m",
        api_key="k",
        chat=_chat(max_tokens=500, temperature=0.2),
        temperature=0.9,
        max_tokens=100,
    )
    assert json.loads(request.body)["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 100}
    request = build_request(
        url=BASE, model_name="m", api_key="k", chat=_chat(), temperature=0.9, max_tokens=64
    )
    assert json.loads(request.body)["generationConfig"] == {"temperature": 0.9, "maxOutputTokens": 64}
    request = build_request(url=BASE, model_name="m", api_key="k", chat=_chat(max_completion_tokens=32))
    assert json.loads(request.body)["generationConfig"] == {"maxOutputTokens": 32}


def test_image_parts() -> None:
    body = _body(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ]
    )
    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"fileData": {"fileUri": "https://example.com/cat.png"}},
    ]


def test_thought_signature_survives_the_round_trip() -> None:
    """A signature handed out by the translator comes back as thoughtSignature (Gemini 3 needs it)."""
    event = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "S1"}],
                }
            }
        ]
    }
    translator = GeminiStreamTranslator(model="m")
    out = translator.feed(b"data: " + json.dumps(event).encode() + b"\r\n\r\n") + translator.finish()
    first = json.loads(out.split(b"\n\n")[0][len(b"data: ") :])
    call = first["choices"][0]["delta"]["tool_calls"][0]
    body = _body(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "{}"},
        ]
    )
    assert body["contents"][1]["parts"][0] == {
        "functionCall": {"name": "f", "args": {"a": 1}},
        "thoughtSignature": "S1",
    }
    assert body["contents"][2]["parts"][0]["functionResponse"]["name"] == "f"
