"""The ``Provider`` protocol: everything a spec decides, in one place per spec.

The proxy and the conformance engine hold no knowledge of any spec: they look the provider up in
``providers.registry`` by the LLM's format and call these methods. A new spec is a package that
implements this protocol plus one line in the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import LlmFormat, ReasoningEffort, ReasoningFormat
from llm_gateway.models.report import Check, CheckCategory
from llm_gateway.providers.common.http import Headers, UpstreamError
from llm_gateway.providers.request import UpstreamRequest

__all__ = [
    "CheckPlan",
    "EndpointSpec",
    "EndpointUrlError",
    "Headers",
    "Provider",
    "ProviderConfigError",
    "StreamRelay",
    "UnsupportedChatRequest",
    "UpstreamError",
]


class ProviderConfigError(ValueError):
    """The LLM config (or the chat request) cannot be turned into an upstream request; the message
    says how to fix it."""


class EndpointUrlError(ProviderConfigError):
    """The configured URL cannot be turned into the spec's streaming URL."""


class UnsupportedChatRequest(ProviderConfigError):
    """The chat request holds something this spec cannot take: the client's 400, not the config's."""


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """The stored config fields an upstream request needs (never the secret)."""

    llm_format: LlmFormat
    url: str
    model_name: str
    deployment_name: str | None = None
    api_version: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    headers: Mapping[str, str] | None = None
    #: None and ``default`` send no reasoning parameter; a format of None is ``hidden``.
    reasoning_effort: ReasoningEffort | None = None
    reasoning_format: ReasoningFormat | None = None

    @property
    def thinks(self) -> bool:
        """A reasoning effort was asked for (the request carries the spec's reasoning parameter)."""
        return self.reasoning_effort not in (None, ReasoningEffort.DEFAULT)

    @property
    def thoughts(self) -> ReasoningFormat:
        return self.reasoning_format or ReasoningFormat.HIDDEN


class StreamRelay(Protocol):
    """Upstream bytes in, OpenAI ``chat.completion.chunk`` SSE bytes out (the proxy's hot path)."""

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

    @property
    def answer_started(self) -> bool:
        """An answer token (content or a tool call, never a thought) was written: times TTFT."""
        ...

    @property
    def thought_started(self) -> bool:
        """A thought was seen upstream (whatever the format did with it): times the first thought."""
        ...

    @property
    def usage(self) -> Mapping[str, Any] | None:
        """The token counts the upstream reported, as OpenAI's ``usage`` object (for the request
        log); ``None`` until the upstream sent them."""
        ...


#: Check ids every spec uses the same way.
STATUS_CHECK_IDS = frozenset({"http_status", "redirect"})
HEAD_CHECK_IDS = frozenset({"http_status", "content_type"})


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """Which of a spec's check ids play which role in a live probe.

    ``without_response``: the checks listed (as skipped) when no response arrived.
    ``outcome_ids``: failures that report what the upstream said, not a spec violation
    (``conforms`` ignores them). ``inband_error_ids``: an error the upstream sent mid-stream.
    ``end_of_stream_ids``: rules about how a stream ends (not judged on a cut stream).
    ``status_ids``: checks whose failure carries the HTTP status's code; ``head_ids``: checks
    judged on the status line and headers alone.
    """

    without_response: tuple[tuple[str, CheckCategory], ...]
    outcome_ids: frozenset[str]
    inband_error_ids: frozenset[str]
    end_of_stream_ids: frozenset[str]
    status_ids: frozenset[str] = field(default=STATUS_CHECK_IDS)
    head_ids: frozenset[str] = field(default=HEAD_CHECK_IDS)


class Provider(Protocol):
    """One spec: URLs, requests, response checks, error classification and the stream relay."""

    @property
    def llm_format(self) -> LlmFormat: ...

    @property
    def label(self) -> str:
        """The spec's name in messages ("Azure OpenAI")."""
        ...

    @property
    def url_hint(self) -> str:
        """What to register instead, when a URL cannot be used."""
        ...

    @property
    def plan(self) -> CheckPlan: ...

    def build_request(self, endpoint: EndpointSpec, chat: ChatRequest, api_key: str) -> UpstreamRequest:
        """The streaming request; raises ``ProviderConfigError`` when the config cannot make one."""
        ...

    def check_response(
        self,
        status: int,
        headers: Headers,
        body: bytes,
        *,
        expect_complete: bool = True,
        expect_start: bool = True,
        secrets: Sequence[str] = (),
    ) -> list[Check]:
        """Judge one raw response; ``secrets`` never appear in a message or evidence."""
        ...

    def classify_error(
        self, status: int, body: bytes = b"", headers: Headers = (), *, secrets: Sequence[str] = ()
    ) -> UpstreamError:
        """The gateway code, category, hint and Retry-After of a non-200 answer."""
        ...

    def make_relay(self, endpoint: EndpointSpec, chat: ChatRequest) -> StreamRelay: ...

    def carries_token(self, payload: Mapping[str, Any]) -> bool:
        """This stream event (parsed JSON) holds model output: it times the first token."""
        ...

    def conforms(self, checks: Iterable[Check]) -> bool:
        """The response bytes follow the spec (an error answer with a correct body does)."""
        ...
