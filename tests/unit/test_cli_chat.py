"""``llm-gateway chat``'s stream rendering: text as it arrives, tool calls, error events, timings."""

from __future__ import annotations

import io
import json
from typing import Any

from llm_gateway_cli.commands.chat import StreamPrinter


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def printer() -> tuple[StreamPrinter, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return StreamPrinter(out, io.StringIO(), 0.0, clock), out, clock


def test_text_is_written_as_it_arrives_with_first_token_and_total_times() -> None:
    stream, out, clock = printer()
    clock.now = 0.05
    stream.feed(chunk({"role": "assistant"}) + b": ping\n\n")
    assert out.getvalue() == ""
    clock.now = 0.1
    stream.feed(chunk({"content": "Hel"}) + chunk({"content": "lo"})[:10])  # split mid-event
    assert out.getvalue() == "Hel"
    clock.now = 0.3
    stream.feed(chunk({"content": "lo"})[10:] + chunk({}, "stop") + b"data: [DONE]\n\n")
    turn = stream.finish()
    assert out.getvalue() == "Hello"
    assert (turn.text, turn.done, turn.error) == ("Hello", True, None)
    assert turn.first_token_s == 0.1 and turn.total_s == 0.3


def test_tool_calls_are_assembled_and_printed_once() -> None:
    stream, out, _ = printer()
    stream.feed(
        chunk(
            {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": ""}}]}
        )
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})
        + chunk({}, "tool_calls")
        + b"data: [DONE]\n\n"
    )
    turn = stream.finish()
    assert out.getvalue() == '[tool call get_weather({"city": "Paris"})]\n'
    assert turn.done and turn.first_token_s is not None


def test_an_error_event_ends_the_turn_with_its_code_and_message() -> None:
    stream, out, _ = printer()
    error = {
        "error": {"code": "upstream_timeout", "message": "The LLM stopped sending.", "type": "upstream_error"}
    }
    stream.feed(
        chunk({"content": "Par"}) + f"data: {json.dumps(error)}\n\n".encode() + chunk({"content": "x"})
    )
    turn = stream.finish()
    assert out.getvalue() == "Par"
    assert turn.error == ("upstream_timeout", "The LLM stopped sending.") and not turn.done


def test_a_stream_without_done_is_not_done() -> None:
    stream, _, _ = printer()
    stream.feed(chunk({"content": "a"}) + chunk({}, "stop"))
    turn = stream.finish()
    assert turn.text == "a" and not turn.done and turn.error is None
