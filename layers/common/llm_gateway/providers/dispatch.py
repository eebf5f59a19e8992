"""The stream proxy's view of the providers: build the upstream call, relay its stream, classify
its errors. Every answer comes from the spec's ``Provider`` in the registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llm_gateway.models.chat import ChatRequest
from llm_gateway.providers.base import EndpointSpec, StreamRelay
from llm_gateway.providers.registry import provider_for
from llm_gateway.providers.request import UpstreamRequest

__all__ = ["EndpointSpec", "StreamRelay", "UpstreamRequest", "build_call", "classify_status", "make_relay"]


def build_call(spec: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
    """The upstream request for one URL; raises ``ProviderConfigError`` when the config cannot make one."""
    return provider_for(spec.llm_format).build_request(spec, chat, api_key)


def make_relay(spec: EndpointSpec, chat: ChatRequest) -> StreamRelay:
    return provider_for(spec.llm_format).make_relay(spec, chat)


def classify_status(
    spec: EndpointSpec, status: int, body: bytes, headers: Mapping[str, str], secrets: Sequence[str]
) -> tuple[str, float | None]:
    """The gateway code for an upstream error answer, and its Retry-After in seconds if any."""
    error = provider_for(spec.llm_format).classify_error(status, body, headers, secrets=secrets)
    return error.code, error.retry_after_s
