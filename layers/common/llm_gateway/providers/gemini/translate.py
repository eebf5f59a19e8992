"""Gemini stream → OpenAI ``chat.completion.chunk`` SSE, one upstream chunk at a time (the proxy's
hot path): one ``json.loads`` per upstream event, pre-framed output bytes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.models.llm import ReasoningFormat
from llm_gateway.providers.common.reasoning import ThoughtRouter
from llm_gateway.providers.gemini.errors import classify_stream_error, error_label
from llm_gateway.providers.sse import SseEvent, SseLimitExceeded, SseParser

__all__ = ["GeminiStreamTranslator", "GeminiTranslation", "map_finish_reason"]

UPSTREAM_PROTOCOL_ERROR = ErrorCode.UPSTREAM_PROTOCOL_ERROR
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
_DONE = b"data: [DONE]\n\n"
_MAX_STRAY_CHARS = 64 * 1024


def map_finish_reason(reason: str | None, *, tool_calls: bool = False) -> str:
    """OpenAI's finish_reason for a Gemini finishReason (unknown values read as a normal stop)."""
    mapped = _FINISH_REASONS.get(reason or "", "stop")
    return "tool_calls" if mapped == "stop" and tool_calls else mapped


@dataclass(slots=True)
class _Choice:
    router: ThoughtRouter
    role_sent: bool = False
    tool_calls: int = 0
    finish: str | None = None


@dataclass(slots=True)
class _Batch:
    """Consecutive parts of one kind (content, reasoning_content or tool_calls) become one delta."""

    kind: str = ""
    items: list[Any] = field(default_factory=list)


