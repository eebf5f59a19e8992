"""Google Gemini (Developer API, ``streamGenerateContent?alt=sse``): URLs and requests (``request``,
``body``), error answers (``errors``), spec checks (``checks``, ``stream_checks``), translation of
the stream into OpenAI chunks (``translate``) and the ``Provider`` (``provider``)."""

from llm_gateway.providers.gemini.body import SKIP_THOUGHT_SIGNATURE, GeminiRequestError, translate_chat
from llm_gateway.providers.gemini.checks import OUTCOME_CHECK_IDS, check_response, conforms
from llm_gateway.providers.gemini.errors import classify_error
from llm_gateway.providers.gemini.provider import GEMINI, GeminiProvider
from llm_gateway.providers.gemini.request import DEFAULT_API_BASE, build_request, stream_url
from llm_gateway.providers.gemini.translate import (
    GeminiStreamTranslator,
    GeminiTranslation,
    map_finish_reason,
)
from llm_gateway.providers.request import UpstreamRequest

__all__ = [
    "DEFAULT_API_BASE",
    "GEMINI",
    "OUTCOME_CHECK_IDS",
    "SKIP_THOUGHT_SIGNATURE",
    "GeminiProvider",
    "GeminiRequestError",
    "GeminiStreamTranslator",
    "GeminiTranslation",
    "UpstreamRequest",
    "build_request",
    "check_response",
    "classify_error",
    "conforms",
    "map_finish_reason",
    "stream_url",
    "translate_chat",
]
