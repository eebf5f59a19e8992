"""The OpenAI/Azure stream relay (the proxy's hot path): upstream SSE in, OpenAI SSE out.

Payloads are forwarded byte for byte; only what a client cannot parse is dropped. Keep the
per-chunk code lean: it runs for every upstream chunk of every stream.
"""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.models.llm import ReasoningFormat
from llm_gateway.providers.openai.errors import inband_code
from llm_gateway.providers.openai.request import encode_json
from llm_gateway.providers.openai.thoughts import ChunkThoughts
from llm_gateway.providers.openai.wire import DONE_EVENT, is_azure_annotation
from llm_gateway.providers.sse import SseEvent, SseLimitExceeded, SseParser, encode_data_event

__all__ = ["OpenAiPassThrough", "OpenAiStreamRelay"]

_PROTOCOL_ERROR = ErrorCode.UPSTREAM_PROTOCOL_ERROR


_raw_decode = json.JSONDecoder().raw_decode


def _loads_event(data: str) -> Any:
    """``json.loads`` for one event payload, minus its wrapper overhead (this runs per chunk)."""
    try:
        value, end = _raw_decode(data)
    except ValueError:
        return json.loads(data)  # leading whitespace, or invalid: loads decides (and raises)
    if end != len(data) and data[end:].strip():
        raise ValueError("extra data after the JSON value")
    return value


