"""One entry point per spec for the proxy: build the upstream request, relay its stream, classify errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat
from llm_gateway.providers import azure_openai, gemini, openai
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.providers.sse import SseLimitExceeded, SseParser


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """The stored config fields the upstream request needs (no secret)."""

    llm_format: LlmFormat
    url: str
    model_name: str
    deployment_name: str | None = None
    api_version: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    headers: Mapping[str, str] | None = None


def build_call(spec: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
    common: dict[str, Any] = {
        "url": spec.url,
        "model_name": spec.model_name,
        "api_key": api_key,
        "chat": chat,
        "temperature": spec.temperature,
        "max_tokens": spec.max_tokens,
        "extra_headers": spec.headers,
    }
    if spec.llm_format is LlmFormat.GEMINI:
        request = gemini.build_request(**common)
        return request
    if spec.llm_format is LlmFormat.AZURE_OPENAI:
        azure = azure_openai.build_request(
            **common,
            deployment=spec.deployment_name,
            api_version=spec.api_version,
        )
        return azure
    plain = openai.build_request(**common)
    return plain


class StreamRelay(Protocol):
    """Upstream bytes in, OpenAI ``chat.completion.chunk`` SSE bytes out."""

    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...

    @property
    def failure(self) -> str | None:
        """The gateway error code once the upstream stream went wrong (then stop and report it)."""
        ...

    @property
    def complete(self) -> bool:
        """The stream ended properly (``[DONE]`` written)."""
        ...


class OpenAiPassThrough:
    """OpenAI/Azure: payloads forwarded as they came; the shared parser guarantees the framing."""

    __slots__ = ("_parser", "_relay", "failure")

    def __init__(self, *, azure: bool) -> None:
        self._parser = SseParser()
        self._relay = azure_openai.AzureStreamRelay() if azure else openai.OpenAiStreamRelay()
        self.failure: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        try:
            events = self._parser.feed(chunk)
        except SseLimitExceeded:
            self.failure = "upstream_protocol_error"
            return b""
        relay = self._relay
        if len(events) == 1:
            out = relay.feed_event(events[0])
            result = out[0] if len(out) == 1 else b"".join(out)
        else:
            result = b"".join(b for event in events for b in relay.feed_event(event))
        if relay.error is not None:
            self.failure = _inband_code(relay.error)
        return result

    def finish(self) -> bytes:
        if self.failure is not None:
            return b""
        try:
            events = self._parser.finish()
        except SseLimitExceeded:
            self.failure = "upstream_protocol_error"
            return b""
        parts = [b for event in events for b in self._relay.feed_event(event)]
        parts.extend(self._relay.finish())
        tail = b"".join(parts)
        if self._relay.error is not None:
            self.failure = _inband_code(self._relay.error)
        elif not self._relay.done:
            self.failure = "upstream_protocol_error"
        return tail

    @property
    def complete(self) -> bool:
        return self._relay.done and self.failure is None


def _inband_code(error: Mapping[str, object]) -> str:
    code = str(error.get("code") or error.get("type") or "").lower()
    if "rate" in code or code == "429":
        return "upstream_rate_limited"
    if "context" in code or "invalid" in code or code == "400":
        return "upstream_bad_request"
    return "upstream_server_error"


class _ProxyGeminiTranslator(gemini.GeminiStreamTranslator):
    """Records an upstream failure without writing an error event: the relay writes the one final
    error event itself (same shape for every spec), so the client never gets two."""

    def abort(self, code: str, message: str) -> bytes:
        super().abort(code, message)
        return b""


class GeminiTranslation:
    """Gemini: each ``GenerateContentResponse`` becomes OpenAI chunks (text, tool calls, usage)."""

    __slots__ = ("_translator",)

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._translator = _ProxyGeminiTranslator(model=model, include_usage=include_usage)

    def feed(self, chunk: bytes) -> bytes:
        return self._translator.feed(chunk)

    def finish(self) -> bytes:
        return self._translator.finish()

    @property
    def failure(self) -> str | None:
        return self._translator.error_code

    @property
    def complete(self) -> bool:
        return self._translator.done and self._translator.error_code is None


def make_relay(spec: EndpointSpec, chat: ChatRequest) -> StreamRelay:
    if spec.llm_format is LlmFormat.GEMINI:
        include_usage = bool((chat.stream_options or {}).get("include_usage"))
        return GeminiTranslation(model=spec.model_name, include_usage=include_usage)
    return OpenAiPassThrough(azure=spec.llm_format is LlmFormat.AZURE_OPENAI)


def classify_status(
    spec: EndpointSpec, status: int, body: bytes, headers: Mapping[str, str], secrets: Sequence[str]
) -> tuple[str, float | None]:
    """The gateway code for an upstream error answer, and its Retry-After in seconds if any."""
    if status in (408, 504):  # the upstream's own gateway timed out: the same for every spec
        return "upstream_timeout", _retry_after(headers)
    if spec.llm_format is LlmFormat.GEMINI:
        code = gemini.classify_error(status, body) or _by_status(status)
        return code, _retry_after(headers)
    error = openai.classify_upstream_error(status, body, headers, secrets=secrets)
    return error.code, error.retry_after_s if error.retry_after_s is not None else _retry_after(headers)


def _by_status(status: int) -> str:
    if status in (401, 403):
        return "upstream_unauthorized"
    if status == 404:
        return "upstream_model_not_found"
    if status == 429:
        return "upstream_rate_limited"
    if status in (408, 504):
        return "upstream_timeout"
    if 400 <= status < 500:
        return "upstream_bad_request"
    return "upstream_server_error"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / (1000 if name.endswith("-ms") else 1)
        except ValueError:
            continue
        if 0 <= seconds <= 3600:
            return seconds
    return None
