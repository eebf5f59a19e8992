"""Anthropic Messages API (``POST /v1/messages``, ``stream: true``): URLs and headers (``request``),
the body (``body``), error answers (``errors``), spec checks (``checks``, ``stream_checks``),
translation of the stream into OpenAI chunks (``translate``) and the ``Provider`` (``provider``)."""

from llm_gateway.providers.anthropic.body import AnthropicRequestError, messages_body
from llm_gateway.providers.anthropic.checks import OUTCOME_CHECK_IDS, check_response, conforms
from llm_gateway.providers.anthropic.errors import classify_upstream_error
from llm_gateway.providers.anthropic.provider import ANTHROPIC, AnthropicProvider
from llm_gateway.providers.anthropic.request import ANTHROPIC_VERSION, build_request, messages_url
from llm_gateway.providers.anthropic.translate import AnthropicTranslation, map_stop_reason

__all__ = [
    "ANTHROPIC",
    "ANTHROPIC_VERSION",
    "OUTCOME_CHECK_IDS",
    "AnthropicProvider",
    "AnthropicRequestError",
    "AnthropicTranslation",
    "build_request",
    "check_response",
    "classify_upstream_error",
    "conforms",
    "map_stop_reason",
    "messages_body",
    "messages_url",
]
