"""A reasoning model's thoughts in every upstream form, under every ``reasoningFormat``: ``hidden``
never lets thought text reach the client, ``parsed`` moves it to ``delta.reasoning_content``,
``raw`` leaves an OpenAI-compatible stream as sent; the relays say when the first answer token
(not the first thought) went by, and each spec's request carries its reasoning parameter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat, ReasoningEffort, ReasoningFormat
from llm_gateway.providers.base import EndpointSpec
from llm_gateway.providers.common.reasoning import ThinkTagSplitter
from llm_gateway.providers.dispatch import build_call, make_relay

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
THINKING = (REPO / "tests/fixtures/transcripts/anthropic/docs-streaming-extended-thinking.sse").read_bytes()
CHAT = ChatRequest(messages=[ChatMessage(role="user", content="hi")])
THOUGHT = "Let me think: the user greets me."
ANSWER = "Hello there!"
FORMATS = [None, ReasoningFormat.HIDDEN, ReasoningFormat.PARSED, ReasoningFormat.RAW]


def openai_event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def openai_stream(form: str) -> bytes:
    """Thoughts as DeepSeek/vLLM (``reasoning_content``), Groq parsed (``reasoning``) or inline ``<think>``."""
    words = [THOUGHT[:10], THOUGHT[10:]]
    events = [openai_event({"role": "assistant", "content": ""})]
    if form == "think":
        events += [openai_event({"content": "<thi"}), openai_event({"content": "nk>" + words[0]}),
                   openai_event({"content": words[1] + "</th"}), openai_event({"content": "ink>\n\n"})]  # fmt: skip
    else:
        events += [openai_event({form: w}) for w in words]
    events += [
        openai_event({"content": "Hello"}),
        openai_event({"content": " there!"}),
        openai_event({}, "stop"),
    ]
    return b"".join(events) + b"data: [DONE]\n\n"


def gemini_stream() -> bytes:
    def event(parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return b"data: " + json.dumps({"candidates": [candidate]}).encode() + b"\r\n\r\n"

    return (
        event([{"text": THOUGHT, "thought": True}])
        + event([{"text": "Hello"}])
        + event([{"text": " there!"}], "STOP")
    )


SPECS = {
    "openai": EndpointSpec(LlmFormat.OPENAI, "https://a.example/v1", "o4-mini"),
    "groq_openai": EndpointSpec(LlmFormat.GROQ_OPENAI, "https://api.groq.com/openai/v1", "qwen/qwen3-32b"),
    "gemini": EndpointSpec(LlmFormat.GEMINI, "https://g.example", "gemini-2.5-flash"),
    "anthropic": EndpointSpec(LlmFormat.ANTHROPIC, "https://api.anthropic.com", "claude-sonnet-4-5"),
}
CASES = {
    "reasoning_content": ("openai", openai_stream("reasoning_content"), THOUGHT, ANSWER),
    "reasoning": ("groq_openai", openai_stream("reasoning"), THOUGHT, ANSWER),
    "think-tags": ("openai", openai_stream("think"), THOUGHT, ANSWER),
    "gemini-thought-parts": ("gemini", gemini_stream(), THOUGHT, ANSWER),
    "anthropic-thinking": ("anthropic", THINKING, "Let me solve this step by step", "27 * 453 = 12,231"),
}


def relay_out(spec: EndpointSpec, body: bytes, fmt: ReasoningFormat | None) -> tuple[bytes, Any]:
    relay = make_relay(EndpointSpec(spec.llm_format, spec.url, spec.model_name, reasoning_format=fmt), CHAT)
    out = b"".join(relay.feed(body[i : i + 7]) for i in range(0, len(body), 7)) + relay.finish()
    assert relay.complete, out
    return out, relay


def deltas(out: bytes) -> list[dict[str, Any]]:
    chunks = [json.loads(e[6:]) for e in out.decode().split("\n\n") if e.startswith("data: {")]
    return [c["choices"][0]["delta"] for c in chunks if c.get("choices")]


def field(out: bytes, name: str) -> str:
    return "".join(d.get(name) or "" for d in deltas(out))


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("fmt", [None, ReasoningFormat.HIDDEN], ids=["unset", "hidden"])
def test_hidden_thoughts_never_reach_the_client(case: str, fmt: ReasoningFormat | None) -> None:
    spec, body, thought, answer = CASES[case]
    out, relay = relay_out(SPECS[spec], body, fmt)
    assert field(out, "content") == answer
    assert thought[:12].encode() not in out, "no thought text in any field of the output"
    assert b"reasoning" not in out and b"<think>" not in out
    assert relay.thought_started and relay.answer_started


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_parsed_thoughts_arrive_in_reasoning_content_apart_from_the_answer(case: str) -> None:
    spec, body, thought, answer = CASES[case]
    out, _ = relay_out(SPECS[spec], body, ReasoningFormat.PARSED)
    assert field(out, "content") == answer
    assert field(out, "reasoning_content").startswith(thought)
    assert b"<think>" not in out
    first_thought = next(i for i, d in enumerate(deltas(out)) if d.get("reasoning_content"))
    first_answer = next(i for i, d in enumerate(deltas(out)) if d.get("content"))
    assert first_thought < first_answer


@pytest.mark.parametrize("form", ["reasoning_content", "reasoning", "think"])
def test_raw_leaves_an_openai_compatible_stream_as_the_upstream_sent_it(form: str) -> None:
    body = openai_stream(form)
    out, relay = relay_out(SPECS["openai"], body, ReasoningFormat.RAW)
    assert out == body
    assert relay.thought_started and relay.answer_started


def test_an_answer_without_thoughts_is_forwarded_byte_for_byte_under_every_format() -> None:
    body = (
        b"".join(
            [
                openai_event({"role": "assistant", "content": ""}),
                openai_event({"content": ANSWER}),
                openai_event({}, "stop"),
            ]
        )
        + b"data: [DONE]\n\n"
    )
    for fmt in FORMATS:
        out, relay = relay_out(SPECS["openai"], body, fmt)
        assert out == body and relay.answer_started and not relay.thought_started


class _Clocked:
    """A relay fed event by event: which event index first counted as answer, and as thought."""

    def __init__(self, spec: EndpointSpec) -> None:
        self.relay = make_relay(spec, CHAT)
        self.answer_at: int | None = None
        self.thought_at: int | None = None

    def feed_events(self, body: bytes) -> None:
        for index, event in enumerate(body.split(b"\n\n")):
            self.relay.feed(event + b"\n\n")
            if self.answer_at is None and self.relay.answer_started:
                self.answer_at = index
            if self.thought_at is None and self.relay.thought_started:
                self.thought_at = index


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_first_answer_token_comes_after_the_first_thought(case: str) -> None:
    spec, body, _, _ = CASES[case]
    clocked = _Clocked(SPECS[spec])
    clocked.feed_events(body.replace(b"\r\n", b"\n"))
    assert clocked.thought_at is not None and clocked.answer_at is not None
    assert clocked.thought_at < clocked.answer_at


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=8))
def test_a_leading_think_block_is_split_off_whatever_the_split_points(cuts: list[int]) -> None:
    text = "<think>\nweigh the options</think>\n\nThe answer."
    pieces, position = [], 0
    for cut in sorted(set(cuts)):
        if cut < len(text):
            pieces.append(text[position:cut])
            position = cut
    pieces.append(text[position:])
    splitter = ThinkTagSplitter()
    thought = answer = ""
    for piece in pieces:
        t, a = splitter.feed(piece)
        thought, answer = thought + t, answer + a
    t, a = splitter.finish()
    assert (thought + t, answer + a) == ("\nweigh the options", "The answer.")


def test_text_that_only_mentions_think_later_is_all_answer() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("I ") == ("", "I ")
    assert splitter.feed("<think> not") == ("", "<think> not")


# -- the request parameters ---------------------------------------------------------------------


def sent(spec: str, effort: ReasoningEffort | None, fmt: ReasoningFormat | None = None) -> dict[str, Any]:
    base = SPECS[spec]
    endpoint = EndpointSpec(
        base.llm_format, base.url, base.model_name, reasoning_effort=effort, reasoning_format=fmt
    )
    return json.loads(build_call(endpoint, CHAT.model_copy(update={"max_tokens": 64}), "k").body)  # type: ignore[no-any-return]


def test_each_spec_carries_the_reasoning_effort_its_own_way() -> None:
    openai = sent("openai", ReasoningEffort.LOW)
    assert openai["reasoning_effort"] == "low"
    assert openai["max_completion_tokens"] == 64 and "max_tokens" not in openai  # reasoning models refuse it
    groq = sent("groq_openai", ReasoningEffort.HIGH, ReasoningFormat.PARSED)
    assert (groq["reasoning_effort"], groq["reasoning_format"]) == ("high", "parsed")
    assert "reasoning_format" not in sent("openai", ReasoningEffort.HIGH, ReasoningFormat.PARSED)
    gemini = sent("gemini", ReasoningEffort.MEDIUM, ReasoningFormat.PARSED)["generationConfig"]
    assert gemini["thinkingConfig"] == {"thinkingBudget": 8192, "includeThoughts": True}
    gemini3 = EndpointSpec(
        LlmFormat.GEMINI, "https://g.example", "gemini-3-pro-preview", reasoning_effort=ReasoningEffort.LOW
    )
    assert json.loads(build_call(gemini3, CHAT, "k").body)["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "low"
    }
    assert sent("anthropic", ReasoningEffort.HIGH)["thinking"] == {"type": "enabled", "budget_tokens": 16384}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("effort", [None, ReasoningEffort.DEFAULT])
def test_no_effort_or_default_sends_no_reasoning_parameter(spec: str, effort: ReasoningEffort | None) -> None:
    body = json.dumps(sent(spec, effort))
    assert not [word for word in ("reasoning", "thinking") if word in body]


@pytest.mark.anyio
async def test_time_to_first_token_is_measured_to_the_answer_with_the_first_thought_beside_it() -> None:
    from llm_gateway.domain.failover import open_stream
    from llm_gateway.providers.dispatch import classify_status
    from tests.unit.test_streaming_relay import ScriptedTransport, SleepLog, drain, limits, ok

    spec = SPECS["openai"]
    events = openai_stream("reasoning_content").split(b"\n\n")
    steps: list[Any] = [
        events[0] + b"\n\n",
        events[1] + b"\n\n",
        0.05,
        *(e + b"\n\n" for e in events[2:] if e),
    ]
    opened = await open_stream(
        [build_call(spec, CHAT, "k")], ScriptedTransport([ok(*steps)]), lambda: make_relay(spec, CHAT),
        limits(), lambda status, body, headers: classify_status(spec, status, body, headers, ()), sleep=SleepLog(),
    )  # fmt: skip
    await drain(opened)
    timings = opened.timings
    assert timings.first_output is not None and timings.first_thought is not None
    assert timings.first_answer is not None
    assert timings.first_output <= timings.first_thought < timings.first_answer
    shown = timings.server_timing(timings.started)
    assert "first-thought;dur=" in shown
