"""What a probe needs: the endpoint config, the HTTP port it talks through, and the request it sends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_gateway.domain.ports import UrlGuard
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import LlmFormat, ReasoningEffort, ReasoningFormat, Timeouts
from llm_gateway.providers.base import EndpointSpec
from llm_gateway.providers.registry import provider_for
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.redaction import redact_url

#: The probe asks for a few tokens: enough to see a stream, cheap for the LLM owner.
PROBE_MAX_TOKENS = 16
#: A reasoning model (an LLM with a reasoning effort) spends tokens thinking before it answers:
#: a 16-token probe would end before the first word of the answer, so it gets this many.
REASONING_PROBE_MAX_TOKENS = 2048
PROBE_PROMPT = "Reply with one short word: ok"


class ProbeResponse(Protocol):
    """The part of an httpx-like streamed response the engine reads."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]: ...


class StreamingClient(Protocol):
    """An httpx-like sync client. ``timeout`` is (connect, read, write, pool). Network failures
    arrive as ``TransportError`` (and ``EndpointBlocked``); see ``adapters.probe_http``."""

    def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float, float, float],
        deadline_s: float | None = None,
    ) -> AbstractContextManager[ProbeResponse]:
        """``deadline_s``: the whole exchange (connect, headers, body) ends that many seconds from
        now, however the server spaces its bytes (the read timeout restarts with every byte)."""
        ...


@dataclass(frozen=True, slots=True)
class HttpPort:
    """The outside world of a probe: a client that never follows redirects, and the SSRF guard.

    Production: ``HttpPort(ProbeHttpClient(guarded.sync_client()), guarded)`` with one
    ``GuardedHttp``; the guard is also enforced inside its transport, the explicit check gives a
    clear ``address`` check.
    """

    client: StreamingClient
    guard: UrlGuard


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """What the probe needs from an LLM config (registered, stored, or typed on the command line)."""

    llm_format: LlmFormat
    urls: tuple[str, ...]
    model_name: str
    deployment_name: str | None = None
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    temperature: float | None = None
    max_tokens: int | None = None
    timeouts: Timeouts | None = None
    reasoning_effort: ReasoningEffort | None = None
    reasoning_format: ReasoningFormat | None = None

    @classmethod
    def from_llm(cls, llm: Any) -> EndpointConfig:
        """From any LLM model (``Llm``, ``StoredLlm``, a create/spec body): same field names."""
        urls = tuple(u if isinstance(u, str) else u.url for u in llm.urls)
        return cls(
            llm_format=LlmFormat(llm.llm_format),
            urls=urls,
            model_name=llm.model_name,
            deployment_name=getattr(llm, "deployment_name", None),
            api_version=getattr(llm, "api_version", None),
            headers=dict(getattr(llm, "headers", None) or {}),
            temperature=getattr(llm, "temperature", None),
            max_tokens=getattr(llm, "max_tokens", None),
            timeouts=getattr(llm, "timeouts", None),
            reasoning_effort=getattr(llm, "reasoning_effort", None),
            reasoning_format=getattr(llm, "reasoning_format", None),
        )

    @property
    def thinks(self) -> bool:
        """A reasoning effort is set: the probe gives the model room to think and then answer."""
        return self.reasoning_effort not in (None, ReasoningEffort.DEFAULT)

    @property
    def probe_max_tokens(self) -> int:
        return REASONING_PROBE_MAX_TOKENS if self.thinks else PROBE_MAX_TOKENS

    def endpoint(self, url: str) -> EndpointSpec:
        return EndpointSpec(
            llm_format=self.llm_format,
            url=url,
            model_name=self.model_name,
            deployment_name=self.deployment_name,
            api_version=self.api_version,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            headers=self.headers,
            reasoning_effort=self.reasoning_effort,
            reasoning_format=self.reasoning_format,
        )


class ProbeConfigError(ValueError):
    """The config cannot be turned into a request (URL form, model name); the message says why."""


def probe_chat(max_tokens: int = PROBE_MAX_TOKENS) -> ChatRequest:
    """The chat request the probe sends: what the platform sends, minus the persona."""
    return ChatRequest(
        messages=[ChatMessage(role="user", content=PROBE_PROMPT)],
        stream=True,
        max_tokens=max_tokens,
        stream_options={"include_usage": True},
    )


def build_probe_request(config: EndpointConfig, url: str, api_key: str) -> UpstreamRequest:
    """The provider's own request for ``url``; raises ``ProbeConfigError`` with a fix-it message."""
    try:
        built = provider_for(config.llm_format).build_request(
            config.endpoint(url), probe_chat(config.probe_max_tokens), api_key
        )
    except ValueError as exc:  # ProviderConfigError, or a URL urllib cannot split
        raise ProbeConfigError(str(exc)) from None
    headers = dict(built.headers)
    # Compressed bodies would hide the bytes the spec checks judge; ask for them as sent.
    headers["Accept-Encoding"] = "identity"
    return UpstreamRequest(built.method, built.url, headers, built.body)


def public_url(url: str) -> str:
    """``url`` as a report shows it: the one URL redaction (no userinfo, no credential values)."""
    return redact_url(url)