class OpenAiStreamRelay:
    """Turns upstream SSE events into OpenAI output events with the least work that keeps the
    stream valid: payloads are forwarded byte for byte; only what a client cannot parse is dropped.

    The relay never emits the upstream's error payload (it may echo key fragments). It records
    it in ``error`` and stops; the proxy then sends its own final error event.
    """

    __slots__ = (
        "_azure",
        "_last_chunk_meta",
        "_open_choices",
        "content_started",
        "done",
        "dropped",
        "error",
        "finished_choices",
        "forward_usage",
        "thoughts",
        "usage",
    )

    def __init__(
        self,
        *,
        azure: bool = False,
        reasoning_format: ReasoningFormat | None = None,
        forward_usage: bool = True,
    ) -> None:
        self._azure = azure
        self.thoughts = ChunkThoughts(reasoning_format)
        #: The client asked for the usage chunk (``stream_options.include_usage``); the gateway
        #: always asks the upstream, for the request log, and drops the chunk otherwise.
        self.forward_usage = forward_usage
        self.usage: dict[str, Any] | None = None  # the upstream's ``usage`` object, once seen
        self.done = False  # [DONE] seen (or synthesised by finish())
        self.error: dict[str, Any] | None = None  # the upstream's in-band error object
        self.content_started = False  # first content / tool-call delta forwarded (TTFT)
        self.dropped = 0  # events dropped (filter chunks, non-JSON data, events after [DONE])
        self.finished_choices: set[int] = set()
        self._open_choices: set[int] = set()
        self._last_chunk_meta: dict[str, Any] = {}

    @property
    def ended(self) -> bool:
        """Nothing more will be forwarded: [DONE] or an error was seen."""
        return self.done or self.error is not None

    def feed_event(self, event: SseEvent) -> list[bytes]:
        out = self.relay_data(event.data)
        return [encode_data_event(event.data)] if out is None else out

    def relay_data(self, data: str) -> list[bytes] | None:
        """The output for one event's payload; ``None`` when the payload goes out as it came (the
        pass-through's fast path then forwards the upstream's bytes without re-encoding them)."""
        if self.done or self.error is not None:
            self.dropped += 1
            return []
        if data.startswith("[DONE]"):
            self.done = True
            return [DONE_EVENT]
        try:
            chunk = _loads_event(data)
        except ValueError:
            self.dropped += 1
            return []
        if not isinstance(chunk, dict):
            self.dropped += 1
            return []
        if chunk.get("error") is not None:
            error = chunk["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            if not self.forward_usage and not chunk.get("choices"):
                return []
        if self._azure and is_azure_annotation(chunk):
            return self._azure_annotation(chunk)
        self._note_choices(chunk)
        return self.thoughts.route(chunk, data)

    def _note_choices(self, chunk: dict[str, Any]) -> None:
        """Which choices are open or finished, whether content started."""
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index")
                delta = choice.get("delta")
                if isinstance(index, int):
                    if choice.get("finish_reason") is not None:
                        self.finished_choices.add(index)
                    else:
                        self._open_choices.add(index)
                if (
                    not self.content_started
                    and isinstance(delta, dict)
                    and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal"))
                ):
                    self.content_started = True
            if self._azure:
                self._last_chunk_meta = {
                    "id": chunk.get("id", ""),
                    "object": "chat.completion.chunk",
                    "created": chunk.get("created", 0),
                    "model": chunk.get("model", ""),
                }

    def _azure_annotation(self, chunk: dict[str, Any]) -> list[bytes]:
        """Drop filter chunks, but keep a content_filter stop: the client must see the finish."""
        out: list[bytes] = []
        self.dropped += 1
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index")
            reason = choice.get("finish_reason")
            if isinstance(index, int) and reason is not None and index not in self.finished_choices:
                self.finished_choices.add(index)
                synthetic = dict(self._last_chunk_meta) or {
                    "id": "",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "",
                }
                synthetic["choices"] = [{"index": index, "delta": {}, "finish_reason": reason}]
                out.append(encode_data_event(encode_json(synthetic)))
        return out

    def finish(self) -> list[bytes]:
        """End of the upstream body. A stream that finished every choice but forgot ``[DONE]`` gets
        one (the client needs it); anything else is incomplete and left for the proxy to fail."""
        if self.ended:
            return []
        if self.finished_choices and self._open_choices <= self.finished_choices:
            self.done = True
            return [DONE_EVENT]
        return []

    @property
    def incomplete(self) -> bool:
        """After ``finish()``: the upstream stopped without finishing (the proxy sends an error)."""
        return not self.done and self.error is None


class OpenAiPassThrough:
    """``StreamRelay`` for OpenAI/Azure: the shared parser guarantees the framing, the relay the payloads."""

    __slots__ = ("_parser", "_relay", "failure")

    def __init__(
        self, *, azure: bool, reasoning_format: ReasoningFormat | None = None, forward_usage: bool = True
    ) -> None:
        self._parser = SseParser()
        self._relay = OpenAiStreamRelay(
            azure=azure, reasoning_format=reasoning_format, forward_usage=forward_usage
        )
        self.failure: str | None = None

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._relay.usage

    def feed(self, chunk: bytes) -> bytes:
        whole = self._whole_events(chunk)
        if whole is not None:
            return whole
        try:
            events = self._parser.feed(chunk)
        except SseLimitExceeded:
            self.failure = _PROTOCOL_ERROR
            return b""
        relay = self._relay
        if len(events) == 1:
            out = relay.feed_event(events[0])
            result = out[0] if len(out) == 1 else b"".join(out)
        else:
            result = b"".join(b for event in events for b in relay.feed_event(event))
        if relay.error is not None:
            self.failure = inband_code(relay.error)
        return result

    def _whole_events(self, chunk: bytes) -> bytes | None:
        """The common case without the parser: a chunk made of whole ``data: <payload>\n\n`` events
        (LF only, one data line each, valid UTF-8, within the parser's caps) arriving between events.
        Such a chunk parses to exactly those payloads, so each goes through the relay as the
        parser's events would (usage, thoughts, [DONE], errors and drops alike), and a payload the
        relay forwards as it came is sent as its own bytes: the output is the parser path's, byte
        for byte. Anything else returns None before touching any state, and takes the parser."""
        parser, relay = self._parser, self._relay
        if not parser.at_event_boundary or relay.ended or not chunk.endswith(b"\n\n") or b"\r" in chunk:
            return None
        blocks = chunk[:-2].split(b"\n\n")
        line_cap, event_cap = parser.max_line_bytes, parser.max_event_bytes + 5  # "data: " less its "\n"
        payloads: list[str] = []
        for block in blocks:
            if block[:6] != b"data: " or b"\n" in block or len(block) > line_cap or len(block) > event_cap:
                return None
            try:
                payloads.append(block[6:].decode("utf-8"))
            except UnicodeDecodeError:
                return None
        parser.skip_whole_events(len(blocks))
        if len(payloads) == 1:
            out = relay.relay_data(payloads[0])
            result = chunk if out is None else b"".join(out)
        else:
            parts: list[bytes] = []
            as_sent = True
            for block, data in zip(blocks, payloads, strict=True):
                out = relay.relay_data(data)
                if out is None:
                    parts.append(block + b"\n\n")
                else:
                    as_sent = False
                    parts.extend(out)
            result = chunk if as_sent else b"".join(parts)
        if relay.error is not None:
            self.failure = inband_code(relay.error)
        return result

    def finish(self) -> bytes:
        if self.failure is not None:
            return b""
        try:
            events = self._parser.finish()
        except SseLimitExceeded:
            self.failure = _PROTOCOL_ERROR
            return b""
        parts = [b for event in events for b in self._relay.feed_event(event)]
        parts.extend(self._relay.finish())
        tail = b"".join(parts)
        if self._relay.error is not None:
            self.failure = inband_code(self._relay.error)
        elif not self._relay.done:
            self.failure = _PROTOCOL_ERROR
        return tail

    @property
    def complete(self) -> bool:
        return self._relay.done and self.failure is None

    @property
    def answer_started(self) -> bool:
        return self._relay.thoughts.answer_started

    @property
    def thought_started(self) -> bool:
        return self._relay.thoughts.thought_started
