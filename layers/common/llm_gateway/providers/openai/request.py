"""OpenAI Chat Completions requests: the URL forms customers register and the streaming body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llm_gateway.models.chat import ChatRequest
from llm_gateway.providers.base import EndpointSpec, EndpointUrlError
from llm_gateway.providers.common.http import filter_extra_headers
from llm_gateway.providers.request import UpstreamRequest

#: Shown when a registered URL cannot be used.
URL_HINT = "Use the full chat-completions URL (https://host/v1/chat/completions) or the base ending in /v1."


def chat_completions_url(url: str) -> str:
    """Accept the full ``…/chat/completions`` URL or a base ending in ``/v1`` (as the SDKs take it)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise EndpointUrlError("the URL must be absolute, e.g. https://api.openai.com/v1/chat/completions")
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        pass
    elif path.endswith("/v1"):
        path += "/chat/completions"
    else:
        raise EndpointUrlError(
            "the URL must be the full chat-completions URL (…/v1/chat/completions) "
            "or the API base ending in /v1"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def build_chat_body(
    chat: ChatRequest,
    *,
    model: str | None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    include_stream_options: bool = True,
    reasoning: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The upstream JSON body. ``stream`` is always true.

    The endpoint's configured ``temperature`` is a default the request may override; its
    ``max_tokens`` is a cap (the LLM owner pays), so the smaller of the two wins. ``reasoning``
    holds the spec's reasoning parameters (``reasoning_effort``, …); reasoning models take the
    limit only as ``max_completion_tokens``.
    """
    body: dict[str, Any] = {}
    if model is not None:
        body["model"] = model
    body["messages"] = [message.model_dump(exclude_none=True) for message in chat.messages]
    body["stream"] = True
    if include_stream_options and chat.stream_options:
        body["stream_options"] = chat.stream_options
    effective_temperature = chat.temperature if chat.temperature is not None else temperature
    if effective_temperature is not None:
        body["temperature"] = effective_temperature
    if chat.max_completion_tokens is not None:
        body["max_completion_tokens"] = _cap(chat.max_completion_tokens, max_tokens)
    elif chat.max_tokens is not None or max_tokens is not None:
        body["max_tokens"] = _cap(chat.max_tokens, max_tokens)
    if chat.tools:
        body["tools"] = chat.tools
        if chat.tool_choice is not None:
            body["tool_choice"] = chat.tool_choice
    if reasoning:
        if "reasoning_effort" in reasoning and "max_tokens" in body:
            body["max_completion_tokens"] = body.pop("max_tokens")
        body.update(reasoning)
    return body


def reasoning_fields(endpoint: EndpointSpec, *, reasoning_format: bool = False) -> dict[str, Any]:
    """OpenAI's ``reasoning_effort`` when one was asked for (``default`` sends nothing); with
    ``reasoning_format`` (Groq) the LLM's ``reasoningFormat`` too, when it set one."""
    fields: dict[str, Any] = {}
    if endpoint.thinks and endpoint.reasoning_effort is not None:
        fields["reasoning_effort"] = endpoint.reasoning_effort.value
    if reasoning_format and endpoint.reasoning_format is not None:
        fields["reasoning_format"] = endpoint.reasoning_format.value
    return fields


def _cap(requested: int | None, limit: int | None) -> int:
    values = [v for v in (requested, limit) if v is not None]
    return min(values)


def encode_json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_request(
    *,
    url: str,
    model_name: str,
    api_key: str,
    chat: ChatRequest,
    temperature: float | None = None,
    max_tokens: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
    reasoning: Mapping[str, Any] | None = None,
) -> UpstreamRequest:
    """An OpenAI streaming request: ``Authorization: Bearer``, body with ``stream: true``."""
    headers = filter_extra_headers(extra_headers)
    headers.update(
        {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
    )
    body = build_chat_body(
        chat, model=model_name, temperature=temperature, max_tokens=max_tokens, reasoning=reasoning
    )
    return UpstreamRequest("POST", chat_completions_url(url), headers, encode_json(body))
