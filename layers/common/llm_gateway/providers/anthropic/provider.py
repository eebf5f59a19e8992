"""The Anthropic ``Provider``: what the proxy and the conformance engine call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.models.report import Check, CheckCategory
from llm_gateway.providers.anthropic import checks as spec_checks
from llm_gateway.providers.anthropic import errors, request
from llm_gateway.providers.anthropic.translate import AnthropicTranslation
from llm_gateway.providers.base import CheckPlan, EndpointSpec, StreamRelay
from llm_gateway.providers.common.http import Headers, UpstreamError
from llm_gateway.providers.request import UpstreamRequest

__all__ = ["ANTHROPIC", "ANTHROPIC_PLAN", "AnthropicProvider"]

_ENDPOINT, _STREAMING, _FORMAT = CheckCategory.ENDPOINT, CheckCategory.STREAMING, CheckCategory.FORMAT

ANTHROPIC_PLAN = CheckPlan(
    without_response=(
        ("http_status", _ENDPOINT), ("content_type", _STREAMING), ("sse_framing", _STREAMING),
        ("data_json", _FORMAT), ("event_order", _FORMAT), ("tool_input_json", _FORMAT),
        ("stop_reason", _FORMAT), ("message_stop", _FORMAT),
    ),
    outcome_ids=spec_checks.OUTCOME_CHECK_IDS,
    inband_error_ids=frozenset({"mid_stream_error"}),
    end_of_stream_ids=frozenset({"stop_reason", "message_stop", "usage"}),
)  # fmt: skip
_TOKEN_DELTAS = frozenset({"text_delta", "input_json_delta"})


class AnthropicProvider:
    """Anthropic's Messages API (and compatible servers), translated to OpenAI chunks."""

    llm_format = LlmFormat.ANTHROPIC
    label = "Anthropic"
    url_hint = request.URL_HINT
    plan = ANTHROPIC_PLAN

    def build_request(self, endpoint: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
        return request.build_request(endpoint, chat, api_key)

    def check_response(
        self,
        status: int,
        headers: Headers,
        body: bytes,
        *,
        expect_complete: bool = True,
        expect_start: bool = True,
        secrets: Sequence[str] = (),
    ) -> list[Check]:
        return spec_checks.check_response(
            status, headers, body, expect_complete=expect_complete, expect_start=expect_start, secrets=secrets
        )

    def classify_error(
        self, status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
    ) -> UpstreamError:
        return errors.classify_upstream_error(status, body, headers, secrets=secrets)

    def make_relay(self, endpoint: EndpointSpec, chat: ChatRequest) -> StreamRelay:
        include_usage = bool((chat.stream_options or {}).get("include_usage"))
        return AnthropicTranslation(
            model=endpoint.model_name, include_usage=include_usage, reasoning_format=endpoint.reasoning_format
        )

    def carries_token(self, payload: Mapping[str, Any]) -> bool:
        if payload.get("type") == "content_block_start":
            block = payload.get("content_block")
            return isinstance(block, dict) and block.get("type") == "tool_use"
        delta = payload.get("delta") if payload.get("type") == "content_block_delta" else None
        return isinstance(delta, dict) and delta.get("type") in _TOKEN_DELTAS

    def conforms(self, checks: Iterable[Check]) -> bool:
        return spec_checks.conforms(checks)


ANTHROPIC = AnthropicProvider()
