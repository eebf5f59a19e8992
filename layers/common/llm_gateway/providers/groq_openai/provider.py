"""The Groq ``Provider``: OpenAI's URLs, checks, errors and relay; Groq's reasoning parameters."""

from __future__ import annotations

from typing import Any

from llm_gateway.models.llm import LlmFormat
from llm_gateway.providers.base import EndpointSpec
from llm_gateway.providers.openai import request
from llm_gateway.providers.openai.provider import OpenAiProvider

__all__ = ["GROQ_OPENAI", "GroqOpenAiProvider"]


class GroqOpenAiProvider(OpenAiProvider):
    """Groq speaks OpenAI Chat Completions; its reasoning models also take ``reasoning_format``
    (``parsed`` streams thoughts as ``delta.reasoning``, ``raw`` inside ``<think>`` in the content,
    ``hidden`` drops them), which the gateway's own routing then handles like any other form."""

    llm_format = LlmFormat.GROQ_OPENAI
    label = "Groq (OpenAI-compatible)"
    url_hint = "Use the API base https://api.groq.com/openai/v1 or the full …/openai/v1/chat/completions URL."

    def reasoning(self, endpoint: EndpointSpec) -> dict[str, Any]:
        return request.reasoning_fields(endpoint, reasoning_format=True)


GROQ_OPENAI = GroqOpenAiProvider()
