"""The OpenAI pass-through's fast path (issue 22): a chunk of whole events is checked event by event
and forwarded as it came, and whatever the chunk holds the output is what the parser's path gives."""

from __future__ import annotations

import json

import pytest

from llm_gateway.providers.openai.relay import OpenAiPassThrough
from llm_gateway.providers.sse import SseParser


def _event(content: str, *, finish: str | None = None, index: int = 0) -> bytes:
    chunk = {
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": index, "delta": {"content": content}, "finish_reason": finish}],
    }  # fmt: skip
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


HEAD = _event("")  # the first chunk of a stream goes through the parser (BOM check)


def _one_byte_at_a_time(chunks: list[bytes]) -> tuple[bytes, OpenAiPassThrough]:
    """The reference: the parser's path only (no chunk is ever a whole event)."""
    relay = OpenAiPassThrough(azure=False)
    out = b"".join(relay.feed(bytes([b])) for chunk in chunks for b in chunk)
    return out + relay.finish(), relay


def _as_chunks(chunks: list[bytes]) -> tuple[bytes, OpenAiPassThrough]:
    relay = OpenAiPassThrough(azure=False)
    out = b"".join(relay.feed(chunk) for chunk in chunks)
    return out + relay.finish(), relay


def test_whole_events_are_forwarded_byte_for_byte() -> None:
    relay = OpenAiPassThrough(azure=False)
    relay.feed(HEAD)
    chunk = _event("Hello, ") + _event("wörld 😀")
    assert relay.feed(chunk) is chunk, "forwarded as it came, not re-encoded"


@pytest.mark.parametrize(
    "chunks",
    [
        [HEAD, _event("a") + _event("b"), _event("", finish="stop") + b"data: [DONE]\n\n"],
        [HEAD, _event("a") + b'data: {"error": {"message": "boom sk-secret"}}\n\n' + _event("never")],
        [HEAD, _event("a") + b"data: not json\n\n" + _event("b"), _event("", finish="stop")],
        [HEAD, _event("a") + b": keep-alive\n\n" + _event("b"), b"data: [DONE]\n\n"],
        [HEAD, _event("a").replace(b"\n", b"\r\n"), _event("b"), b"data: [DONE]\n\n"],
        [HEAD, _event("a")[:-1], b"\n" + _event("b"), b"data: [DONE]\n\n"],
        [HEAD, b"event: x\n", _event("a"), b"data: [DONE]\n\n"],
        [HEAD, _event("a", index=0) + _event("b", index=1), _event("", finish="stop", index=0)],
    ],
    ids=[
        "done-in-chunk",
        "error-in-chunk",
        "dropped-in-chunk",
        "comment",
        "crlf",
        "split-event",
        "field",
        "open-choice",
    ],  # fmt: skip
)
def test_the_output_and_the_verdict_are_the_parsers_whatever_the_chunk_holds(chunks: list[bytes]) -> None:
    fast, fast_relay = _as_chunks(chunks)
    reference, reference_relay = _one_byte_at_a_time(chunks)
    assert fast == reference
    assert (fast_relay.complete, fast_relay.failure) == (reference_relay.complete, reference_relay.failure)
    assert b"sk-secret" not in fast


def test_the_parser_observations_count_the_events_the_fast_path_took() -> None:
    relay = OpenAiPassThrough(azure=False)
    relay.feed(HEAD)
    relay.feed(_event("a") + _event("b") + _event("c"))
    parser = relay._parser
    reference = SseParser()
    reference.feed(HEAD + _event("a") + _event("b") + _event("c"))
    assert (parser.observations.events, parser.observations.data_lines, parser.observations.lf_line_ends) == (
        reference.observations.events,
        reference.observations.data_lines,
        reference.observations.lf_line_ends,
    )
    assert parser.at_event_boundary
