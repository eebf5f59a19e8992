"""OpenAI provider: URLs, request building, each MUST/SHOULD rule, error classification, relay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.openai import (
    EndpointUrlError,
    OpenAiStreamRelay,
    build_request,
    chat_completions_url,
    check_response,
    classify_upstream_error,
    conforms,
    trim_evidence,
)
from llm_gateway.providers.sse import encode_data_event, parse_sse

SSE = {"content-type": "text/event-stream; charset=utf-8"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}],
    }
    base.update(over)
    return base


def stream(*chunks: dict[str, Any] | str, done: bool = True) -> bytes:
    out = b"".join(encode_data_event(c if isinstance(c, str) else json.dumps(c)) for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def good_text() -> list[dict[str, Any]]:
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
    ]


def by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


def status_of(body: bytes, check_id: str, headers: dict[str, str] = SSE, **kw: Any) -> CheckStatus:
    return by_id(check_response(200, headers, body, **kw))[check_id].status


# -- URLs and requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/chat/completions"),
        ("https://h.example/proxy/v1?x=1", "https://h.example/proxy/v1/chat/completions?x=1"),
        ("  https://h.example/v1/chat/completions/  ", "https://h.example/v1/chat/completions"),
    ],
)
def test_chat_completions_url(given: str, expected: str) -> None:
    assert chat_completions_url(given) == expected


@pytest.mark.parametrize("bad", ["https://api.openai.com", "https://h.example/v2", "api.openai.com/v1"])
def test_chat_completions_url_rejects_other_paths(bad: str) -> None:
    with pytest.raises(EndpointUrlError):
        chat_completions_url(bad)


def test_build_request_bearer_stream_true_and_config_fields() -> None:
    chat = ChatRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "stream": False,
            "max_tokens": 500,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "tool_choice": "auto",
            "stream_options": {"include_usage": True},
        }
    )
    req = build_request(
        url="https://api.openai.com/v1",
        model_name="gpt-4o-mini",
        api_key="sk-test-123",
        chat=chat,
        temperature=0.3,
        max_tokens=64,
        extra_headers={"X-Tenant": "t1", "Authorization": "evil", "Content-Type": "text/plain"},
    )
    assert req.method == "POST"
    assert req.url == "https://api.openai.com/v1/chat/completions"
    assert req.headers["Authorization"] == "Bearer sk-test-123"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Tenant"] == "t1"
    assert "api-key" not in req.headers
    body = json.loads(req.body)
    assert body["stream"] is True
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 64  # the configured cap wins over the larger request
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["tool_choice"] == "auto"
    assert body["stream_options"] == {"include_usage": True}


def test_request_temperature_overrides_config_default() -> None:
    chat = ChatRequest.model_validate({"messages": [{"role": "user", "content": "x"}], "temperature": 1.1})
    body = json.loads(
        build_request(url="https://h/v1", model_name="m", api_key="k", chat=chat, temperature=0.2).body
    )
    assert body["temperature"] == 1.1
    assert "max_tokens" not in body


# -- framing and headers ----------------------------------------------------------------------------


def test_reference_stream_passes_everything() -> None:
    checks = check_response(200, SSE, stream(*good_text()))
    assert conforms(checks)
    assert all(c.status in (CheckStatus.PASS, CheckStatus.SKIP) for c in checks), checks


@pytest.mark.parametrize(
    "headers", [{}, {"content-type": "application/json"}, {"content-type": "application/x-ndjson"}]
)
def test_content_type_must_be_event_stream(headers: dict[str, str]) -> None:
    check = by_id(check_response(200, headers, stream(*good_text())))["content_type"]
    assert check.status == CheckStatus.FAIL
    assert check.category == CheckCategory.STREAMING
    assert check.hint


def test_content_type_is_case_insensitive_with_parameters() -> None:
    assert (
        status_of(stream(*good_text()), "content_type", {"Content-Type": "Text/Event-Stream; charset=UTF-8"})
        == CheckStatus.PASS
    )


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_style_is_accepted(ending: bytes) -> None:
    body = stream(*good_text()).replace(b"\n", ending)
    assert conforms(check_response(200, SSE, body))


def test_data_without_space_is_info_only() -> None:
    body = stream(*good_text()).replace(b"data: ", b"data:")
    checks = by_id(check_response(200, SSE, body))
    assert checks["sse_framing"].status == CheckStatus.PASS
    assert "without a space" in checks["sse_framing"].message


def test_comments_are_tolerated() -> None:
    assert conforms(check_response(200, SSE, b": OPENROUTER PROCESSING\n\n" + stream(*good_text())))


def test_comment_blank_lines_with_id_fields_warn() -> None:
    body = b"id: 1\n" + stream(*good_text()).replace(b"data: [DONE]", b": ping\n\ndata: [DONE]")
    check = by_id(check_response(200, SSE, body))["sse_fields"]
    assert check.status == CheckStatus.WARN


def test_event_fields_should_not_be_used() -> None:
    body = stream(*good_text()).replace(b"data: {", b"event: chunk\ndata: {", 1)
    assert status_of(body, "sse_fields") == CheckStatus.WARN
    assert conforms(check_response(200, SSE, body))


def test_non_sse_body_fails_framing() -> None:
    body = b'{"message":{"content":"hi"},"done":false}\n{"done":true}\n'
    checks = by_id(check_response(200, SSE, body))
    assert checks["sse_framing"].status == CheckStatus.FAIL
    assert not conforms(list(checks.values()))


def test_json_lines_mixed_into_a_stream_fail() -> None:
    body = stream(*good_text()) + b'{"error": {"message": "x"}}\n'
    assert status_of(body, "sse_framing") == CheckStatus.FAIL


def test_truncated_last_event_warns() -> None:
    body = stream(*good_text())[:-1]  # "data: [DONE]\n" only
    checks = by_id(check_response(200, SSE, body))
    assert checks["sse_framing"].status == CheckStatus.WARN
    assert checks["done_terminator"].status == CheckStatus.PASS


def test_over_long_line_fails_framing() -> None:
    body = stream(chunk({"role": "assistant", "content": "x" * 5000}), chunk({}, "stop"))
    assert status_of(body, "sse_framing", max_line_bytes=1024) == CheckStatus.FAIL


# -- data / chunk schema -----------------------------------------------------------------------------


def test_data_must_be_json_or_done() -> None:
    body = b"data: : OPENROUTER PROCESSING\n\n" + stream(*good_text())
    check = by_id(check_response(200, SSE, body))["data_json"]
    assert check.status == CheckStatus.FAIL
    assert check.evidence == ": OPENROUTER PROCESSING"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("object", "chat.completion"),
        ("object", ""),
        ("id", 5),
        ("created", "now"),
        ("created", 1.5),
        ("model", None),
    ],
)
def test_chunk_top_level_fields_are_must(field: str, value: Any) -> None:
    chunks = good_text()
    chunks[1][field] = value
    check = by_id(check_response(200, SSE, stream(*chunks)))["chunk_schema"]
    assert check.status == CheckStatus.FAIL
    assert check.category == CheckCategory.FORMAT


def test_choices_must_be_an_array_with_index_and_delta() -> None:
    for mutate in (
        lambda c: c.update(choices={"index": 0}),
        lambda c: c["choices"][0].pop("index"),
        lambda c: c["choices"][0].pop("delta"),
        lambda c: c["choices"][0]["delta"].update(content=5),
    ):
        chunks = good_text()
        mutate(chunks[1])
        assert status_of(stream(*chunks), "chunk_schema") == CheckStatus.FAIL


def test_unknown_keys_and_empty_choices_metadata_chunks_are_tolerated() -> None:
    chunks = [*good_text()]
    for c in chunks:
        c["obfuscation"] = "abc"
        c["usage"] = None
        c["system_fingerprint"] = None
    chunks.append(chunk(choices=[], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}))
    chunks.append(chunk(choices=[], moderation={"flagged": False}))
    assert all(c.status != CheckStatus.FAIL for c in check_response(200, SSE, stream(*chunks)))


def test_id_and_created_should_be_stable() -> None:
    chunks = good_text()
    chunks[2]["id"] = "chatcmpl-2"
    chunks[3]["created"] = 1
    check = by_id(check_response(200, SSE, stream(*chunks)))["chunk_consistency"]
    assert check.status == CheckStatus.WARN


def test_first_chunk_should_carry_role() -> None:
    assert status_of(stream(*good_text()[1:]), "role_first") == CheckStatus.WARN


def test_azure_only_object_empty_fails_on_openai() -> None:
    prompt_filter = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [],
    }
    assert status_of(stream(prompt_filter, *good_text()), "chunk_schema") == CheckStatus.FAIL


# -- finish_reason and terminator ----------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "eos"])
def test_finish_reason_must_be_a_known_value(reason: str) -> None:
    chunks = good_text()
    chunks[-1]["choices"][0]["finish_reason"] = reason
    assert status_of(stream(*chunks), "finish_reason") == CheckStatus.FAIL


def test_finish_reason_must_not_be_set_on_intermediate_chunks() -> None:
    chunks = good_text()
    chunks[1]["choices"][0]["finish_reason"] = "stop"
    assert status_of(stream(*chunks), "finish_reason") == CheckStatus.FAIL


def test_finish_reason_must_appear() -> None:
    assert status_of(stream(*good_text()[:-1]), "finish_reason") == CheckStatus.FAIL


def test_finish_reason_once_per_choice_with_parallel_choices() -> None:
    a = chunk({"role": "assistant", "content": "a"})
    b = chunk({"role": "assistant", "content": "b"})
    b["choices"][0]["index"] = 1
    end_a = chunk({}, "stop")
    end_b = chunk({}, "length")
    end_b["choices"][0]["index"] = 1
    assert conforms(check_response(200, SSE, stream(a, b, end_a, end_b)))
    assert not conforms(check_response(200, SSE, stream(a, b, end_a)))


def test_done_is_required_with_sdk_note() -> None:
    check = by_id(check_response(200, SSE, stream(*good_text(), done=False)))["done_terminator"]
    assert check.status == CheckStatus.FAIL
    assert "openai-python tolerates" in (check.hint or "")


def test_nothing_should_follow_done() -> None:
    body = stream(*good_text()) + stream(chunk({"content": "late"}), done=False)
    assert status_of(body, "done_terminator") == CheckStatus.WARN


def test_done_with_trailing_text_warns() -> None:
    body = stream(*good_text(), done=False) + b"data: [DONE] \n\n"
    assert status_of(body, "done_terminator") == CheckStatus.WARN


def test_fragment_skips_end_of_stream_rules() -> None:
    checks = by_id(check_response(200, SSE, stream(*good_text()[:2], done=False), expect_complete=False))
    assert checks["done_terminator"].status == CheckStatus.SKIP
    assert checks["finish_reason"].status == CheckStatus.SKIP


# -- tool calls -----------------------------------------------------------------------------------


def tool_stream(
    first: dict[str, Any] | None = None,
    args: tuple[str, ...] = ('{"city"', ':"Paris"}'),
    finish: str = "tool_calls",
) -> bytes:
    start = first or {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    chunks = [chunk({"role": "assistant", "content": None, "tool_calls": [start]})]
    chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in args]
    chunks.append(chunk({}, finish))
    return stream(*chunks)


def test_good_tool_call_stream_passes() -> None:
    checks = by_id(check_response(200, SSE, tool_stream()))
    assert checks["tool_call_deltas"].status == CheckStatus.PASS
    assert conforms(list(checks.values()))


def test_tool_call_without_index_fails() -> None:
    first = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = stream(chunk({"role": "assistant", "tool_calls": [first]}), chunk({}, "tool_calls"))
    assert status_of(body, "tool_call_deltas") == CheckStatus.FAIL


@pytest.mark.parametrize("drop", ["id", "name"])
def test_first_tool_fragment_needs_id_and_name(drop: str) -> None:
    first: dict[str, Any] = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    if drop == "id":
        first.pop("id")
    else:
        first["function"].pop("name")
    assert status_of(tool_stream(first), "tool_call_deltas") == CheckStatus.FAIL


def test_tool_arguments_must_join_to_json() -> None:
    assert status_of(tool_stream(args=('{"city"', ':"Par')), "tool_call_deltas") == CheckStatus.FAIL


def test_tool_calls_should_finish_with_tool_calls() -> None:
    assert status_of(tool_stream(finish="stop"), "tool_call_deltas") == CheckStatus.WARN


def test_parallel_tool_calls_by_index() -> None:
    calls = [
        {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}},
    ]
    body = stream(
        chunk({"role": "assistant", "tool_calls": calls}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"x": 1}'}}]}),
        chunk({}, "tool_calls"),
    )
    assert conforms(check_response(200, SSE, body))


# -- errors ------------------------------------------------------------------------------------


OPENAI_ERROR = {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}


@pytest.mark.parametrize(
    ("status", "error", "code", "category"),
    [
        (401, {"message": "Incorrect API key"}, "upstream_unauthorized", CheckCategory.AUTH),
        (403, {"message": "no"}, "upstream_unauthorized", CheckCategory.AUTH),
        (
            404,
            {"message": "The model `x` does not exist", "code": "model_not_found"},
            "upstream_model_not_found",
            CheckCategory.MODEL,
        ),
        (404, {"message": "Not Found"}, "upstream_bad_request", CheckCategory.ENDPOINT),
        (405, {"message": "Method Not Allowed"}, "upstream_bad_request", CheckCategory.ENDPOINT),
        (400, {"message": "bad max_tokens"}, "upstream_bad_request", CheckCategory.REQUEST),
        (422, {"message": "bad"}, "upstream_bad_request", CheckCategory.REQUEST),
        (429, {"message": "slow down"}, "upstream_rate_limited", CheckCategory.REQUEST),
        (500, {"message": "boom"}, "upstream_server_error", CheckCategory.ENDPOINT),
        (503, {"message": "busy"}, "upstream_server_error", CheckCategory.ENDPOINT),
    ],
)
def test_error_classification(status: int, error: dict[str, Any], code: str, category: CheckCategory) -> None:
    body = json.dumps({"error": error}).encode()
    info = classify_upstream_error(status, body, {"retry-after": "3"})
    assert (info.code, info.category) == (code, category)
    assert info.retry_after_s == 3.0
    checks = by_id(check_response(status, {"content-type": "application/json"}, body))
    assert checks["http_status"].status == CheckStatus.FAIL
    assert checks["http_status"].category == category
    assert checks["http_status"].hint


def test_well_shaped_error_body_conforms() -> None:
    checks = check_response(
        400, {"content-type": "application/json; charset=utf-8"}, json.dumps(OPENAI_ERROR).encode()
    )
    assert by_id(checks)["error_body"].status == CheckStatus.PASS
    assert conforms(checks)


def test_error_body_must_have_message_and_should_have_keys() -> None:
    json_ct = {"content-type": "application/json"}
    assert by_id(check_response(400, json_ct, b'{"detail": "bad"}'))["error_body"].status == CheckStatus.FAIL
    assert (
        by_id(check_response(400, json_ct, b'{"error": {"code": 1}}'))["error_body"].status
        == CheckStatus.FAIL
    )
    assert (
        by_id(check_response(400, json_ct, b'{"error": {"message": "x"}}'))["error_body"].status
        == CheckStatus.WARN
    )
    assert (
        by_id(check_response(502, {"content-type": "text/html"}, b"<html>"))["error_body"].status
        == CheckStatus.FAIL
    )


def test_inband_error_in_a_200_stream_fails() -> None:
    err = {"error": {"message": "context length exceeded", "type": "BadRequestError", "code": 400}}
    checks = by_id(check_response(200, SSE, stream(err)))
    assert checks["inband_error"].status == CheckStatus.FAIL
    assert "before any token" in checks["inband_error"].message
    assert checks["inband_error"].category == CheckCategory.REQUEST


def test_evidence_is_trimmed_and_secrets_redacted() -> None:
    body = json.dumps(
        {"error": {"message": "Incorrect API key provided: sk-abcdef123456. " + "x" * 2000}}
    ).encode()
    checks = check_response(401, {"content-type": "application/json"}, body, secrets=["sk-abcdef123456"])
    for c in checks:
        assert "sk-abcdef123456" not in (c.message + (c.evidence or ""))
        assert len((c.evidence or "").encode()) <= 512
    assert len(trim_evidence("é" * 1000).encode()) <= 512


# -- relay -------------------------------------------------------------------------------------


def relay_all(body: bytes, relay: OpenAiStreamRelay) -> bytes:
    events, _ = parse_sse(body)
    out = b"".join(b for e in events for b in relay.feed_event(e))
    return out + b"".join(relay.finish())


def test_relay_forwards_payloads_unchanged_and_stops_at_done() -> None:
    body = stream(*good_text()) + b'data: {"late": 1}\n\n'
    relay = OpenAiStreamRelay()
    out = relay_all(body, relay)
    assert out == stream(*good_text())
    assert relay.done
    assert relay.content_started
    assert relay.error is None
    assert relay.dropped == 1


def test_relay_drops_non_json_and_detects_inband_error() -> None:
    relay = OpenAiStreamRelay()
    body = b"data: : OPENROUTER PROCESSING\n\n" + stream(
        good_text()[0], {"error": {"message": "boom"}}, done=False
    )
    out = relay_all(body, relay)
    assert out == stream(good_text()[0], done=False)
    assert relay.error == {"message": "boom"}
    assert relay.ended
    assert not relay.incomplete


def test_relay_adds_done_only_after_a_clean_finish() -> None:
    relay = OpenAiStreamRelay()
    assert relay_all(stream(*good_text(), done=False), relay).endswith(b"data: [DONE]\n\n")
    cut = OpenAiStreamRelay()
    assert not relay_all(stream(*good_text()[:2], done=False), cut).endswith(b"[DONE]\n\n")
    assert cut.incomplete
