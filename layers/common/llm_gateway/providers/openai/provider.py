"""The OpenAI Chat Completions ``Provider``: what the proxy and the conformance engine call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.models.report import Check, CheckCategory
from llm_gateway.providers.base import CheckPlan, EndpointSpec, StreamRelay
from llm_gateway.providers.common.http import Headers, UpstreamError
from llm_gateway.providers.openai import checks as spec_checks
from llm_gateway.providers.openai import errors, request
from llm_gateway.providers.openai.relay import OpenAiPassThrough
from llm_gateway.providers.request import UpstreamRequest

__all__ = ["OPENAI", "OPENAI_PLAN", "OpenAiProvider"]

_ENDPOINT, _STREAMING, _FORMAT = CheckCategory.ENDPOINT, CheckCategory.STREAMING, CheckCategory.FORMAT

OPENAI_PLAN = CheckPlan(
    without_response=(
        ("http_status", _ENDPOINT), ("content_type", _STREAMING), ("sse_framing", _STREAMING),
        ("data_json", _FORMAT), ("chunk_schema", _FORMAT), ("finish_reason", _FORMAT),
        ("done_terminator", _FORMAT),
    ),
    outcome_ids=spec_checks.OUTCOME_CHECK_IDS,
    inband_error_ids=frozenset({"inband_error"}),
    end_of_stream_ids=frozenset({"finish_reason", "done_terminator"}),
)  # fmt: skip


class OpenAiProvider:
    """OpenAI and every server that speaks its Chat Completions API (vLLM, Ollama's /v1, …)."""

    llm_format = LlmFormat.OPENAI
    label = "OpenAI"
    url_hint = request.URL_HINT
    plan = OPENAI_PLAN
    profile = spec_checks.OPENAI_PROFILE

    def build_request(self, endpoint: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
        return request.build_request(
            url=endpoint.url,
            model_name=endpoint.model_name,
            api_key=api_key,
            chat=chat,
            temperature=endpoint.temperature,
            max_tokens=endpoint.max_tokens,
            extra_headers=endpoint.headers,
            reasoning=self.reasoning(endpoint),
        )

    def reasoning(self, endpoint: EndpointSpec) -> dict[str, Any]:
        """The body's reasoning parameters: ``reasoning_effort`` (OpenAI and Azure take the same)."""
        return request.reasoning_fields(endpoint)

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
            status,
            headers,
            body,
            profile=self.profile,
            expect_complete=expect_complete,
            expect_start=expect_start,
            secrets=secrets,
        )

    def classify_error(
        self, status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
    ) -> UpstreamError:
        return errors.classify_upstream_error(status, body, headers, secrets=secrets)

    def make_relay(self, endpoint: EndpointSpec, chat: ChatRequest) -> StreamRelay:
        forward_usage = bool((chat.stream_options or {}).get("include_usage"))
        return OpenAiPassThrough(
            azure=self.profile.azure, reasoning_format=endpoint.reasoning_format, forward_usage=forward_usage
        )

    def carries_token(self, payload: Mapping[str, Any]) -> bool:
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and any(delta.get(k) for k in ("content", "tool_calls", "refusal")):
                return True
        return False

    def conforms(self, checks: Iterable[Check]) -> bool:
        return spec_checks.conforms(checks)


OPENAI = OpenAiProvider()
