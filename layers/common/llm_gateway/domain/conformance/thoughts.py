"""Whether a reasoning model's thoughts can be told apart from its answer: the probe's raw stream
replayed through the spec's own relay with ``reasoningFormat: parsed``, so the verdict is what the
gateway would deliver. Nothing here knows a spec: the relay does."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from llm_gateway.domain.conformance.config import EndpointConfig, probe_chat
from llm_gateway.models.llm import ReasoningFormat
from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.base import Provider, StreamRelay
from llm_gateway.providers.sse import SseLimitExceeded, SseParser

__all__ = ["ThoughtWatch", "parsed_relay", "thoughts_check"]

_FORMAT = CheckCategory.FORMAT
#: How each form shows in the raw bytes (only to name the form in the message).
_FORMS = (
    (b'"reasoning_content"', "reasoning_content deltas"),
    (b'"reasoning"', "reasoning deltas"),
    (b"<think>", "<think> text"),
    (b'"thinking_delta"', "thinking blocks"),
    (b'"thought": true', "thought parts"),
    (b'"thought":true', "thought parts"),
)


def parsed_relay(provider: Provider, config: EndpointConfig, url: str) -> StreamRelay:
    """The spec's relay as the gateway would run it, with thoughts kept apart from the answer."""
    endpoint = replace(config.endpoint(url), reasoning_format=ReasoningFormat.PARSED)
    return provider.make_relay(endpoint, probe_chat(config.probe_max_tokens))


@dataclass(slots=True)
class _Replay:
    thought_chars: int = 0
    answer_chars: int = 0
    tool_calls: int = 0
    failed: bool = False


def _replay(relay: StreamRelay, body: bytes) -> _Replay:
    out = relay.feed(body) + relay.finish()
    seen = _Replay(failed=relay.failure is not None)
    try:
        events = SseParser().feed(out + b"\n\n")
    except SseLimitExceeded:
        return _Replay(failed=True)
    for event in events:
        try:
            chunk = json.loads(event.data)
        except ValueError:
            continue
        for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                seen.thought_chars += len(delta.get("reasoning_content") or "")
                seen.answer_chars += len((delta.get("content") or "").strip())
                seen.tool_calls += len(delta.get("tool_calls") or ())
    return seen


def thoughts_check(relay: StreamRelay, body: bytes, config: EndpointConfig) -> Check:
    """``thoughts``: separable (and in which form), none streamed, or only thoughts (no answer)."""
    seen = _replay(relay, body)
    if seen.failed and not seen.thought_chars:
        return Check(id="thoughts", category=_FORMAT, status=CheckStatus.SKIP,
                     message="skipped: the stream could not be read to the end")  # fmt: skip
    forms = sorted({name for marker, name in _FORMS if marker in body})
    shown = f" ({', '.join(forms)})" if forms else ""
    if seen.thought_chars and not (seen.answer_chars or seen.tool_calls):
        return Check(
            id="thoughts", category=_FORMAT, status=CheckStatus.WARN,
            message=f"the model thought{shown} ({seen.thought_chars} characters) but gave no answer within "
            f"the probe's {config.probe_max_tokens} tokens",
            hint="Set reasoningEffort (low is enough for a voice persona) so probes and requests leave the "
            "model room to answer, or raise maxTokens.",
        )  # fmt: skip
    if seen.thought_chars:
        return Check(
            id="thoughts", category=_FORMAT, status=CheckStatus.PASS,
            message=f"thoughts are separable from the answer{shown}: {seen.thought_chars} characters of "
            f"thought, kept from the persona unless reasoningFormat is parsed or raw",
        )  # fmt: skip
    what = (
        "no thoughts in the stream: the model thinks without streaming its thoughts, or not at all"
        if config.thinks
        else "no thoughts in the stream (not a reasoning model, or its thoughts are not streamed)"
    )
    return Check(id="thoughts", category=_FORMAT, status=CheckStatus.PASS, message=what)


class ThoughtWatch:
    """The same relay fed as the bytes arrive: when the first answer token and first thought came."""

    __slots__ = ("relay",)

    def __init__(self, relay: StreamRelay | None) -> None:
        self.relay = relay

    def feed(self, chunk: bytes) -> tuple[bool, bool]:
        """(answer started, thought started) after ``chunk``; (False, False) once the relay failed."""
        relay = self.relay
        if relay is None:
            return False, False
        relay.feed(chunk)
        if relay.failure is not None and not relay.answer_started:
            self.relay = None
            return False, False
        return relay.answer_started, relay.thought_started

    @property
    def active(self) -> bool:
        return self.relay is not None
