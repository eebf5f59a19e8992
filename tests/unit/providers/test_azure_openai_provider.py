"""Azure OpenAI: URL forms, api-key auth, the Azure stream tolerances, error shapes and the relay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.azure_openai import (
    DEFAULT_API_VERSION,
    AzureStreamRelay,
    EndpointUrlError,
    build_request,
    chat_completions_url,
    check_response,
)
from llm_gateway.providers.openai import conforms
from llm_gateway.providers.sse import encode_data_event, parse_sse

SSE = {"content-type": "text/event-stream"}
SAFE = {c: {"filtered": False, "severity": "safe"} for c in ("hate", "self_harm", "sexual", "violence")}
PROMPT_FILTER = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": SAFE}],
}


def annotation(finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "content_filter_results": SAFE,
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 10},
            }
        ],
    }


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "choices": [{"content_filter_results": {}, "delta": delta, "finish_reason": finish, "index": 0}],
        "created": 1700000000,
        "id": "chatcmpl-az",
        "model": "gpt-4o",
        "object": "chat.completion.chunk",
    }


def stream(*chunks: dict[str, Any], done: bool = True) -> bytes:
    body = b"".join(encode_data_event(json.dumps(c)) for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


CHAT = ChatRequest.model_validate(
    {"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}}
)


# -- URLs and requests ---------------------------------------------------------------------------


def test_classic_url_from_resource_endpoint() -> None:
    url = chat_completions_url("https://res.openai.azure.com/", "my dep", "2024-10-21")
    assert (
        url
        == "https://res.openai.azure.com/openai/deployments/my%20dep/chat/completions?api-version=2024-10-21"
    )


def test_classic_url_defaults_api_version() -> None:
    url = chat_completions_url("https://res.openai.azure.com", "gpt4o")
    assert url.endswith(f"/openai/deployments/gpt4o/chat/completions?api-version={DEFAULT_API_VERSION}")


def test_classic_url_accepts_endpoint_with_openai_suffix() -> None:
    url = chat_completions_url("https://res.openai.azure.com/openai", "d", "2024-06-01")
    assert url == "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-06-01"


def test_full_classic_url_is_kept_and_gets_an_api_version() -> None:
    full = "https://res.openai.azure.com/openai/deployments/d/chat/completions"
    assert chat_completions_url(full, None, "2025-01-01-preview") == full + "?api-version=2025-01-01-preview"
    with_version = full + "?api-version=2024-06-01"
    assert chat_completions_url(with_version) == with_version


@pytest.mark.parametrize(
    "base", ["https://res.openai.azure.com/openai/v1", "https://res.openai.azure.com/openai/v1/"]
)
def test_v1_base(base: str) -> None:
    assert (
        chat_completions_url(base, "dep", "2024-10-21")
        == "https://res.openai.azure.com/openai/v1/chat/completions"
    )


def test_classic_url_needs_a_deployment() -> None:
    with pytest.raises(EndpointUrlError):
        chat_completions_url("https://res.openai.azure.com")


def test_build_request_classic_uses_api_key_header() -> None:
    req = build_request(
        url="https://res.openai.azure.com",
        model_name="gpt-4o",
        deployment="prod-4o",
        api_version="2024-10-21",
        api_key="azkey",
        chat=CHAT,
        max_tokens=32,
        extra_headers={"api-key": "evil", "X-Env": "test"},
    )
    assert (
        req.url
        == "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    )
    assert req.headers["api-key"] == "azkey"
    assert "Authorization" not in req.headers
    assert req.headers["X-Env"] == "test"
    body = json.loads(req.body)
    assert body["stream"] is True
    assert body["max_tokens"] == 32
    assert body["stream_options"] == {"include_usage": True}


def test_build_request_v1_sends_deployment_as_model() -> None:
    req = build_request(
        url="https://res.openai.azure.com/openai/v1/",
        model_name="gpt-4o",
        deployment="prod-4o",
        api_key="k",
        chat=CHAT,
    )
    assert req.url == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert json.loads(req.body)["model"] == "prod-4o"


def test_old_api_version_drops_stream_options() -> None:
    req = build_request(
        url="https://res.openai.azure.com",
        model_name="m",
        deployment="d",
        api_version="2024-06-01",
        api_key="k",
        chat=CHAT,
    )
    assert "stream_options" not in json.loads(req.body)
    newer = build_request(
        url="https://res.openai.azure.com",
        model_name="m",
        deployment="d",
        api_version="2024-09-01-preview",
        api_key="k",
        chat=CHAT,
    )
    assert "stream_options" in json.loads(newer.body)


# -- stream tolerances -----------------------------------------------------------------------------


def test_prompt_filter_and_async_annotations_after_finish_are_tolerated() -> None:
    body = stream(
        PROMPT_FILTER,
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        annotation(),
        chunk({}, "stop"),
        annotation(),
    )
    checks = check_response(200, SSE, body)
    assert conforms(checks)
    assert all(c.status in (CheckStatus.PASS, CheckStatus.SKIP) for c in checks), checks


def test_legacy_prompt_annotations_name_is_tolerated() -> None:
    legacy = dict(PROMPT_FILTER)
    legacy["prompt_annotations"] = legacy.pop("prompt_filter_results")
    body = stream(legacy, chunk({"role": "assistant"}), chunk({}, "stop"))
    assert conforms(check_response(200, SSE, body))


def test_content_filter_finish_on_an_annotation_chunk_counts_as_the_finish() -> None:
    body = stream(
        PROMPT_FILTER, chunk({"role": "assistant"}), chunk({"content": "bad"}), annotation("content_filter")
    )
    checks = by_id(check_response(200, SSE, body))
    assert checks["finish_reason"].status == CheckStatus.PASS


def test_azure_still_requires_done_object_and_tool_index() -> None:
    assert not conforms(
        check_response(200, SSE, stream(chunk({"role": "assistant"}), chunk({}, "stop"), done=False))
    )
    wrong = chunk({"role": "assistant"})
    wrong["object"] = "chat.completion"
    assert not conforms(check_response(200, SSE, stream(wrong, chunk({}, "stop"))))
    no_index = chunk(
        {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}
    )
    assert by_id(check_response(200, SSE, stream(no_index, chunk({}, "tool_calls"))))[
        "tool_call_deltas"
    ].status == (CheckStatus.FAIL)


# -- errors ------------------------------------------------------------------------------------


JSON_CT = {"Content-Type": "application/json"}


def test_azure_gateway_error_envelope_is_accepted() -> None:
    body = b'{"error":{"code":"401","message":"Access denied due to invalid subscription key"}}'
    checks = by_id(check_response(401, JSON_CT, body))
    assert checks["error_body"].status == CheckStatus.PASS
    assert checks["http_status"].category == CheckCategory.AUTH


def test_deployment_not_found_is_a_model_problem() -> None:
    body = b'{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}'
    checks = by_id(check_response(404, JSON_CT, body))
    assert checks["http_status"].category == CheckCategory.MODEL
    assert "upstream_model_not_found" in checks["http_status"].message
    assert checks["error_body"].status == CheckStatus.PASS


def test_content_filter_400_is_a_request_problem() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "filtered",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            }
        }
    ).encode()
    checks = by_id(check_response(400, JSON_CT, body))
    assert checks["http_status"].category == CheckCategory.REQUEST
    assert "content filter" in (checks["http_status"].hint or "")
    assert conforms(list(checks.values()))


# -- relay -------------------------------------------------------------------------------------


def relay_all(body: bytes) -> tuple[list[dict[str, Any] | str], AzureStreamRelay]:
    relay = AzureStreamRelay()
    events, _ = parse_sse(body)
    out = b"".join(b for e in events for b in relay.feed_event(e)) + b"".join(relay.finish())
    parsed, _ = parse_sse(out)
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in parsed], relay


def test_relay_drops_filter_chunks() -> None:
    body = stream(
        PROMPT_FILTER,
        chunk({"role": "assistant"}),
        annotation(),
        chunk({"content": "x"}),
        chunk({}, "stop"),
        annotation(),
    )
    out, relay = relay_all(body)
    assert out == [chunk({"role": "assistant"}), chunk({"content": "x"}), chunk({}, "stop"), "[DONE]"]
    assert relay.dropped == 3


def test_relay_turns_a_content_filter_annotation_into_a_finish_chunk() -> None:
    body = stream(
        PROMPT_FILTER, chunk({"role": "assistant"}), chunk({"content": "x"}), annotation("content_filter")
    )
    out, _ = relay_all(body)
    assert out[-1] == "[DONE]"
    final = out[-2]
    assert isinstance(final, dict)
    assert final["object"] == "chat.completion.chunk"
    assert final["id"] == "chatcmpl-az"
    assert final["choices"] == [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]
    # the output is a valid OpenAI stream
    checks = check_response(
        200,
        SSE,
        b"".join(
            encode_data_event(json.dumps(o)) if isinstance(o, dict) else b"data: [DONE]\n\n" for o in out
        ),
    )
    assert conforms(checks)
