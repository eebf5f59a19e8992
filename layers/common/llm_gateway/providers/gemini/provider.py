"""The Gemini ``Provider``: what the proxy and the conformance engine call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.models.report import Check, CheckCategory
from llm_gateway.providers.base import CheckPlan, EndpointSpec, StreamRelay
from llm_gateway.providers.common.http import Headers, UpstreamError
from llm_gateway.providers.gemini import checks as spec_checks
from llm_gateway.providers.gemini import errors, request
from llm_gateway.providers.gemini.translate import GeminiTranslation
from llm_gateway.providers.request import UpstreamRequest

__all__ = ["GEMINI", "GEMINI_PLAN", "GeminiProvider"]

_ENDPOINT, _STREAMING, _FORMAT = CheckCategory.ENDPOINT, CheckCategory.STREAMING, CheckCategory.FORMAT

GEMINI_PLAN = CheckPlan(
    without_response=(
        ("http_status", _ENDPOINT), ("content_type", _STREAMING), ("sse_framing", _STREAMING),
        ("chunk_schema", _FORMAT), ("finish_reason", _FORMAT), ("mid_stream_error", _STREAMING),
    ),
    outcome_ids=spec_checks.OUTCOME_CHECK_IDS,
    inband_error_ids=frozenset({"mid_stream_error"}),
    end_of_stream_ids=frozenset({"finish_reason", "terminator"}),
)  # fmt: skip


class GeminiProvider:
    """Google Gemini (Developer API, ``streamGenerateContent?alt=sse``), translated to OpenAI chunks."""

    llm_format = LlmFormat.GEMINI
    label = "Gemini"
    url_hint = request.URL_HINT
    plan = GEMINI_PLAN

    def build_request(self, endpoint: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
        return request.build_request(
            url=endpoint.url,
            model_name=endpoint.model_name,
            api_key=api_key,
            chat=chat,
            temperature=endpoint.temperature,
            max_tokens=endpoint.max_tokens,
            extra_headers=endpoint.headers,
            thinking=request.thinking_config(endpoint),
        )

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
        # Gemini streams have no start/end markers to leave out for fragments; the probe asks alt=sse.
        return spec_checks.check_response(status, headers, body, alt_sse=True, secrets=secrets)

    def classify_error(
        self, status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
    ) -> UpstreamError:
        return errors.classify_upstream_error(status, body, headers, secrets=secrets)

    def make_relay(self, endpoint: EndpointSpec, chat: ChatRequest) -> StreamRelay:
        include_usage = bool((chat.stream_options or {}).get("include_usage"))
        return GeminiTranslation(
            model=endpoint.model_name,
            include_usage=include_usage,
            reasoning_format=endpoint.reasoning_format,
        )

    def carries_token(self, payload: Mapping[str, Any]) -> bool:
        for candidate in payload.get("candidates") or []:
            content = candidate.get("content") if isinstance(candidate, dict) else None
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else []:
                if isinstance(part, dict) and (part.get("text") or part.get("functionCall")):
                    return True
        return False

    def conforms(self, checks: Iterable[Check]) -> bool:
        return spec_checks.conforms(checks)


GEMINI = GeminiProvider()
