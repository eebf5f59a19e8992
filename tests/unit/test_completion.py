"""``stream: false``: real provider transcripts of all three specs, through each spec's relay, folded
into one ``chat.completion`` object (issue 9 item 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.domain.completion import MAX_ANSWER_CHARS, AnswerTooLarge, CompletionAggregator
from llm_gateway.domain.proxy import with_usage
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.providers.base import EndpointSpec
from llm_gateway.providers.dispatch import make_relay

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRANSCRIPTS = REPO_ROOT / "tests" / "fixtures" / "transcripts"
CHAT = ChatRequest(messages=[ChatMessage(role="user", content="hi")], stream=False)
SPECS = {
    "openai": EndpointSpec(LlmFormat.OPENAI, "https://a.example/v1/chat/completions", "gpt-4o"),
    "azure": EndpointSpec(LlmFormat.AZURE_OPENAI, "https://r.openai.azure.com/openai/v1", "dep"),
    "gemini": EndpointSpec(LlmFormat.GEMINI, "https://g.example", "gemini-2.5-flash"),
}


def relayed(provider: str, name: str) -> bytes:
    """What the relay sends for this transcript to a ``stream: false`` request (whose relay the
    stream app builds asking for the usage chunk, as OpenAI's whole answers carry usage)."""
    relay = make_relay(SPECS[provider], with_usage(CHAT))
    body = (TRANSCRIPTS / provider / f"{name}.sse").read_bytes()
    return relay.feed(body) + relay.finish()


def events(stream: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: {")]


def streamed_text(stream: bytes) -> str:
    """The text a streaming client would show: every content delta, in order."""
    return "".join(
        choice.get("delta", {}).get("content") or ""
        for event in events(stream)
        for choice in event.get("choices", [])
    )


def aggregate(stream: bytes, cuts: list[int] | None = None) -> dict[str, Any]:
    aggregator = CompletionAggregator("configured-model")
    start = 0
    for cut in sorted(cuts or []):
        aggregator.feed(stream[start:cut])
        start = cut
    aggregator.feed(stream[start:])
    return aggregator.result()


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        ("openai", "openai-python-text-usage"),
        ("azure", "ms-docs-async-filter-passes"),
        ("gemini", "cookbook-streaming-rest-cats"),
    ],
)
def test_text_answers_fold_into_one_chat_completion(provider: str, name: str) -> None:
    stream = relayed(provider, name)
    completion = aggregate(stream)
    assert completion["object"] == "chat.completion"
    assert isinstance(completion["id"], str) and isinstance(completion["created"], int)
    [choice] = completion["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == streamed_text(stream) != ""
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]


def test_openai_model_id_and_usage_are_the_upstreams() -> None:
    completion = aggregate(relayed("openai", "openai-python-text-usage"))
    assert completion["id"] == "chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL"
    assert completion["model"] == "gpt-4o-2024-08-06"
    assert completion["system_fingerprint"] == "fp_5050236cbd"
    assert completion["usage"]["total_tokens"] > 0


def test_openai_tool_calls_are_assembled_from_their_argument_pieces() -> None:
    completion = aggregate(relayed("openai", "openai-python-tool-call-strict"))
    message = completion["choices"][0]["message"]
    [call] = message["tool_calls"]
    assert call["id"] == "call_CTf1nWJLqSeRgDqaCG27xZ74"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["city"]
    assert message["content"] is None
    assert completion["choices"][0]["finish_reason"] == "tool_calls"


def test_gemini_function_calls_keep_their_thought_signature_for_the_next_turn() -> None:
    completion = aggregate(relayed("gemini", "pydantic-ai-function-call-thought-signature"))
    [call] = completion["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_country"
    assert json.loads(call["function"]["arguments"]) == {}
    assert call["extra_content"]["google"]["thought_signature"].startswith("EpwICpkI")
    assert completion["choices"][0]["finish_reason"] == "tool_calls"


@given(data=st.data())
def test_the_result_does_not_depend_on_where_the_bytes_were_split(data: st.DataObject) -> None:
    stream = relayed("openai", "openai-python-tool-call-strict")
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=12))
    assert aggregate(stream, cuts) == aggregate(stream)


def test_without_a_model_in_the_chunks_the_configured_one_is_named() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    completion = aggregate(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
    assert completion["model"] == "configured-model"
    assert completion["choices"][0]["message"]["content"] == "hi"


def test_an_endless_answer_is_cut_rather_than_held_in_memory() -> None:
    aggregator = CompletionAggregator("m")
    piece = "x" * 65536
    chunk = (
        b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": piece}}]}).encode() + b"\n\n"
    )
    with pytest.raises(AnswerTooLarge):
        for _ in range(MAX_ANSWER_CHARS // len(piece) + 2):
            aggregator.feed(chunk)
