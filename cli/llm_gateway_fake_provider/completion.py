"""What the fake model answers, independent of the wire format: deterministic words or one tool call."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

_SENTENCE = "The quick fake model streams deterministic words so every test and benchmark sees the same reply"
WORDS = tuple(_SENTENCE.split(" "))

FinishKind = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class Completion:
    words: tuple[str, ...]
    tool_call: ToolCall | None
    finish: FinishKind
    prompt_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.words)

    @property
    def completion_tokens(self) -> int:
        return max(1, len(self.words)) if self.tool_call is None else 8


def words_for(count: int) -> tuple[str, ...]:
    """Word i is the same for every request, so clients can assert on exact text."""
    return tuple(("" if i == 0 else " ") + WORDS[i % len(WORDS)] for i in range(count))


_COUNT = re.compile(r"count from 1 to (\d{1,3})", re.IGNORECASE)


def counting_words(prompt: str) -> tuple[str, ...] | None:
    """ "Count from 1 to N" is answered "1, 2, ..., N": a reply whose right continuation after any
    prefix is unambiguous (the conformance check's continuation probe asks for it)."""
    match = _COUNT.search(prompt)
    if match is None:
        return None
    top = max(1, min(200, int(match.group(1))))
    return tuple(("" if n == 1 else ", ") + str(n) for n in range(1, top + 1))


def continued(completion: Completion, prefill: str | None) -> Completion:
    """A model continuing a prefilled assistant turn: when ``prefill`` is where its planned answer
    starts (on a word boundary), it sends only the rest; otherwise the whole answer, as a model that
    ignores the prefill would (the caller then sees the text twice)."""
    if not prefill or completion.tool_call is not None:
        return completion
    text = ""
    for index, word in enumerate(completion.words):
        if text == prefill:
            return replace(completion, words=completion.words[index:])
        text += word
    return replace(completion, words=("",)) if text == prefill else completion


def plan_completion(
    *,
    chunks: int,
    max_tokens: int | None,
    prompt_tokens: int,
    tool: ToolCall | None,
    prompt: str = "",
) -> Completion:
    if tool is not None:
        return Completion((), tool, "tool_calls", prompt_tokens)
    counting = counting_words(prompt)
    if counting is not None:
        return Completion(counting, None, "stop", prompt_tokens)
    count = max(1, chunks)
    finish: FinishKind = "stop"
    if max_tokens is not None and max_tokens < count:
        count, finish = max(1, max_tokens), "length"
    return Completion(words_for(count), None, finish, prompt_tokens)


def example_value(schema: Any, depth: int = 0) -> Any:
    """A value that satisfies a simple JSON schema, so tool arguments parse and look plausible."""
    if not isinstance(schema, dict):
        return "fake"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        if depth > 4 or not isinstance(props, dict):
            return {}
        return {name: example_value(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [example_value(schema.get("items"), depth + 1)] if depth <= 4 and schema.get("items") else []
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "fake")


def split_fragments(text: str, size: int = 6) -> list[str]:
    """Tool arguments arrive in small pieces like the real APIs send them."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def count_words(value: Any) -> int:
    """Rough prompt-token count: words in every string found in the request's messages."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(count_words(v) for k, v in value.items() if k in ("content", "text", "parts"))
    return 0


_THOUGHT = "The user wants a short reply so I will answer in a few plain words"
THOUGHT_WORDS = tuple(_THOUGHT.split(" "))


def thought_words(count: int = 6) -> tuple[str, ...]:
    """What a reasoning fake thinks before it answers: the same words for every request."""
    return tuple(("" if i == 0 else " ") + THOUGHT_WORDS[i % len(THOUGHT_WORDS)] for i in range(count))
