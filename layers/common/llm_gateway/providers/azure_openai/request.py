"""Azure OpenAI URLs and requests: the resource endpoint with a deployment, or the v1 base, and
``api-key`` auth. The body is OpenAI's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from llm_gateway.models.chat import ChatRequest
from llm_gateway.providers.base import EndpointUrlError
from llm_gateway.providers.common.http import filter_extra_headers
from llm_gateway.providers.openai.request import build_chat_body, encode_json
from llm_gateway.providers.request import UpstreamRequest

#: Shown when a registered URL cannot be used.
URL_HINT = (
    "Use the resource endpoint (https://<resource>.openai.azure.com) with a deployment name and "
    "api-version, or the v1 base https://<resource>.openai.azure.com/openai/v1."
)
#: the time of writing, and new enough for ``stream_options.include_usage``.
DEFAULT_API_VERSION = "2024-10-21"
_FIRST_VERSION_WITH_STREAM_OPTIONS = "2024-09-01"


def is_v1_url(url: str) -> bool:
    """True for the v1 API (``…/openai/v1`` base or ``…/openai/v1/chat/completions``)."""
    path = urlsplit(url.strip()).path.rstrip("/")
    return path.endswith("/openai/v1") or path.endswith("/openai/v1/chat/completions")


def chat_completions_url(url: str, deployment: str | None = None, api_version: str | None = None) -> str:
    """Build the chat-completions URL from what the Azure portal shows.

    - ``…/openai/v1`` base (v1 API): ``…/openai/v1/chat/completions``, no api-version needed;
    - resource endpoint (``https://x.openai.azure.com``) + deployment (+ api-version): the classic
      ``…/openai/deployments/{deployment}/chat/completions?api-version=…``;
    - a full chat-completions URL is kept (an api-version is added to a classic one lacking it).
    """
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise EndpointUrlError("the URL must be absolute, e.g. https://my-resource.openai.azure.com")
    path = parts.path.rstrip("/")
    query = parts.query
    if path.endswith("/openai/v1"):
        path += "/chat/completions"
    elif path.endswith("/openai/v1/chat/completions"):
        pass
    elif path.endswith("/chat/completions"):
        if "/openai/deployments/" in path:
            query = _with_api_version(query, api_version)
    else:
        if path.endswith("/openai"):
            path = path[: -len("/openai")]
        if "/openai/" in path + "/":
            raise EndpointUrlError(
                "use the resource endpoint (https://<resource>.openai.azure.com) with a deployment "
                "name, or the v1 base ending in /openai/v1"
            )
        if not deployment:
            raise EndpointUrlError(
                "the classic Azure URL needs a deployment name (deploymentName), or use the v1 base "
                "ending in /openai/v1"
            )
        path = f"{path}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
        query = _with_api_version(query, api_version)
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _with_api_version(query: str, api_version: str | None) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k == "api-version" for k, _v in pairs):
        if api_version:
            pairs = [(k, api_version if k == "api-version" else v) for k, v in pairs]
    else:
        pairs.append(("api-version", api_version or DEFAULT_API_VERSION))
    return urlencode(pairs)


def _api_version_of(url: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "api-version":
            return value
    return None


def build_request(
    *,
    url: str,
    model_name: str | None,
    api_key: str,
    chat: ChatRequest,
    deployment: str | None = None,
    api_version: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
    reasoning: Mapping[str, Any] | None = None,
) -> UpstreamRequest:
    """An Azure streaming request with the ``api-key`` header.

    On the v1 API ``model`` is the deployment name; on the classic API the deployment is in the
    path (``model_name`` stands in for a missing deployment, as in the portal they are often equal).
    ``stream_options`` is dropped for api-versions older than 2024-09-01(-preview), which reject it.
    """
    deployment_name = deployment or model_name
    target = chat_completions_url(url, deployment_name, api_version)
    version = _api_version_of(target)
    stream_options_ok = version is None or version[:10] >= _FIRST_VERSION_WITH_STREAM_OPTIONS
    model = deployment_name if is_v1_url(url) else (model_name or deployment_name)
    body = build_chat_body(
        chat,
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
        include_stream_options=stream_options_ok,
        reasoning=reasoning,
    )
    headers = filter_extra_headers(extra_headers)
    headers.update({"api-key": api_key, "Content-Type": "application/json", "Accept": "text/event-stream"})
    return UpstreamRequest("POST", target, headers, encode_json(body))
