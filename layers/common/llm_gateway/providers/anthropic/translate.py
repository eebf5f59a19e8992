"""Anthropic Messages stream → OpenAI ``chat.completion.chunk`` SSE, one upstream chunk at a time
(the proxy's hot path): one ``json.loads`` per event, pre-framed output bytes.

``message_start`` gives the role chunk; ``text_delta`` content, ``thinking_delta`` thoughts (routed
by ``reasoningFormat``), ``tool_use`` blocks and their ``input_json_delta`` fragments tool calls
(a call whose fragments were all empty gets ``{}``, so its arguments always parse);
``message_delta`` the stop reason and usage; ``message_stop`` the finish chunk and ``[DONE]``.
``ping`` and event types this version does not know are skipped, as Anthropic's docs ask.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.models.llm import ReasoningFormat
from llm_gateway.providers.anthropic.errors import classify_stream_error
from llm_gateway.providers.common.reasoning import ThoughtRouter
from llm_gateway.providers.sse import SseLimitExceeded, SseParser

__all__ = ["STOP_REASONS", "AnthropicTranslation", "map_stop_reason"]

#: ``stop_reason`` → OpenAI ``finish_reason`` (unknown values read as a normal stop).
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_PROTOCOL = ErrorCode.UPSTREAM_PROTOCOL_ERROR
_DONE = b"data: [DONE]\n\n"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


def map_stop_reason(reason: Any) -> str:
    return STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


@dataclass(slots=True)
class _Block:
    kind: str  # "text", "thinking", "tool_use" or "other" (redacted thinking, server tools, …)
    call: int = -1  # the OpenAI tool_calls index of a tool_use block
    start_input: Any = None
    arguments: bool = False  # a non-empty input_json_delta was sent


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class AnthropicTranslation:
    """``StreamRelay`` for Anthropic. An upstream ``error`` event, bad JSON or a stream without
    ``message_stop`` sets ``failure`` and writes nothing: the proxy writes the one error event."""

    def __init__(
        self, *, model: str, include_usage: bool = False, reasoning_format: ReasoningFormat | None = None
    ) -> None:
        self.parser = SseParser()
        self.model = model
        self.include_usage = include_usage
        self.router = ThoughtRouter(reasoning_format)
        self.failure: str | None = None
        self.done = False
        self.stop_reason: Any = None
        self.native_usage: dict[str, Any] = {}  # Anthropic's own counts, merged as they come
        self._blocks: dict[int, _Block] = {}
        self._calls = 0
        self._prefix = b""
        self._started = False
        self._suffix = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    # -- StreamRelay ---------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.done and self.failure is None

    @property
    def answer_started(self) -> bool:
        return self.router.answer_started

    @property
    def thought_started(self) -> bool:
        return self.router.thought_started

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            return b""
        try:
            events = self.parser.feed(chunk)
        except SseLimitExceeded as exc:
            out = b"".join(self.feed_data(e.data) for e in exc.events_before)
            self._fail(_PROTOCOL)
            return out
        if len(events) == 1:
            return self.feed_data(events[0].data)
        return b"".join(self.feed_data(event.data) for event in events)

    def finish(self) -> bytes:
        if self.done:
            return b""
        try:
            tail = b"".join(self.feed_data(e.data) for e in self.parser.finish())
        except SseLimitExceeded:
            tail = b""
        if not self.done:
            self._fail(_PROTOCOL)  # no message_stop: the answer may be cut off
        return tail

    # -- events --------------------------------------------------------------------------------

    def feed_data(self, data: str) -> bytes:
        """One event's ``data`` (the event name repeats ``type``; the checks compare them)."""
        if self.done:
            return b""
        try:
            event = _loads(data)
        except ValueError:
            return self._fail(_PROTOCOL)
        if not isinstance(event, dict):
            return self._fail(_PROTOCOL)
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event)
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, event) if handler is not None else b""

    def _message_start(self, event: dict[str, Any]) -> bytes:
        message = _obj(event.get("message"))
        usage = message.get("usage")
        if isinstance(usage, dict):
            self.native_usage.update(usage)
        if self._started:
            return b""
        self._started = True
        head = {
            "id": str(message.get("id") or "chatcmpl-anthropic"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": str(message.get("model") or self.model),
        }
        self._prefix = b"data: " + _dumps(head)[:-1].encode("utf-8") + b',"choices":'
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, event: dict[str, Any]) -> bytes:
        index, block = event.get("index"), event.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return self._fail(_PROTOCOL)
        kind = block.get("type")
        if kind == "tool_use" and isinstance(block.get("name"), str):
            self.router.answer_token()
            entry = _Block("tool_use", self._calls, block.get("input"))
            self._blocks[index] = entry
            self._calls += 1
            call = {"index": entry.call, "id": str(block.get("id") or f"toolu_{index}"), "type": "function",
                    "function": {"name": block["name"], "arguments": ""}}  # fmt: skip
            return self._chunk({"tool_calls": [call]})
        if kind in ("text", "thinking"):
            self._blocks[index] = _Block(kind)
            text = block.get(kind)
            return self._text(kind, text) if isinstance(text, str) and text else b""
        self._blocks[index] = _Block("other")
        return b""

    def _delta(self, event: dict[str, Any]) -> bytes:
        index, delta = event.get("index"), event.get("delta")
        block = self._blocks.get(index) if isinstance(index, int) else None
        if block is None or not isinstance(delta, dict):
            return self._fail(_PROTOCOL)  # a delta for a block that never started
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            return self._text("text", delta["text"])
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            return self._text("thinking", delta["thinking"])
        if kind == "input_json_delta" and block.kind == "tool_use":
            fragment = delta.get("partial_json")
            if not isinstance(fragment, str) or not fragment:
                return b""  # an empty fragment says nothing: clients choke on empty deltas
            block.arguments = True
            return self._chunk({"tool_calls": [{"index": block.call, "function": {"arguments": fragment}}]})
        return b""  # signature_delta, citations_delta, …: not part of an OpenAI answer

    def _block_stop(self, event: dict[str, Any]) -> bytes:
        index = event.get("index")
        block = self._blocks.get(index) if isinstance(index, int) else None
        if block is None or block.kind != "tool_use" or block.arguments:
            return b""
        start = block.start_input if isinstance(block.start_input, dict) else {}
        block.arguments = True
        arguments = _dumps(start)
        return self._chunk({"tool_calls": [{"index": block.call, "function": {"arguments": arguments}}]})

    def _message_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self.stop_reason = delta["stop_reason"]
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.native_usage.update({k: v for k, v in usage.items() if v is not None})
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        out = [self._held()]
        if not self._started:
            out.append(self._message_start({}))
        choice = {
            "index": 0,
            "delta": {},
            "logprobs": None,
            "finish_reason": map_stop_reason(self.stop_reason),
        }
        out.append(self._prefix + _dumps([choice]).encode("utf-8") + self._suffix)
        if self.include_usage and self.native_usage:
            out.append(self._usage_chunk())
        out.append(_DONE)
        self.done = True
        return b"".join(out)

    def _error(self, event: dict[str, Any]) -> bytes:
        error = _obj(event.get("error"))
        return self._fail(classify_stream_error(error))

    # -- output --------------------------------------------------------------------------------

    def _text(self, kind: str, piece: str) -> bytes:
        router = self.router
        if kind == "thinking":
            shown = router.thought(piece)
            return self._chunk({"reasoning_content": shown}) if shown else b""
        thought, answer = router.content(piece)
        return self._routed(router.visible_thought(thought), answer)

    def _routed(self, thought: str, answer: str) -> bytes:
        out = b""
        if thought:
            out += self._chunk({"reasoning_content": thought})
        if answer:
            out += self._chunk({"content": answer})
        return out

    def _held(self) -> bytes:
        thought, answer = self.router.finish()
        return self._routed(self.router.visible_thought(thought), answer)

    def _chunk(self, delta: dict[str, Any]) -> bytes:
        if not self._started:
            return self._message_start({}) + self._chunk(delta)
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return self._prefix + _dumps([choice]).encode("utf-8") + self._suffix

    @property
    def usage(self) -> dict[str, Any] | None:
        """Anthropic's counts as OpenAI's ``usage`` object (the request log reads it), once sent."""
        if not self.native_usage:
            return None
        usage = self.native_usage
        cached = _count(usage, "cache_read_input_tokens")
        prompt = _count(usage, "input_tokens") + cached + _count(usage, "cache_creation_input_tokens")
        completion = _count(usage, "output_tokens")
        body = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        return body

    def _usage_chunk(self) -> bytes:
        body = self.usage
        return self._prefix + b"[]" + b',"usage":' + _dumps(body).encode("utf-8") + b"}\n\n"

    def _fail(self, code: str) -> bytes:
        if not self.done:
            self.done = True
            self.failure = code
        return b""


_HANDLERS = {
    "message_start": AnthropicTranslation._message_start,
    "content_block_start": AnthropicTranslation._block_start,
    "content_block_stop": AnthropicTranslation._block_stop,
    "message_delta": AnthropicTranslation._message_delta,
    "message_stop": AnthropicTranslation._message_stop,
    "error": AnthropicTranslation._error,
}