class GeminiStreamTranslator:
    """Incremental Gemini → OpenAI stream translation, one upstream chunk at a time.

    Feed raw upstream bytes with ``feed`` (it runs the shared ``SseParser``), or already parsed
    events with ``feed_events``; call ``finish`` at end of body. Each call returns bytes ready to
    write to the client (possibly empty). The finish chunk is held back until the upstream ends,
    because older models put ``finishReason`` on every chunk while OpenAI allows it only on the last.
    After an upstream error the output is one ``data: {"error": …}`` event and no ``[DONE]``.
    """

    def __init__(
        self,
        *,
        model: str,
        include_usage: bool = False,
        completion_id: str | None = None,
        created: int | None = None,
        parser: SseParser | None = None,
        reasoning_format: ReasoningFormat | None = None,
    ) -> None:
        self.completion_id = completion_id or f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time()) if created is None else created
        self.model = model
        self.include_usage = include_usage
        self.parser = parser or SseParser()
        self.reasoning_format = reasoning_format
        self.error_code: str | None = None
        self.done = False
        self.usage: dict[str, Any] | None = None
        self._choices: dict[int, _Choice] = {}
        self._blocked = False
        self._stray: list[str] = []
        self._stray_chars = 0
        self._stray_seen = 0
        head = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
        }
        # Every chunk starts with the same bytes: encode them once.
        self._prefix = b"data: " + _dumps(head)[:-1].encode("utf-8") + b',"choices":'
        self._suffix = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    # -- input ---------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Translate the next upstream bytes (split anywhere)."""
        if self.done:
            return b""
        try:
            events = self.parser.feed(chunk)
        except SseLimitExceeded as exc:
            out = self.feed_events(exc.events_before)
            return out + self.abort(UPSTREAM_PROTOCOL_ERROR, "The upstream sent an oversized stream event.")
        return self.feed_events(events, self._new_stray_lines())

    def feed_events(self, events: Iterable[SseEvent], stray_lines: Iterable[str] = ()) -> bytes:
        """Translate parsed events, then any non-``data:`` lines seen with them (bare errors)."""
        out = [self.feed_data(event.data) for event in events if not self.done]
        for line in stray_lines:
            if self.done:
                break
            out.append(self.feed_stray_line(line))
        return b"".join(out)

    def feed_data(self, data: str) -> bytes:
        """Translate one event's ``data`` (one GenerateContentResponse JSON)."""
        if self.done:
            return b""
        try:
            payload = _loads(data)
        except ValueError:
            return self.abort(UPSTREAM_PROTOCOL_ERROR, "The upstream sent an event that is not JSON.")
        return self.feed_payload(payload)

    def feed_stray_line(self, line: str) -> bytes:
        """A line outside SSE fields: Gemini's bare, pretty-printed mid-stream error is built
        from these until it parses as JSON."""
        if self.done:
            return b""
        if not self._stray and not line.strip():
            return b""
        self._stray.append(line)
        self._stray_chars += len(line)
        text = "\n".join(self._stray).strip()
        if not text.startswith("{") or self._stray_chars > _MAX_STRAY_CHARS:
            return self.abort(
                UPSTREAM_PROTOCOL_ERROR, "The upstream sent lines that are not Server-Sent Events."
            )
        try:
            payload = _loads(text)
        except ValueError:
            return b""  # not complete yet
        self._stray.clear()
        self._stray_chars = 0
        return self.feed_payload(payload)

    def feed_payload(self, payload: Any) -> bytes:
        """Translate one parsed GenerateContentResponse (or error object)."""
        if self.done:
            return b""
        if not isinstance(payload, dict):
            return self.abort(
                UPSTREAM_PROTOCOL_ERROR, "The upstream sent an event that is not a JSON object."
            )
        if "error" in payload:
            error = payload["error"] if isinstance(payload["error"], dict) else {}
            return self._upstream_error(error)
        usage = payload.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage = usage
        feedback = payload.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._blocked = True
        candidates = payload.get("candidates")
        out: list[bytes] = []
        if isinstance(candidates, list):
            for position, candidate in enumerate(candidates):
                if isinstance(candidate, dict):
                    self._candidate(candidate, position, out)
        if not out and not self._choices:
            out.append(self._role_chunk(0))  # first byte early: the client sees the stream start
        return b"".join(out)

    # -- output --------------------------------------------------------------------------------

    def finish(self) -> bytes:
        """End of the upstream body: finish chunk(s), optional usage chunk, ``[DONE]``."""
        if self.done:
            return b""
        out: list[bytes] = []
        try:
            events = self.parser.finish()
        except SseLimitExceeded:
            events = []
        out.append(self.feed_events(events, self._new_stray_lines()))
        if self.done:
            return b"".join(out)
        if self._stray:
            return b"".join(out) + self.abort(
                UPSTREAM_PROTOCOL_ERROR, "The upstream stream ended inside a non-SSE block."
            )
        if not self._choices:
            out.append(self._role_chunk(0))
        for index in sorted(self._choices):
            state = self._choices[index]
            self._flush_held(index, state, out)
            if self._blocked and state.finish is None and not state.tool_calls:
                reason = "content_filter"
            else:
                reason = map_finish_reason(state.finish, tool_calls=state.tool_calls > 0)
            choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}
            out.append(self._prefix + _dumps([choice]).encode("utf-8") + self._suffix)
        if self.include_usage and self.usage is not None:
            out.append(self._usage_chunk(self.usage))
        out.append(_DONE)
        self.done = True
        return b"".join(out)

    def abort(self, code: str, message: str) -> bytes:
        """End the client stream with an error event (no ``[DONE]``): the caller's own failures
        (timeouts, disconnects) use this too."""
        if self.done:
            return b""
        self.done = True
        self.error_code = code
        return b"data: " + _dumps({"error": {"code": code, "message": message}}).encode("utf-8") + b"\n\n"

    # -- internals -----------------------------------------------------------------------------

    def _new_stray_lines(self) -> list[str]:
        obs = self.parser.observations
        if obs.non_field_line_count == self._stray_seen:
            return []
        kept = obs.non_field_lines
        new = kept[self._stray_seen :] if len(kept) > self._stray_seen else []
        dropped = obs.non_field_line_count - self._stray_seen - len(new)
        self._stray_seen = obs.non_field_line_count
        if dropped > 0:  # the parser stopped keeping text: we cannot rebuild what followed
            new.append("\x00")
        return new

    def _upstream_error(self, error: Mapping[str, Any]) -> bytes:
        code = classify_stream_error(error)
        return self.abort(code, f"The upstream model failed during the stream ({error_label(error)}).")

    @property
    def answer_started(self) -> bool:
        return any(state.router.answer_started for state in self._choices.values())

    @property
    def thought_started(self) -> bool:
        return any(state.router.thought_started for state in self._choices.values())

    def _choice(self, index: int) -> _Choice:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice(ThoughtRouter(self.reasoning_format))
        return state

    def _flush_held(self, index: int, state: _Choice, out: list[bytes]) -> None:
        """Text held back at the end (an unclosed ``<think>``, a tag split at the last byte)."""
        thought, answer = state.router.finish()
        thought = state.router.visible_thought(thought)
        if thought:
            self._emit(index, state, {"reasoning_content": thought}, out)
        if answer:
            self._emit(index, state, {"content": answer}, out)

    def _role_chunk(self, index: int) -> bytes:
        self._choice(index).role_sent = True
        delta = {"role": "assistant", "content": ""}
        return self._chunk(index, delta)

    def _chunk(self, index: int, delta: dict[str, Any]) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        return self._prefix + _dumps([choice]).encode("utf-8") + self._suffix

    def _candidate(self, candidate: Mapping[str, Any], position: int, out: list[bytes]) -> None:
        raw_index = candidate.get("index")
        index = raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else position
        state = self._choice(index)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            state.finish = reason
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        batch = _Batch()
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict):
                self._part(index, state, part, batch, out)
        self._flush(index, state, batch, out)
        if not state.role_sent:
            out.append(self._role_chunk(index))

    def _part(
        self, index: int, state: _Choice, part: Mapping[str, Any], batch: _Batch, out: list[bytes]
    ) -> None:
        """One part: a function call, a thought (``thought: true``) or answer text."""
        router = state.router
        piece = part.get("text")
        call = part.get("functionCall")
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            router.answer_token()
            entry = self._tool_call(state, call, part.get("thoughtSignature"))
            self._add(index, state, batch, "tool_calls", entry, out)
        elif isinstance(piece, str) and piece:
            if part.get("thought") is True:
                self._add(index, state, batch, "reasoning_content", router.thought(piece), out)
                return
            thought, answer = router.content(piece)
            self._add(index, state, batch, "reasoning_content", router.visible_thought(thought), out)
            self._add(index, state, batch, "content", answer, out)

    def _add(self, index: int, state: _Choice, batch: _Batch, kind: str, item: Any, out: list[bytes]) -> None:
        if not item:
            return
        if batch.kind != kind:
            self._flush(index, state, batch, out)
            batch.kind = kind
        batch.items.append(item)

    def _flush(self, index: int, state: _Choice, batch: _Batch, out: list[bytes]) -> None:
        if batch.items:
            value = batch.items if batch.kind == "tool_calls" else "".join(batch.items)
            self._emit(index, state, {batch.kind: value}, out)
        batch.kind, batch.items = "", []

    def _emit(self, index: int, state: _Choice, delta: dict[str, Any], out: list[bytes]) -> None:
        if not state.role_sent:
            state.role_sent = True
            delta = {"role": "assistant", "content": None, **delta}
        out.append(self._chunk(index, delta))

    @staticmethod
    def _tool_call(state: _Choice, call: Mapping[str, Any], signature: Any) -> dict[str, Any]:
        args = call.get("args")
        entry: dict[str, Any] = {
            "index": state.tool_calls,
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": _dumps(args if isinstance(args, dict) else {})},
        }
        if isinstance(signature, str) and signature:
            # Same place Gemini's OpenAI-compatible endpoint uses; build_request reads it back.
            entry["extra_content"] = {"google": {"thought_signature": signature}}
        state.tool_calls += 1
        return entry

    def _usage_chunk(self, meta: Mapping[str, Any]) -> bytes:
        usage = openai_usage(meta)
        return self._prefix + b"[]" + b',"usage":' + _dumps(usage).encode("utf-8") + b"}\n\n"


