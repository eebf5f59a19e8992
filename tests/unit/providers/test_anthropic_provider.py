"""The Anthropic Messages spec: request building, the stream translated to OpenAI chunks on the
recorded streams in tests/fixtures/transcripts/anthropic, the wire checks, and the error vocabulary
(``overloaded_error`` before the first byte is retried, after it is the one error event)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.domain.failover import open_stream
from llm_gateway.errors import ErrorCode
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat, ReasoningEffort
from llm_gateway.models.report import CheckStatus
from llm_gateway.providers.anthropic import ANTHROPIC, AnthropicTranslation, messages_url
from llm_gateway.providers.base import EndpointSpec, ProviderConfigError
from llm_gateway.providers.dispatch import build_call, classify_status, make_relay
from tests.unit.test_streaming_relay import ScriptedTransport, SleepLog, drain, error, limits, ok

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRANSCRIPTS = REPO / "tests" / "fixtures" / "transcripts" / "anthropic"
BASIC = (TRANSCRIPTS / "anthropic-sdk-python-basic-text.sse").read_bytes()
TOOL_USE = (TRANSCRIPTS / "anthropic-sdk-python-tool-use-empty-input-delta.sse").read_bytes()
THINKING = (TRANSCRIPTS / "docs-streaming-extended-thinking.sse").read_bytes()
ERROR_EVENT = (TRANSCRIPTS / "docs-streaming-error-event-overloaded.sse").read_bytes()
OVERLOADED_529 = (TRANSCRIPTS / "docs-error-529-overloaded.sse").read_bytes()
SPEC = EndpointSpec(LlmFormat.ANTHROPIC, "https://api.anthropic.com", "claude-sonnet-4-5")
CHAT = ChatRequest(messages=[ChatMessage(role="user", content="hi")])
SSE = {"content-type": "text/event-stream; charset=utf-8"}


def body_of(chat: ChatRequest = CHAT, spec: EndpointSpec = SPEC) -> dict[str, Any]:
    return json.loads(ANTHROPIC.build_request(spec, chat, "sk-ant-test").body)  # type: ignore[no-any-return]


def translate(
    body: bytes, *, include_usage: bool = True, pieces: list[int] | None = None
) -> tuple[list[Any], Any]:
    relay = AnthropicTranslation(model="m", include_usage=include_usage)
    out = b""
    cuts = [0, *(pieces or []), len(body)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        out += relay.feed(body[start:end])
    out += relay.finish()
    chunks = [json.loads(e[6:]) for e in out.decode().split("\n\n") if e.startswith("data: {")]
    return chunks, relay


def text_of(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def finishes(chunks: list[Any]) -> list[str]:
    return [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]


# -- URLs and headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1/messages"),
        ("https://proxy.example/anthropic", "https://proxy.example/anthropic/v1/messages"),
        ("http://127.0.0.1:8080/v1/messages?beta=true", "http://127.0.0.1:8080/v1/messages?beta=true"),
    ],
)
def test_the_api_base_and_the_full_messages_url_both_work(url: str, expected: str) -> None:
    assert messages_url(url) == expected


def test_the_key_goes_in_x_api_key_with_the_version_header_never_as_bearer() -> None:
    request = ANTHROPIC.build_request(SPEC, CHAT, "sk-ant-test")
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["accept"] == "text/event-stream"
    assert "authorization" not in {h.lower() for h in request.headers}
    pinned = EndpointSpec(
        LlmFormat.ANTHROPIC, SPEC.url, SPEC.model_name, headers={"anthropic-version": "2024-01-01"}
    )
    assert ANTHROPIC.build_request(pinned, CHAT, "k").headers["anthropic-version"] == "2024-01-01"


# -- the body -----------------------------------------------------------------------------------


def test_system_messages_become_the_system_field_and_max_tokens_is_always_sent() -> None:
    chat = ChatRequest(
        messages=[
            ChatMessage(role="system", content="You are Cara."),
            ChatMessage(role="developer", content="Be brief."),
            ChatMessage(role="user", content="hi"),
            ChatMessage(role="user", content=[{"type": "text", "text": "there"}]),
        ]
    )
    body = body_of(chat)
    assert body["system"] == "You are Cara.\n\nBe brief."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}
    ]
    assert body["max_tokens"] == 4096 and body["stream"] is True and body["model"] == "claude-sonnet-4-5"
    capped = EndpointSpec(LlmFormat.ANTHROPIC, SPEC.url, SPEC.model_name, max_tokens=300, temperature=1.5)
    assert body_of(chat.model_copy(update={"max_tokens": 1000}), capped)["max_tokens"] == 300
    assert body_of(chat, capped)["temperature"] == 1.0  # the Messages API takes 0..1


def test_tools_tool_calls_and_tool_results_translate_both_ways() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "description": "d",
                                              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
    chat = ChatRequest(
        messages=[
            ChatMessage(role="user", content="Weather?"),
            ChatMessage(
                role="assistant",
                content=None,
                tool_calls=[
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            ),  # fmt: skip
            ChatMessage(role="tool", tool_call_id="toolu_1", content="12 C"),
        ],
        tools=[tool],
        tool_choice="required",
    )
    body = body_of(chat)
    assert body["tools"] == [
        {"name": "get_weather", "description": "d", "input_schema": tool["function"]["parameters"]}
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}],
    }
    assert body["messages"][2] == {
        "role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "12 C"}]
    }  # fmt: skip


def test_a_reasoning_effort_is_extended_thinking_with_a_budget_inside_max_tokens() -> None:
    thinking = EndpointSpec(LlmFormat.ANTHROPIC, SPEC.url, SPEC.model_name, temperature=0.2,
                            reasoning_effort=ReasoningEffort.MEDIUM)  # fmt: skip
    body = body_of(CHAT.model_copy(update={"max_tokens": 200}), thinking)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] == 4096 + 200  # max_tokens counts thinking and must exceed the budget
    assert "temperature" not in body  # extended thinking takes no temperature change
    assert "thinking" not in body_of(CHAT, EndpointSpec(LlmFormat.ANTHROPIC, SPEC.url, "m",
                                                        reasoning_effort=ReasoningEffort.DEFAULT))  # fmt: skip
    too_small = EndpointSpec(
        LlmFormat.ANTHROPIC, SPEC.url, "m", max_tokens=1000, reasoning_effort=ReasoningEffort.LOW
    )
    with pytest.raises(ProviderConfigError, match="raise maxTokens above 1024"):
        body_of(CHAT, too_small)


# -- the stream, on recorded streams ------------------------------------------------------------


def test_the_recorded_text_stream_becomes_openai_chunks_with_usage() -> None:
    chunks, relay = translate(BASIC)
    assert relay.complete and relay.failure is None
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert text_of(chunks) == "Hello there!"
    assert finishes(chunks) == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["completion_tokens"] == 6  # message_delta's count is cumulative


def test_the_recorded_tool_use_stream_gives_arguments_that_parse_and_no_empty_fragment() -> None:
    chunks, relay = translate(TOOL_USE)
    assert relay.complete
    calls = [
        call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert (
        calls[0]["id"] == "toolu_01NRLabsLyVHZPKxbKvkfSMn" and calls[0]["function"]["name"] == "get_weather"
    )
    fragments = [call["function"]["arguments"] for call in calls[1:]]
    assert "" not in fragments, "the recorded empty input_json_delta is not passed on as an empty delta"
    assert json.loads("".join(fragments)) == {"location": "Paris"}
    assert text_of(chunks) == "I'll check the current weather in Paris for you."
    assert finishes(chunks) == ["tool_calls"]


def test_a_tool_use_whose_fragments_are_all_empty_gets_an_empty_object() -> None:
    empty = TOOL_USE.replace(b'"partial_json":"{\\"locati"', b'"partial_json":""')
    for piece in (b'on\\": \\"P', b"ar", b'is\\"}'):
        empty = empty.replace(b'"partial_json":"' + piece + b'"', b'"partial_json":""')
    chunks, _ = translate(empty)
    arguments = "".join(call["function"]["arguments"] for c in chunks if c["choices"]
                        for call in c["choices"][0]["delta"].get("tool_calls") or [])  # fmt: skip
    assert json.loads(arguments) == {}


def test_a_max_tokens_stop_is_finish_reason_length() -> None:
    # The recorded stream with the documented max_tokens stop reason in its message_delta.
    cut = BASIC.replace(b'"stop_reason":"end_turn"', b'"stop_reason":"max_tokens"')
    chunks, _ = translate(cut)
    assert finishes(chunks) == ["length"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(TOOL_USE) - 1), unique=True, max_size=12).map(sorted))
def test_the_translation_survives_any_split_of_the_stream(cuts: list[int]) -> None:
    whole, _ = translate(TOOL_USE)
    split, relay = translate(TOOL_USE, pieces=cuts)
    assert relay.complete
    strip = [{k: v for k, v in c.items() if k != "created"} for c in split]
    assert strip == [{k: v for k, v in c.items() if k != "created"} for c in whole]


def test_ping_events_produce_nothing() -> None:
    without = BASIC.replace(b'event: ping\ndata: {"type": "ping"}\n\n', b"")
    assert without != BASIC
    assert [c["choices"] for c in translate(without)[0]] == [c["choices"] for c in translate(BASIC)[0]]


def test_an_in_band_overloaded_error_after_the_first_byte_ends_the_stream_with_its_code() -> None:
    head = BASIC[: BASIC.index(b"event: content_block_stop")]  # the first deltas arrived
    chunks, relay = translate(head + ERROR_EVENT)
    assert text_of(chunks) == "Hello there!"
    assert relay.failure == ErrorCode.UPSTREAM_SERVER_ERROR and not relay.complete
    assert not finishes(chunks), "no finish chunk and no [DONE] after an error"


def test_a_stream_without_message_stop_is_incomplete() -> None:
    cut = BASIC[: BASIC.index(b"event: message_stop")]
    _, relay = translate(cut)
    assert relay.failure == ErrorCode.UPSTREAM_PROTOCOL_ERROR


@pytest.mark.anyio
async def test_a_529_overloaded_before_the_first_byte_is_retried_then_streams() -> None:
    overloaded = error(529, json.loads(OVERLOADED_529))
    transport = ScriptedTransport([overloaded, ok(BASIC)])
    assert classify_status(SPEC, 529, OVERLOADED_529, {}, ())[0] == ErrorCode.UPSTREAM_SERVER_ERROR
    opened = await open_stream(
        [build_call(SPEC, CHAT, "sk-ant-test")], transport, lambda: make_relay(SPEC, CHAT), limits(),
        lambda status, body, headers: classify_status(SPEC, status, body, headers, ()), sleep=SleepLog(),
    )  # fmt: skip
    body = await drain(opened)
    assert len(transport.opened) == 2
    assert opened.outcome == "ok" and body.endswith(b"data: [DONE]\n\n")
    assert b'"content":"Hello"' in body


# -- the wire checks ----------------------------------------------------------------------------


def failed(body: bytes, **kwargs: Any) -> dict[str, str]:
    checks = ANTHROPIC.check_response(200, SSE, body, **kwargs)
    return {c.id: c.message for c in checks if c.status == CheckStatus.FAIL}


@pytest.mark.parametrize("body", [BASIC, TOOL_USE, THINKING], ids=["text", "tool-use", "thinking"])
def test_the_recorded_streams_pass_every_check(body: bytes) -> None:
    checks = ANTHROPIC.check_response(200, SSE, body)
    assert not [c for c in checks if c.status == CheckStatus.FAIL], checks
    assert ANTHROPIC.conforms(checks)


def test_broken_streams_fail_the_check_that_names_the_problem() -> None:
    assert set(failed(BASIC[: BASIC.index(b"event: message_stop")])) == {"message_stop"}
    no_start = BASIC.replace(b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
                             b'"content_block":{"type":"text","text":""}}\n\n', b"")  # fmt: skip
    assert "event_order" in failed(no_start)
    bad_input = TOOL_USE.replace(b'"partial_json":"is\\"}"', b'"partial_json":"is"')
    assert set(failed(bad_input)) == {"tool_input_json"}
    unnamed = BASIC.replace(b"event: content_block_delta\n", b"")
    assert set(failed(unnamed)) == {"sse_framing"}
    assert "content_type" in {c.id for c in ANTHROPIC.check_response(200, {}, BASIC) if c.status == "fail"}


def test_an_in_band_error_is_an_outcome_not_a_spec_violation() -> None:
    checks = ANTHROPIC.check_response(200, SSE, ERROR_EVENT)
    bad = {c.id for c in checks if c.status == CheckStatus.FAIL}
    assert bad == {"mid_stream_error"} and ANTHROPIC.conforms(checks)


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, "invalid_request_error", ErrorCode.UPSTREAM_BAD_REQUEST),
        (401, "authentication_error", ErrorCode.UPSTREAM_UNAUTHORIZED),
        (403, "permission_error", ErrorCode.UPSTREAM_UNAUTHORIZED),
        (404, "not_found_error", ErrorCode.UPSTREAM_MODEL_NOT_FOUND),
        (413, "request_too_large", ErrorCode.UPSTREAM_BAD_REQUEST),
        (429, "rate_limit_error", ErrorCode.UPSTREAM_RATE_LIMITED),
        (500, "api_error", ErrorCode.UPSTREAM_SERVER_ERROR),
        (529, "overloaded_error", ErrorCode.UPSTREAM_SERVER_ERROR),
    ],
)
def test_the_documented_error_types_map_to_the_gateways_codes(
    status: int, kind: str, code: ErrorCode
) -> None:
    body = json.dumps(
        {"type": "error", "error": {"type": kind, "message": "m"}, "request_id": "req_1"}
    ).encode()
    error_ = ANTHROPIC.classify_error(status, body, {"content-type": "application/json"})
    assert error_.code == code and error_.upstream_code == kind and error_.hint
    checks = ANTHROPIC.check_response(status, {"content-type": "application/json"}, body)
    assert ANTHROPIC.conforms(checks), checks


@pytest.mark.parametrize("meta_path", sorted(TRANSCRIPTS.glob("*.json")), ids=lambda p: p.stem)
def test_every_anthropic_transcript_gets_the_verdict_its_metadata_records(meta_path: Path) -> None:
    meta = json.loads(meta_path.read_text())
    assert meta["provider"] == "anthropic" and meta["source_url"].startswith("https://")
    status = int(meta["http_status"])
    fragment = meta.get("scope") == "fragment"
    headers = {"content-type": "text/event-stream" if status == 200 else "application/json"}
    checks = ANTHROPIC.check_response(
        status, headers, meta_path.with_suffix(".sse").read_bytes(), expect_start=not fragment,
        expect_complete=not fragment,
    )  # fmt: skip
    assert ANTHROPIC.conforms(checks) is meta["expected_compatible"], checks
    assert all(c.hint for c in checks if c.status == CheckStatus.FAIL)
