"""The stream endpoint's body (SECURITY 26, issue 9 item 1): every body the gateway cannot use is a
400 ``invalid_request`` naming the wrong field, never an exception that would become a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.domain.chat_body import parse_chat
from llm_gateway.domain.proxy import build_calls, endpoint_specs
from llm_gateway.errors import InvalidRequest
from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import Llm

USER = {"role": "user", "content": "hi"}


def refused(body: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat(body)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_request"
    return caught.value


def fields(error: InvalidRequest) -> list[str]:
    return [d["field"] for d in error.details]


def test_deep_nesting_is_a_400_not_a_recursion_error() -> None:
    error = refused(b"[" * 100_000 + b"]" * 100_000)
    assert "deeper than" in error.message
    nested = (
        b'{"messages": [{"role": "user", "content": "x"}], "tools": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    )
    assert "deeper than" in refused(nested).message


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "user", "content": "\\ud800"}, "messages[0].content"),
        ({"role": "\\ud800", "content": "x"}, "messages[0].role"),
        ({"role": "user", "content": "x", "name": "a\\udfffb"}, "messages[0].name"),
        ({"role": "user", "content": [{"type": "text", "text": "\\ud83d"}]}, "messages[0].content[0].text"),
    ],
)
def test_lone_surrogates_are_refused_at_parse_time_naming_the_field(
    message: dict[str, Any], field: str
) -> None:
    body = json.dumps({"messages": [message]}).replace("\\\\u", "\\u").encode()
    assert field in fields(refused(body))


def test_lone_surrogates_in_tools_and_in_raw_bytes_are_refused_too() -> None:
    tools = b'{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "\\udc00"}}]}'
    assert fields(refused(tools)) == ["tools[0].function.name"]
    raw = b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}'  # a surrogate encoded as UTF-8
    assert fields(refused(raw)) == ["messages[0].content"]


def test_a_valid_surrogate_pair_is_ordinary_text() -> None:
    chat = parse_chat(b'{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}')
    assert chat.messages[0].content == "\N{GRINNING FACE}"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"hello"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_refused(body: bytes) -> None:
    assert "JSON object" in refused(body).message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [USER], "stream": "true"}, "stream"),
        ({"messages": [USER], "temperature": "0.5"}, "temperature"),
        ({"messages": [USER], "max_tokens": "5"}, "max_tokens"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "assistant", "tool_calls": [1]}]}, "messages[0].tool_calls[0]"),
        ({"messages": [USER], "tools": [[]]}, "tools[0]"),
        ({"messages": [USER], "tool_choice": 1}, "tool_choice"),
        ({"messages": [USER], "stream_options": []}, "stream_options"),
    ],
)
def test_wrong_types_name_the_field(body: dict[str, Any], field: str) -> None:
    assert field in fields(refused(json.dumps(body).encode()))


def test_non_finite_numbers_are_refused_even_in_free_form_objects() -> None:
    error = refused(
        b'{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "x": NaN}]}'
    )
    assert fields(error) == ["tools[0].x"]
    assert fields(refused(b'{"messages": [{"role": "user", "content": "x"}], "temperature": Infinity}')) == [
        "temperature"
    ]


def test_messages_keep_only_the_openai_fields_and_drop_the_rest() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}],
                "name": "ann",
                "api_base": "x",
                "url": "y",
            },
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42", "headers": {"x": "y"}},
        ]
    }
    chat = parse_chat(json.dumps(body).encode())
    dumped = [m.model_dump(exclude_none=True) for m in chat.messages]
    assert dumped == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "ann"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]


def test_stream_absent_means_a_single_answer() -> None:
    assert parse_chat(json.dumps({"messages": [USER]}).encode()).stream is False
    assert parse_chat(json.dumps({"messages": [USER], "stream": True}).encode()).stream is True


def test_what_a_spec_cannot_take_is_the_clients_400() -> None:
    llm = Llm.model_validate(
        {"id": "x", "displayName": "g", "llmFormat": "gemini", "urls": [{"url": "https://g.example"}],
         "modelName": "gemini-2.5-flash", "status": "valid", "version": 1}
    )  # fmt: skip
    chat = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": [{"type": "video", "v": 1}]}]}
    )
    with pytest.raises(InvalidRequest) as caught:
        build_calls(endpoint_specs(llm, ["https://g.example"]), chat, "k")
    assert caught.value.status == 400


# --- generated bodies: whatever arrives, parsing answers a request or a 400, and what it accepts
# --- can always be turned into an upstream body (encoded, strict JSON) by every spec.

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "x"])},
    optional={"content": _json, "name": _json, "tool_calls": _json, "tool_call_id": _json, "extra": _json},
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(_message, max_size=3) | _json,
        "stream": _json,
        "temperature": _json,
        "max_tokens": _json,
        "tools": _json,
        "tool_choice": _json,
        "stream_options": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(body=_bodies | _json, spec=st.sampled_from(["openai", "azure_openai", "gemini"]))
def test_any_body_is_a_chat_request_or_a_400_and_a_request_always_encodes(body: Any, spec: str) -> None:
    raw = json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \udXXX escapes
    try:
        chat = parse_chat(raw)
    except InvalidRequest:
        return
    llm = Llm.model_validate(
        {"id": "x", "displayName": "d", "llmFormat": spec, "urls": [{"url": "https://h.example/openai/v1"}],
         "modelName": "m", "status": "valid", "version": 1}
    )  # fmt: skip
    try:
        calls = build_calls(endpoint_specs(llm, ["https://h.example/openai/v1"]), chat, "k")
    except InvalidRequest:
        return
    upstream = json.loads(
        calls[0].body.decode("utf-8"), parse_constant=lambda c: pytest.fail(f"{c} upstream")
    )
    assert isinstance(upstream, dict)
