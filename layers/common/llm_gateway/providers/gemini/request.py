"""Gemini URLs and requests: the API base or a full model-method URL, always ``?alt=sse``, the key
in ``x-goog-api-key`` (never in the URL), and the OpenAI chat request translated (``body``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import ReasoningEffort, ReasoningFormat
from llm_gateway.providers.base import EndpointSpec, EndpointUrlError
from llm_gateway.providers.common.http import filter_extra_headers
from llm_gateway.providers.gemini.body import DEFAULT_API_VERSION, translate_chat
from llm_gateway.providers.request import UpstreamRequest

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"
#: Shown when a registered URL cannot be used.
URL_HINT = (
    "Use the API base https://generativelanguage.googleapis.com or the full URL "
    ".../v1beta/models/{model}:streamGenerateContent."
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_VERSION_SEGMENT = re.compile(r"^v\d+(?:(?:alpha|beta)\d*)?$")


def _model_path(model_name: str) -> str:
    """``models/{model}``; a name already prefixed (``models/…``, ``tunedModels/…``) is kept."""
    name = model_name.strip().strip("/")
    if name.startswith(("models/", "tunedModels/")):
        prefix, _, rest = name.partition("/")
        return f"{prefix}/{quote(rest, safe='-._~@+')}"
    return f"models/{quote(name, safe='-._~@+')}"


def stream_url(url: str, model_name: str) -> str:
    """The streaming URL for a registered Gemini URL, always with ``alt=sse`` and never a key.

    Accepts the API base (with or without ``/v1beta`` or ``/v1``) or a full model-method URL
    (``…/models/{model}:streamGenerateContent`` or ``:generateContent``). A ``key=`` query
    parameter is dropped: the key travels only in the ``x-goog-api-key`` header.
    """
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise EndpointUrlError(f"the URL must be absolute, e.g. {DEFAULT_API_BASE}")
    path = parts.path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path = path[: path.rindex(":")] + ":streamGenerateContent"
    elif re.search(r"/(?:models|tunedModels)/[^/]+$", path):
        path += ":streamGenerateContent"
    else:
        if last in ("models", "tunedModels"):
            path = path[: -len(last)].rstrip("/")
            last = path.rsplit("/", 1)[-1]
        if not _VERSION_SEGMENT.match(last):
            path += "/" + DEFAULT_API_VERSION
        path += "/" + _model_path(model_name) + ":streamGenerateContent"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in ("key", "alt")
    ]
    query.append(("alt", "sse"))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


#: Gemini 2.5 takes a thinking budget in tokens; later models a thinking level.
_BUDGET_BY_EFFORT = {ReasoningEffort.LOW: 1024, ReasoningEffort.MEDIUM: 8192, ReasoningEffort.HIGH: 24576}


def thinking_config(endpoint: EndpointSpec) -> dict[str, Any] | None:
    """``generationConfig.thinkingConfig`` for the LLM's reasoning effort and format: a budget for
    Gemini 2.x, ``thinkingLevel`` for later models; thoughts are asked for only when shown."""
    config: dict[str, Any] = {}
    effort = endpoint.reasoning_effort
    if endpoint.thinks and effort is not None:
        if endpoint.model_name.strip().removeprefix("models/").startswith("gemini-2"):
            config["thinkingBudget"] = _BUDGET_BY_EFFORT[effort]
        else:
            config["thinkingLevel"] = effort.value
    if endpoint.thoughts is not ReasoningFormat.HIDDEN:
        config["includeThoughts"] = True
    return config or None


def _api_version(url: str) -> str:
    segments = urlsplit(url).path.split("/")
    return next((s for s in segments if _VERSION_SEGMENT.match(s)), DEFAULT_API_VERSION)


def build_request(
    *,
    url: str,
    model_name: str,
    api_key: str,
    chat: ChatRequest,
    temperature: float | None = None,
    max_tokens: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
    thinking: Mapping[str, Any] | None = None,
) -> UpstreamRequest:
    """Translate an OpenAI chat request into a Gemini ``streamGenerateContent`` request.

    ``temperature``/``max_tokens``/``extra_headers`` come from the LLM config. The request's
    temperature wins over the config's; the config's ``max_tokens`` is a ceiling.
    """
    final_url = stream_url(url, model_name)
    payload = translate_chat(
        chat,
        temperature=temperature,
        max_tokens=max_tokens,
        api_version=_api_version(final_url),
        thinking=thinking,
    )
    out_headers = {name.lower(): value for name, value in filter_extra_headers(extra_headers).items()}
    out_headers["content-type"] = "application/json"
    out_headers["accept"] = "text/event-stream"
    out_headers["x-goog-api-key"] = api_key
    return UpstreamRequest("POST", final_url, out_headers, _dumps(payload).encode("utf-8"))
