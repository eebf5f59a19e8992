"""The ``continuation`` check: does this URL continue a prefilled assistant turn?

The stream continues a broken answer by sending the conversation again with the text already
streamed as a trailing assistant turn (``model`` on Gemini; each provider builds its own form),
and relays only what follows. That is safe only where the endpoint really continues the text:
one that starts over would make the caller hear it twice. The probe asks for a count with an
unambiguous right continuation and prefills its start. ``warn`` or ``skip`` only, never ``fail``:
an endpoint without it is still compatible; its broken answers just end with the error event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llm_gateway.domain.conformance.budget import RunClock
from llm_gateway.domain.conformance.config import EndpointConfig, StreamingClient
from llm_gateway.domain.conformance.exchange import Budget, exchange
from llm_gateway.domain.streaming import answer_text
from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.registry import provider_for
from llm_gateway.providers.request import UpstreamRequest

CHECK_ID = "continuation"
PROMPT = "Count from 1 to 12, as digits separated by a comma and a space, and write nothing else."
PREFILL = "1, 2, 3, 4, 5"
NEXT = "6"
MAX_TOKENS = 40
MAX_BODY = 256 * 1024
_HINT = (
    "Optional. Endpoints that continue a prefilled assistant message (vLLM, llama.cpp, Ollama, "
    "Gemini) let the gateway finish an answer cut mid-stream on another URL; without it a cut "
    "answer ends with an error event."
)


def _check(
    status: CheckStatus, message: str, hint: str | None = None, duration_s: float | None = None
) -> Check:
    return Check(
        id=CHECK_ID,
        category=CheckCategory.STREAMING,
        status=status,
        message=message,
        hint=hint,
        duration_ms=None if duration_s is None else round(duration_s * 1000, 1),
    )


def skipped(reason: str) -> Check:
    return _check(CheckStatus.SKIP, reason)


def prefilled_request(config: EndpointConfig, url: str, api_key: str) -> tuple[UpstreamRequest, ChatRequest]:
    chat = ChatRequest(
        messages=[ChatMessage(role="user", content=PROMPT), ChatMessage(role="assistant", content=PREFILL)],
        stream=True,
        max_tokens=MAX_TOKENS,
    )
    built = provider_for(config.llm_format).build_request(config.endpoint(url), chat, api_key)
    return UpstreamRequest(
        built.method, built.url, {**built.headers, "Accept-Encoding": "identity"}, built.body
    ), chat


def continuation_check(
    config: EndpointConfig,
    url: str,
    api_key: str,
    client: StreamingClient,
    budget: Budget,
    monotonic: Callable[[], float],
    run: RunClock | None,
    secrets: Sequence[str] = (),
) -> Check:
    """Send the prefilled count and judge what follows ``PREFILL``."""
    if run is not None and not run.allows():
        return skipped(f"skipped: {run.label} ran out")
    try:
        request, chat = prefilled_request(config, url, api_key)
    except ValueError:
        return skipped("skipped: the spec cannot send a prefilled assistant turn")
    result = exchange(client, request, budget, None, monotonic, max_body=MAX_BODY, run=run)
    if result.status is None:
        return _check(CheckStatus.WARN, "the prefilled request got no response", _HINT, result.total_s)
    if not 200 <= result.status < 300:
        return _check(
            CheckStatus.WARN,
            f"the endpoint refused a prefilled assistant turn (HTTP {result.status}): a cut answer "
            "cannot be continued here",
            _HINT,
            result.total_s,
        )
    provider = provider_for(config.llm_format)
    relay = provider.make_relay(config.endpoint(url), chat)
    text = (answer_text([relay.feed(bytes(result.body)) + relay.finish()], ended=True) or "").lstrip(" ,")
    shown = text[:24].replace("\n", " ")
    if text.startswith(NEXT):
        return _check(
            CheckStatus.PASS, f"continues a prefilled answer ({PREFILL!r} → {shown!r})", None, result.total_s
        )
    if text.startswith("1"):
        return _check(
            CheckStatus.WARN,
            f"starts over after a prefilled answer ({shown!r}): continuing here would repeat text",
            _HINT,
            result.total_s,
        )
    return _check(CheckStatus.WARN, f"did not continue a prefilled answer ({shown!r})", _HINT, result.total_s)
