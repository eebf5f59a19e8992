"""The shared SSE parser: WHATWG semantics, split invariance and the line cap (SECURITY.md item 28)."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.providers.sse import (
    SseEvent,
    SseEventTooLarge,
    SseLimitExceeded,
    SseLineTooLong,
    SseParser,
    encode_comment,
    encode_data_event,
    parse_sse,
)


def parse_in_chunks(body: bytes, cuts: list[int], max_line_bytes: int = 1 << 20) -> list[SseEvent]:
    """Feed ``body`` split at ``cuts``; on a limit error return the events plus a marker."""
    parser = SseParser(max_line_bytes=max_line_bytes)
    events: list[SseEvent] = []
    bounds = [0, *sorted(set(cuts)), len(body)]
    try:
        for start, end in itertools.pairwise(bounds):
            events.extend(parser.feed(body[start:end]))
        events.extend(parser.finish())
    except SseLimitExceeded as exc:
        events.extend(exc.events_before)
        events.append(SseEvent(data=f"<{type(exc).__name__}>"))
    return events


# -- semantics ---------------------------------------------------------------------------------


def test_lf_crlf_and_cr_line_ends_are_equivalent() -> None:
    lf = parse_sse(b"data: a\n\ndata: b\n\n")[0]
    crlf = parse_sse(b"data: a\r\n\r\ndata: b\r\n\r\n")[0]
    cr = parse_sse(b"data: a\r\rdata: b\r\r")[0]
    assert lf == crlf == cr == [SseEvent("a"), SseEvent("b")]


def test_line_end_styles_are_observed() -> None:
    _, obs = parse_sse(b"data: a\r\n\r\ndata: b\n\ndata: c\r\r")
    assert obs.line_endings == {"crlf", "lf", "cr"}
    assert (obs.crlf_line_ends, obs.lf_line_ends, obs.cr_line_ends) == (2, 2, 2)


def test_cr_at_end_of_one_feed_and_lf_at_start_of_next_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r") == [SseEvent("a")]
    assert parser.feed(b"\n") == []  # the LF completes the CRLF: no second blank line
    assert parser.feed(b"data: b\n\n") == [SseEvent("b")]
    assert parser.observations.crlf_line_ends == 2
    assert parser.observations.cr_line_ends == 0


def test_one_optional_space_is_stripped_and_missing_space_observed() -> None:
    events, obs = parse_sse(b"data:x\n\ndata:  y\n\n")
    assert [e.data for e in events] == ["x", " y"]
    assert obs.data_without_space
    assert obs.data_lines_without_space == 1


def test_multiple_data_lines_join_with_newline() -> None:
    events, _ = parse_sse(b'data: {\ndata: "a": 1\ndata: }\n\n')
    assert events == [SseEvent('{\n"a": 1\n}')]


def test_empty_data_field_dispatches_an_empty_event() -> None:
    assert parse_sse(b"data\n\ndata:\n\n")[0] == [SseEvent(""), SseEvent("")]


def test_comments_are_recorded_not_dispatched() -> None:
    events, obs = parse_sse(b": OPENROUTER PROCESSING\n\ndata: 1\n\n")
    assert events == [SseEvent("1")]
    assert obs.comment_count == 1
    assert obs.comments == [" OPENROUTER PROCESSING"]


def test_event_id_retry_fields_are_recorded_per_event() -> None:
    events, obs = parse_sse(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events == [SseEvent("x", event="delta", id="7", retry=1500), SseEvent("y")]
    assert (obs.event_fields, obs.id_fields, obs.retry_fields) == (1, 1, 1)


def test_blank_block_after_id_is_observed() -> None:
    _, obs = parse_sse(b"id: 1\ndata: x\n\n: ping\n\n")
    assert obs.empty_blocks_after_id == 1


def test_block_without_data_is_not_dispatched() -> None:
    assert parse_sse(b"event: ping\n\nretry: 10\n\n")[0] == []


def test_non_field_lines_are_kept_verbatim() -> None:
    body = b'data: {"a":1}\n\n{\n  "error": {\n    "code": 499\n  }\n}\n'
    events, obs = parse_sse(body)
    assert events == [SseEvent('{"a":1}')]
    assert obs.non_field_lines == ["{", '  "error": {', '    "code": 499', "  }", "}"]
    assert obs.non_field_line_count == 5


def test_event_cut_off_at_end_of_body_is_dispatched_flagged() -> None:
    events, obs = parse_sse(b"data: a\n\ndata: [DONE]")
    assert events == [SseEvent("a"), SseEvent("[DONE]", truncated=True)]
    assert obs.truncated_event
    events, _ = parse_sse(b"data: [DONE]\r\n")
    assert events == [SseEvent("[DONE]", truncated=True)]


def test_bom_is_stripped_once() -> None:
    events, obs = parse_sse(b"\xef\xbb\xbfdata: a\n\n")
    assert events == [SseEvent("a")]
    assert obs.bom


def test_invalid_utf8_is_replaced_and_observed() -> None:
    events, obs = parse_sse(b"data: \xff\n\n")
    assert events == [SseEvent("\ufffd")]
    assert obs.invalid_utf8


def test_feed_after_finish_is_an_error() -> None:
    parser = SseParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed(b"data: x\n\n")


def test_encoders_round_trip() -> None:
    framed = encode_data_event("line1\nline2") + encode_comment("ping") + encode_data_event(b"[DONE]")
    events, obs = parse_sse(framed)
    assert events == [SseEvent("line1\nline2"), SseEvent("[DONE]")]
    assert obs.comments == [" ping"]


# -- limits --------------------------------------------------------------------------------------


def test_line_too_long_raises_typed_error_with_earlier_events() -> None:
    parser = SseParser(max_line_bytes=16)
    with pytest.raises(SseLineTooLong) as info:
        parser.feed(b"data: ok\n\ndata: " + b"x" * 40 + b"\n\n")
    assert info.value.events_before == [SseEvent("ok")]
    assert info.value.limit == 16
    with pytest.raises(SseLineTooLong):  # the parser stays failed
        parser.feed(b"data: more\n\n")


def test_line_of_exactly_the_cap_is_accepted() -> None:
    line = b"data: " + b"x" * 10
    assert SseParser(max_line_bytes=len(line)).feed(line + b"\n\n") == [SseEvent("x" * 10)]


def test_event_too_large_raises() -> None:
    parser = SseParser(max_line_bytes=64, max_event_bytes=100)
    with pytest.raises(SseEventTooLarge):
        parser.feed(b"data: " + b"y" * 50 + b"\n" + b"data: " + b"y" * 50 + b"\n")


def test_endless_line_fed_in_pieces_keeps_memory_bounded() -> None:
    cap = 64 * 1024
    parser = SseParser(max_line_bytes=cap)
    piece = b"z" * 4096
    tracemalloc.start()
    try:
        fed = 0

        def feed_forever() -> None:
            nonlocal fed
            while fed < 10_000:  # 40 MiB if it were buffered
                fed += 1
                parser.feed(piece)

        with pytest.raises(SseLineTooLong):
            feed_forever()
        assert fed == cap // len(piece) + 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * cap
    assert len(parser._pending) == 0


def test_comment_and_stray_text_retention_is_bounded() -> None:
    parser = SseParser()
    for _ in range(2000):
        parser.feed(b": " + b"c" * 1000 + b"\n" + b"junk" * 250 + b"\n")
    obs = parser.observations
    assert obs.comment_count == 2000
    assert obs.non_field_line_count == 2000
    assert obs.kept_text_bytes <= 64 * 1024


# -- split invariance (hypothesis) ------------------------------------------------------------------

_LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=24
)
_FIELD_LINES = st.one_of(
    st.builds(lambda t: f"data: {t}", _TEXT),
    st.builds(lambda t: f"data:{t}", _TEXT),
    st.builds(lambda t: f": {t}", _TEXT),
    st.builds(lambda t: f"event: {t}", _TEXT),
    st.builds(lambda t: f"id: {t}", _TEXT),
    st.builds(lambda t: f"retry: {t}", st.integers(0, 10_000).map(str)),
    _TEXT,  # stray lines (including bare JSON-ish text and unicode)
    st.just(""),
    st.just("data: é😀中"),
)


@st.composite
def streams_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    lines = draw(st.lists(st.tuples(_FIELD_LINES, _LINE_ENDS), max_size=30))
    body = "".join(text + end for text, end in lines)
    if draw(st.booleans()):
        body += draw(_FIELD_LINES)  # unterminated tail
    raw = body.encode("utf-8")
    if draw(st.booleans()):
        raw = b"\xef\xbb\xbf" + raw
    cuts = draw(st.lists(st.integers(0, len(raw)), max_size=len(raw) + 1))
    return raw, cuts


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(streams_and_cuts())
def test_any_split_gives_the_same_events_and_observations(case: tuple[bytes, list[int]]) -> None:
    body, cuts = case
    whole = SseParser()
    expected = whole.feed(body) + whole.finish()
    split = SseParser()
    bounds = [0, *sorted(set(cuts)), len(body)]
    got: list[SseEvent] = []
    for start, end in itertools.pairwise(bounds):
        got.extend(split.feed(body[start:end]))
    got.extend(split.finish())
    assert got == expected
    assert split.observations == whole.observations


@settings(max_examples=200)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=40))
def test_any_split_of_arbitrary_bytes_is_invariant(body: bytes, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c <= len(body)]
    assert parse_in_chunks(body, cuts) == parse_in_chunks(body, [])


def test_every_single_byte_offset_including_inside_utf8_and_crlf() -> None:
    body = "data: héllo 😀\r\n\r\n: c\r\ndata: a\rdata: b\r\r\ndata: 中文\n\n".encode()
    expected = parse_in_chunks(body, [])
    assert [e.data for e in expected] == ["héllo 😀", "a\nb", "中文"]
    for offset in range(len(body) + 1):
        assert parse_in_chunks(body, [offset]) == expected, offset
    assert parse_in_chunks(body, list(range(len(body)))) == expected


@settings(max_examples=200)
@given(
    st.integers(1, 40),
    st.lists(st.tuples(st.integers(0, 60), _LINE_ENDS), min_size=1, max_size=8),
    st.lists(st.integers(0, 600), max_size=30),
)
def test_over_long_lines_fail_the_same_way_for_any_split(
    cap: int, shape: list[tuple[int, str]], cuts: list[int]
) -> None:
    body = "".join("data: " + "x" * n + end + "\n" for n, end in shape).encode()
    cuts = [c for c in cuts if c <= len(body)]
    assert parse_in_chunks(body, cuts, cap) == parse_in_chunks(body, [], cap)
