"""The OpenAI pass-through's fast path (issue 22): a chunk of whole events is checked event by event
and forwarded as it came, and whatever the chunk holds the output is what the parser's path gives."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.models.llm import ReasoningFormat
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


# -- the fast path against the parser's, on streams with every feature issue 19/21/23 relies on ---

_META = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
_USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def _data(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return b"data: " + text.encode() + b"\n\n"


def _delta(delta: dict[str, Any], *, finish: str | None = None, index: int = 0) -> bytes:
    return _data({**_META, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


_text = st.text(alphabet=st.sampled_from(list('ab <>/thinkö😀\\"')), max_size=12)
_tool_call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}

#: One upstream event of each kind an OpenAI-compatible stream may hold.
_EVENTS = st.one_of(
    _text.map(lambda t: _delta({"content": t})),
    _text.map(lambda t: _delta({"content": "<think>" + t})),
    _text.map(lambda t: _delta({"content": t + "</think>"})),
    _text.map(lambda t: _delta({"reasoning_content": t})),
    _text.map(lambda t: _delta({"reasoning": t})),
    _text.map(lambda t: _delta({"reasoning_content": t, "content": t})),
    st.just(_delta({"role": "assistant", "content": ""})),
    st.just(_delta({"tool_calls": [_tool_call]})),
    st.just(_delta({"content": "x"}, index=1)),
    st.sampled_from(["stop", "length", "tool_calls"]).map(lambda f: _delta({}, finish=f)),
    st.just(_data({**_META, "choices": [], "usage": _USAGE})),
    st.just(
        _data({**_META, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": _USAGE})
    ),
    st.just(_data({**_META, "choices": [{"index": 0, "delta": {"content": "y"}}], "usage": None})),
    st.just(_data({"error": {"message": "boom sk-secret"}})),
    st.just(_data("not json")),
    st.just(_data("[DONE]")),
    st.just(b": keep-alive\n\n"),
    st.just(b"event: message\n" + _delta({"content": "e"})),
    _text.map(lambda t: _delta({"content": t}).replace(b"\n", b"\r\n")),
    st.just(
        b"data: " + '{"choices": [{"index": 0, "delta": {"content": "\xff"}}]}'.encode("latin-1") + b"\n\n"
    ),
)


@st.composite
def _chunked_streams(draw: st.DrawFn) -> list[bytes]:
    """A stream cut into chunks: mostly at event boundaries (where the fast path applies), some in
    the middle of an event (the parser's path, then back)."""
    events = [HEAD, *draw(st.lists(_EVENTS, max_size=12))]
    body = b"".join(events)
    ends = list(itertools.accumulate(len(e) for e in events))
    cuts = {end for end in ends[:-1] if draw(st.booleans())}
    cuts |= set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=4)))
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(body)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


def _state(relay: OpenAiPassThrough) -> tuple[object, ...]:
    return (relay.answer_started, relay.thought_started, relay.usage, relay.failure, relay.complete)


@settings(max_examples=400, deadline=None)
@given(
    chunks=_chunked_streams(),
    reasoning_format=st.sampled_from([None, *ReasoningFormat]),
    forward_usage=st.booleans(),
    azure=st.booleans(),
)
def test_the_fast_path_gives_the_parsers_output_and_accounting_at_every_chunk(
    chunks: list[bytes], reasoning_format: ReasoningFormat | None, forward_usage: bool, azure: bool
) -> None:
    """Thoughts routed per the format, the usage chunk forwarded only when asked (and recorded
    always), tool calls, errors, [DONE]: after each chunk, the output so far (what a continuation
    resumes from), the first-answer and first-thought flags (TTFT), the usage and the verdict are
    what the parser's path gives for the same bytes."""

    def make() -> OpenAiPassThrough:
        return OpenAiPassThrough(azure=azure, reasoning_format=reasoning_format, forward_usage=forward_usage)

    fast, reference = make(), make()
    fast_out = reference_out = b""
    for chunk in chunks:
        fast_out += fast.feed(chunk)
        reference_out += b"".join(reference.feed(bytes([b])) for b in chunk)  # never a whole event
        assert fast_out == reference_out
        assert _state(fast) == _state(reference)
    assert fast.finish() == reference.finish()
    assert _state(fast) == _state(reference)
    assert b"sk-secret" not in fast_out


@pytest.mark.parametrize("reasoning_format", [None, ReasoningFormat.HIDDEN, ReasoningFormat.PARSED])
def test_thoughts_in_whole_events_are_routed_not_forwarded_raw(
    reasoning_format: ReasoningFormat | None,
) -> None:
    relay = OpenAiPassThrough(azure=False, reasoning_format=reasoning_format)
    relay.feed(HEAD)
    out = relay.feed(_delta({"reasoning_content": "secret plan"}) + _delta({"content": "<think>more plan"}))
    if reasoning_format is ReasoningFormat.PARSED:
        assert out.count(b'"reasoning_content"') == 2 and b"<think>" not in out
    else:
        assert b"plan" not in out
    assert relay.thought_started and not relay.answer_started


def test_a_usage_chunk_in_whole_events_goes_out_only_when_asked_and_is_always_recorded() -> None:
    for forward_usage in (False, True):
        relay = OpenAiPassThrough(azure=False, forward_usage=forward_usage)
        relay.feed(HEAD + _delta({"content": "hi"}))
        usage_chunk = _data({**_META, "choices": [], "usage": _USAGE})
        out = relay.feed(usage_chunk + b"data: [DONE]\n\n")
        assert out == (usage_chunk if forward_usage else b"") + b"data: [DONE]\n\n"
        assert relay.usage == _USAGE
