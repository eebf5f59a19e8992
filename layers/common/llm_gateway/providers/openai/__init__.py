"""OpenAI Chat Completions: URLs and requests (``request``), error answers (``errors``), spec checks
(``checks``, ``stream_checks``), the stream relay (``relay``) and the ``Provider`` (``provider``)."""

from llm_gateway.providers.base import EndpointUrlError
from llm_gateway.providers.common.findings import trim_evidence
from llm_gateway.providers.common.http import UpstreamError, filter_extra_headers
from llm_gateway.providers.openai.checks import OPENAI_PROFILE, SpecProfile, check_response, conforms
from llm_gateway.providers.openai.errors import classify_upstream_error
from llm_gateway.providers.openai.provider import OPENAI, OpenAiProvider
from llm_gateway.providers.openai.relay import OpenAiPassThrough, OpenAiStreamRelay
from llm_gateway.providers.openai.request import (
    build_chat_body,
    build_request,
    chat_completions_url,
    encode_json,
)
from llm_gateway.providers.openai.wire import DONE_EVENT, FINISH_REASONS
from llm_gateway.providers.request import UpstreamRequest

__all__ = [
    "DONE_EVENT",
    "FINISH_REASONS",
    "OPENAI",
    "OPENAI_PROFILE",
    "EndpointUrlError",
    "OpenAiPassThrough",
    "OpenAiProvider",
    "OpenAiStreamRelay",
    "SpecProfile",
    "UpstreamError",
    "UpstreamRequest",
    "build_chat_body",
    "build_request",
    "chat_completions_url",
    "check_response",
    "classify_upstream_error",
    "conforms",
    "encode_json",
    "filter_extra_headers",
    "trim_evidence",
]
