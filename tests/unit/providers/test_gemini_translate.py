"""Gemini → OpenAI stream translation: fixtures, tool calls, finish reasons, errors, and a property
test over arbitrary byte splits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.providers.gemini import GeminiStreamTranslator, map_finish_reason
from llm_gateway.providers.sse import parse_sse


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise AssertionError("repository root (pyproject.toml) not found above the test file")


GEMINI = _repo_root() / "tests" / "fixtures" / "transcripts" / "gemini"


def _fixture(name: str) -> bytes:
    path = GEMINI / f"{name}.sse"
    assert path.is_file(), f"fixture missing: {path}"
    return path.read_bytes()


def _run(body: bytes, *, include_usage: bool = False, splits: list[int] | None = None) -> bytes:
    translator = GeminiStreamTranslator(model="gemini-test", include_usage=include_usage)
    out = []
    cuts = [0, *sorted(set(splits or [])), len(body)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        out.append(translator.feed(body[start:end]))
    out.append(translator.finish())
    return b"".join(out)


def _events(output: bytes) -> list[str]:
    """Parse our own output the way an OpenAI client would (LF framing, data lines only)."""
    assert output.endswith(b"\n\n")
    events, obs = parse_sse(output)
    assert obs.comment_count == 0 and obs.non_field_line_count == 0 and not obs.truncated_event
    assert obs.line_endings == {"lf"}
    return [e.data for e in events]


def _chunks(output: bytes) -> tuple[list[dict[str, Any]], str]:
    """(JSON chunks, terminator) where terminator is "done" or "error"."""
    data = _events(output)
    if data[-1] == "[DONE]":
        chunks = [json.loads(d) for d in data[:-1]]
        assert "[DONE]" not in data[:-1]
        return chunks, "done"
    chunks = [json.loads(d) for d in data]
    assert "error" in chunks[-1]
    return chunks, "error"


def _assert_openai_stream(chunks: list[dict[str, Any]]) -> None:
    body = [c for c in chunks if "error" not in c]
    assert len({c["id"] for c in body}) == 1 and body[0]["id"].startswith("chatcmpl-")
    assert len({c["created"] for c in body}) == 1
    finishes = []
    for position, chunk in enumerate(body):
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "gemini-test"
        if not chunk["choices"]:
            assert chunk.get("usage") and position == len(body) - 1
        for choice in chunk["choices"]:
            assert isinstance(choice["delta"], dict)
            if choice["finish_reason"] is not None:
                finishes.append((position, choice["index"]))
    first = next(c for c in body if c["choices"])
    assert first["choices"][0]["delta"].get("role") == "assistant"
    # at most one finish per choice, and nothing for that choice after it
    assert len({i for _, i in finishes}) == len(finishes)


def _content(chunks: list[dict[str, Any]]) -> str:
    return "".join(ch["delta"].get("content") or "" for c in chunks if "choices" in c for ch in c["choices"])


def _finish(chunks: list[dict[str, Any]]) -> str:
    reasons = [
        ch["finish_reason"] for c in chunks if "choices" in c for ch in c["choices"] if ch["finish_reason"]
    ]
    assert len(reasons) == 1, reasons
    return str(reasons[0])


def _gemini_text(body: bytes) -> str:
    events, _ = parse_sse(body)
    text = []
    for event in events:
        for candidate in json.loads(event.data).get("candidates", []):
            for part in candidate.get("content", {}).get("parts", []):
                if not part.get("thought"):
                    text.append(part.get("text", ""))
    return "".join(text)


def test_cookbook_text_stream() -> None:
    body = _fixture("cookbook-streaming-rest-cats")
    chunks, end = _chunks(_run(body))
    assert end == "done"
    _assert_openai_stream(chunks)
    assert _content(chunks) == _gemini_text(body)
    # STOP on every Gemini chunk still gives one finish_reason, on the last chunk
    assert _finish(chunks) == "stop"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_tool_call_fixture() -> None:
    chunks, end = _chunks(_run(_fixture("pydantic-ai-function-call-thought-signature"), include_usage=True))
    assert end == "done"
    _assert_openai_stream(chunks)
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert len(calls) == 1
    call = calls[0]
    assert call["index"] == 0 and call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_country"
    assert json.loads(call["function"]["arguments"]) == {}
    assert call["extra_content"]["google"]["thought_signature"].startswith("EpwICp")
    assert _finish(chunks) == "tool_calls"
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 29
    assert usage["usage"]["completion_tokens"] == 10 + 202
    assert usage["usage"]["total_tokens"] == 241
    assert all(c["usage"] is None for c in chunks[:-1])


def test_mid_stream_fixture_ends_with_error_and_no_done() -> None:
    output = _run(_fixture("firebase-vertexai-error-mid-stream"))
    chunks, end = _chunks(output)
    assert end == "error"
    assert b"[DONE]" not in output
    assert _content(chunks) == "First Second "
    error = chunks[-1]["error"]
    assert error["code"] == "upstream_server_error"
    assert "CANCELLED" in error["message"]
    assert all(ch["finish_reason"] is None for c in chunks[:-1] for ch in c["choices"])


def _ev(obj: Any, end: bytes = b"\r\n\r\n") -> bytes:
    return b"data: " + json.dumps(obj).encode() + end


def _cand(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate]}


def test_parallel_and_later_tool_calls_get_increasing_indexes() -> None:
    body = _ev(
        _cand(
            [
                {"text": "Let me check. "},
                {"functionCall": {"name": "a", "args": {"x": 1}}},
                {"functionCall": {"name": "b", "args": {"y": [1, "é"]}}},
            ]
        )
    ) + _ev(_cand([{"functionCall": {"name": "c"}}], "STOP"))
    chunks, _ = _chunks(_run(body))
    _assert_openai_stream(chunks)
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert [tc["index"] for tc in calls] == [0, 1, 2]
    assert [tc["function"]["name"] for tc in calls] == ["a", "b", "c"]
    assert [json.loads(tc["function"]["arguments"]) for tc in calls] == [{"x": 1}, {"y": [1, "é"]}, {}]
    assert len({tc["id"] for tc in calls}) == 3
    assert _content(chunks) == "Let me check. "
    assert _finish(chunks) == "tool_calls"


def test_thoughts_are_not_forwarded() -> None:
    body = _ev(_cand([{"text": "secret reasoning", "thought": True}])) + _ev(
        _cand([{"text": "Answer"}], "STOP")
    )
    chunks, _ = _chunks(_run(body))
    _assert_openai_stream(chunks)
    assert _content(chunks) == "Answer"
    assert "secret reasoning" not in json.dumps(chunks)


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("BRAND_NEW_REASON", "stop"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reason_mapping(gemini: str, openai: str) -> None:
    assert map_finish_reason(gemini) == openai
    chunks, _ = _chunks(_run(_ev(_cand([{"text": "x"}], gemini))))
    assert _finish(chunks) == openai


def test_stop_with_tool_call_is_tool_calls() -> None:
    assert map_finish_reason("STOP", tool_calls=True) == "tool_calls"
    assert map_finish_reason("MAX_TOKENS", tool_calls=True) == "length"


def test_prompt_blocked_is_content_filter() -> None:
    chunks, end = _chunks(_run(_ev({"promptFeedback": {"blockReason": "SAFETY"}})))
    assert end == "done"
    _assert_openai_stream(chunks)
    assert _finish(chunks) == "content_filter"


def test_usage_only_when_asked() -> None:
    body = _ev(
        {
            **_cand([{"text": "x"}], "STOP"),
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3},
        }
    )
    chunks, _ = _chunks(_run(body, include_usage=True))
    assert chunks[-1]["usage"]["total_tokens"] == 3 and chunks[-1]["choices"] == []
    chunks, _ = _chunks(_run(body))
    assert all("usage" not in c for c in chunks)


def test_data_error_event_ends_the_stream() -> None:
    body = (
        _ev(_cand([{"text": "a"}]))
        + _ev(
            {
                "error": {
                    "code": 429,
                    "message": "k AIzaSyXXXXXXXXXXXXXXXXXXXXXXX",
                    "status": "RESOURCE_EXHAUSTED",
                }
            }
        )
        + _ev(_cand([{"text": "b"}]))
    )
    output = _run(body)
    chunks, end = _chunks(output)
    assert end == "error"
    assert chunks[-1]["error"]["code"] == "upstream_rate_limited"
    assert b"AIza" not in output  # the upstream's free text is never relayed
    assert _content(chunks) == "a"


@pytest.mark.parametrize(
    "junk",
    [b"data: {not json}\r\n\r\n", b"data: [DONE]\r\n\r\n", b"hello there\r\n\r\n", b"data: [1]\r\n\r\n"],
)
def test_protocol_errors(junk: bytes) -> None:
    chunks, end = _chunks(_run(_ev(_cand([{"text": "a"}])) + junk))
    assert end == "error"
    assert chunks[-1]["error"]["code"] == "upstream_protocol_error"


def test_unfinished_bare_block_is_a_protocol_error() -> None:
    chunks, end = _chunks(_run(_ev(_cand([{"text": "a"}])) + b'{\n  "error": {\n'))
    assert end == "error" and chunks[-1]["error"]["code"] == "upstream_protocol_error"


def test_comments_are_tolerated_by_the_proxy() -> None:
    chunks, end = _chunks(_run(b": keep-alive\r\n\r\n" + _ev(_cand([{"text": "a"}], "STOP"))))
    assert end == "done" and _content(chunks) == "a"


def test_empty_upstream_still_gives_a_valid_stream() -> None:
    chunks, end = _chunks(_run(b""))
    assert end == "done"
    _assert_openai_stream(chunks)
    assert _finish(chunks) == "stop"


def test_nothing_after_the_end() -> None:
    translator = GeminiStreamTranslator(model="m")
    translator.feed(_ev(_cand([{"text": "a"}])))
    assert translator.finish().endswith(b"data: [DONE]\n\n")
    assert translator.finish() == b"" and translator.feed(b"data: {}\n\n") == b""
    assert translator.abort("upstream_timeout", "late") == b""


def test_abort_by_the_proxy() -> None:
    translator = GeminiStreamTranslator(model="m")
    translator.feed(_ev(_cand([{"text": "a"}])))
    out = translator.abort("upstream_timeout", "The upstream stopped sending.")
    assert json.loads(out[len(b"data: ") :]) == {
        "error": {"code": "upstream_timeout", "message": "The upstream stopped sending."}
    }
    assert translator.finish() == b"" and translator.error_code == "upstream_timeout"


# --- property: content survives any byte split ----------------------------------------------

_part = st.one_of(
    st.builds(lambda t: {"text": t}, st.text(max_size=12)),
    st.builds(lambda t: {"text": t, "thought": True}, st.text(max_size=8)),
    st.builds(
        lambda n, a: {"functionCall": {"name": n, "args": a}},
        st.sampled_from(["f", "g"]),
        st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=4), max_size=2),
    ),
)


@st.composite
def _gemini_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    events = draw(st.lists(st.lists(_part, max_size=4), min_size=1, max_size=6))
    ending = draw(st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\r"]))
    body = b""
    for position, parts in enumerate(events):
        payload: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]}
        if position == len(events) - 1:
            payload["candidates"][0]["finishReason"] = draw(
                st.sampled_from(["STOP", "MAX_TOKENS", "NEW_ENUM"])
            )
        payload["usageMetadata"] = {
            "promptTokenCount": 1,
            "candidatesTokenCount": position,
            "totalTokenCount": position + 1,
        }
        body += b"data: " + json.dumps(payload, ensure_ascii=draw(st.booleans())).encode() + ending
    splits = draw(st.lists(st.integers(0, len(body)), max_size=12))
    return body, splits


@settings(max_examples=200, deadline=None)
@given(_gemini_streams())
def test_text_survives_any_split(stream: tuple[bytes, list[int]]) -> None:
    body, splits = stream
    whole = _run(body, include_usage=True)
    chunks, end = _chunks(whole)
    assert end == "done"
    _assert_openai_stream(chunks)
    assert _content(chunks) == _gemini_text(body)
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert [tc["index"] for tc in calls] == list(range(len(calls)))
    for call in calls:
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
    split_chunks, _ = _chunks(_run(body, include_usage=True, splits=splits))
    assert _content(split_chunks) == _content(chunks)
    # byte splits change nothing but the generated ids
    assert _without_ids(split_chunks) == _without_ids(chunks)


def _without_ids(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    normal = json.loads(json.dumps(chunks))
    for chunk in normal:
        chunk.pop("id", None)
        chunk.pop("created", None)
        for choice in chunk.get("choices", []):
            for call in choice["delta"].get("tool_calls") or []:
                call.pop("id")
    return normal
