"""The Azure OpenAI ``Provider``: OpenAI's checks, errors and relay, Azure's URLs and auth."""

from __future__ import annotations

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.providers.azure_openai import request
from llm_gateway.providers.azure_openai.checks import AZURE_PROFILE
from llm_gateway.providers.base import EndpointSpec
from llm_gateway.providers.openai.provider import OpenAiProvider
from llm_gateway.providers.request import UpstreamRequest

__all__ = ["AZURE_OPENAI", "AzureOpenAiProvider"]


class AzureOpenAiProvider(OpenAiProvider):
    """The stream is OpenAI's plus content-filter chunks (WIRE_FORMATS.md §2), so only URL building
    and auth differ; the checks and the relay run with the Azure profile."""

    llm_format = LlmFormat.AZURE_OPENAI
    label = "Azure OpenAI"
    url_hint = request.URL_HINT
    profile = AZURE_PROFILE

    def build_request(self, endpoint: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
        return request.build_request(
            url=endpoint.url,
            model_name=endpoint.model_name,
            api_key=api_key,
            chat=chat,
            deployment=endpoint.deployment_name,
            api_version=endpoint.api_version,
            temperature=endpoint.temperature,
            max_tokens=endpoint.max_tokens,
            extra_headers=endpoint.headers,
            reasoning=self.reasoning(endpoint),
        )


AZURE_OPENAI = AzureOpenAiProvider()
