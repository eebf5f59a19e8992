"""The provider registry: the one place that lists the specs, keyed by format.

Everything else (the proxy, the conformance engine) asks ``provider_for(format)``; adding a spec
is its package plus one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from llm_gateway.models.llm import LlmFormat
from llm_gateway.providers.anthropic import ANTHROPIC
from llm_gateway.providers.azure_openai import AZURE_OPENAI
from llm_gateway.providers.base import Provider
from llm_gateway.providers.gemini import GEMINI
from llm_gateway.providers.groq_openai import GROQ_OPENAI
from llm_gateway.providers.openai import OPENAI

__all__ = ["PROVIDERS", "provider_for"]

PROVIDERS: Mapping[str, Provider] = MappingProxyType(
    {
        LlmFormat.OPENAI: OPENAI,
        LlmFormat.AZURE_OPENAI: AZURE_OPENAI,
        LlmFormat.GEMINI: GEMINI,
        LlmFormat.ANTHROPIC: ANTHROPIC,
        LlmFormat.GROQ_OPENAI: GROQ_OPENAI,
    }
)


def provider_for(llm_format: str) -> Provider:
    """The provider of ``llm_format`` (an ``LlmFormat`` or its value); KeyError for an unknown one."""
    return PROVIDERS[llm_format]
