"""``stream: false``: the relay's OpenAI ``chat.completion.chunk`` events folded into one
``chat.completion`` object, as OpenAI's own non-streaming answer looks.

The upstream is always called streaming (the specs require it of a custom LLM); this module only
reads what the relay already produced, so it works the same for every spec.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.providers.sse import SseParser

#: The most answer text (content, tool arguments) one object may hold; a longer answer must stream.
MAX_ANSWER_CHARS = 8 * 1024 * 1024


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _index(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


class AnswerTooLarge(Exception):
    """The answer outgrew ``MAX_ANSWER_CHARS``: it can only be streamed."""


@dataclass
class _ToolCall:
    id: str | None = None
    type: str = "function"
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": "".join(self.arguments)},
        }


@dataclass
class _Choice:
    role: str = "assistant"
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None
    reasoning: list[str] = field(default_factory=list)  # ``reasoning_content`` (``parsed`` LLMs)

    def to_json(self, index: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": self.role,
            "content": "".join(self.content) if self.content or not self.tool_calls else None,
            "refusal": "".join(self.refusal) if self.refusal else None,
        }
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].to_json() for i in sorted(self.tool_calls)]
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        return {"index": index, "message": message, "finish_reason": self.finish_reason, "logprobs": None}


class CompletionAggregator:
    """Feed the relay's output bytes (SSE, any split); ``result()`` is the ``chat.completion``."""

    def __init__(self, model: str, *, clock: Any = time.time) -> None:
        self._parser = SseParser()
        self._choices: dict[int, _Choice] = {}
        self._model = model
        self._meta: dict[str, Any] = {}
        self._usage: dict[str, Any] | None = None
        self._chars = 0
        self._clock = clock

    def feed(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            if event.data.startswith("[DONE]"):
                continue
            try:
                chunk = json.loads(event.data)
            except ValueError:
                continue  # the relay only emits JSON; never fail an answer on a stray event
            if isinstance(chunk, dict) and "error" not in chunk:
                self._add(chunk)

    def _add(self, chunk: dict[str, Any]) -> None:
        for key in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(key) is not None:
                self._meta.setdefault(key, chunk[key])
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict):
                self._add_choice(choice)

    def _add_choice(self, choice: dict[str, Any]) -> None:
        into = self._choices.setdefault(_index(choice.get("index"), 0), _Choice())
        delta = _object(choice.get("delta"))
        if isinstance(delta.get("role"), str):
            into.role = delta["role"]
        for name, target in (
            ("content", into.content),
            ("refusal", into.refusal),
            ("reasoning_content", into.reasoning),
        ):
            if isinstance(delta.get(name), str):
                self._grow(len(delta[name]))
                target.append(delta[name])
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._add_tool_call(into, call)
        if choice.get("finish_reason") is not None:
            into.finish_reason = choice["finish_reason"]

    def _add_tool_call(self, into: _Choice, call: dict[str, Any]) -> None:
        position = _index(call.get("index"), len(into.tool_calls))
        known = into.tool_calls.get(position)
        if known is None:
            known = into.tool_calls[position] = _ToolCall()
        if isinstance(call.get("id"), str):
            known.id = call["id"]
        if isinstance(call.get("type"), str):
            known.type = call["type"]
        known.extra.update({k: v for k, v in call.items() if k not in ("index", "id", "type", "function")})
        function = _object(call.get("function"))
        if isinstance(function.get("name"), str):
            known.name += function["name"]
        if isinstance(function.get("arguments"), str):
            self._grow(len(function["arguments"]))
            known.arguments.append(function["arguments"])

    def _grow(self, chars: int) -> None:
        self._chars += chars
        if self._chars > MAX_ANSWER_CHARS:
            raise AnswerTooLarge

    def result(self) -> dict[str, Any]:
        choices = self._choices or {0: _Choice(finish_reason="stop")}
        completion: dict[str, Any] = {
            "id": self._meta.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": self._meta.get("created") or int(self._clock()),
            "model": self._meta.get("model") or self._model,
            "choices": [choices[i].to_json(i) for i in sorted(choices)],
        }
        if self._meta.get("system_fingerprint"):
            completion["system_fingerprint"] = self._meta["system_fingerprint"]
        if self._usage is not None:
            completion["usage"] = self._usage
        return completion
