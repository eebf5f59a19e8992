"""Anthropic Messages requests: the URL forms (the API base, a base ending in ``/v1``, or the full
``/v1/messages`` URL of Anthropic or a compatible server), the ``x-api-key`` and
``anthropic-version`` headers, and the OpenAI chat request translated (``body``)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from llm_gateway.models.chat import ChatRequest
from llm_gateway.providers.anthropic.body import messages_body
from llm_gateway.providers.base import EndpointSpec, EndpointUrlError
from llm_gateway.providers.common.http import filter_extra_headers
from llm_gateway.providers.request import UpstreamRequest

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_API_BASE", "URL_HINT", "build_request", "messages_url"]

DEFAULT_API_BASE = "https://api.anthropic.com"
#: The API version every Messages request names (Anthropic's docs: ``anthropic-version: 2023-06-01``);
#: an LLM's own ``anthropic-version`` header wins, for compatible servers that pin another.
ANTHROPIC_VERSION = "2023-06-01"
URL_HINT = "Use the API base https://api.anthropic.com or the full Messages URL …/v1/messages."

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def messages_url(url: str) -> str:
    """The Messages URL for a registered URL: ``…/v1/messages`` is kept, ``…/v1`` gets ``/messages``,
    any other base gets ``/v1/messages`` (what Anthropic's SDKs do with a ``base_url``)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise EndpointUrlError(f"the URL must be absolute, e.g. {DEFAULT_API_BASE}")
    path = parts.path.rstrip("/")
    if path.endswith("/v1/messages"):
        pass
    elif path.endswith("/v1"):
        path += "/messages"
    else:
        path += "/v1/messages"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def build_request(endpoint: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
    """A streaming Messages request: the key in ``x-api-key`` (the header Anthropic's API reference
    names for API keys; ``Authorization: Bearer`` is its SDKs' OAuth-token path), the version header,
    and ``stream: true``."""
    target = messages_url(endpoint.url)
    payload = messages_body(chat, endpoint)
    headers = {name.lower(): value for name, value in filter_extra_headers(endpoint.headers).items()}
    headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
    headers["content-type"] = "application/json"
    headers["accept"] = "text/event-stream"
    headers["x-api-key"] = api_key
    return UpstreamRequest("POST", target, headers, _dumps(payload).encode("utf-8"))