def openai_usage(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Gemini's ``usageMetadata`` as OpenAI's ``usage`` object."""

    def count(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt = count("promptTokenCount") + count("toolUsePromptTokenCount")
    thoughts = count("thoughtsTokenCount")
    completion = count("candidatesTokenCount") + thoughts
    total = count("totalTokenCount") or prompt + completion
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


class _ProxyGeminiTranslator(GeminiStreamTranslator):
    """Records an upstream failure without writing an error event: the relay writes the one final
    error event itself (same shape for every spec), so the client never gets two."""

    def abort(self, code: str, message: str) -> bytes:
        super().abort(code, message)
        return b""

    def feed_payload(self, payload: Any) -> bytes:
        """A prompt Gemini blocked (``promptFeedback.blockReason``) before any output is the
        client's ``upstream_content_filtered``, as Azure's filter answer is; later blocks end the
        answer with ``finish_reason: content_filter`` as before."""
        if not self.done and not self._choices and isinstance(payload, dict):
            feedback = payload.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason") and not payload.get("candidates"):
                return self.abort(ErrorCode.UPSTREAM_CONTENT_FILTERED, "The prompt was blocked.")
        return super().feed_payload(payload)


class GeminiTranslation:
    """``StreamRelay`` for Gemini: each ``GenerateContentResponse`` becomes OpenAI chunks (text, tool
    calls, usage)."""

    __slots__ = ("_translator",)

    def __init__(
        self, *, model: str, include_usage: bool, reasoning_format: ReasoningFormat | None = None
    ) -> None:
        self._translator = _ProxyGeminiTranslator(
            model=model, include_usage=include_usage, reasoning_format=reasoning_format
        )

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

    @property
    def answer_started(self) -> bool:
        return self._translator.answer_started

    @property
    def thought_started(self) -> bool:
        return self._translator.thought_started

    @property
    def usage(self) -> dict[str, Any] | None:
        meta = self._translator.usage
        return None if meta is None else openai_usage(meta)
