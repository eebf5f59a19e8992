"""Thoughts in an OpenAI-compatible stream (``reasoning_content`` / ``reasoning`` deltas, a leading
``<think>`` in the content), routed by the LLM's ``reasoningFormat`` on the relay's hot path.

Once every choice's content has settled into answer text and a chunk names no reasoning field, the
chunk is forwarded byte for byte: only the first chunks of an answer (and thought chunks) cost a
rewrite.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.models.llm import ReasoningFormat
from llm_gateway.providers.common.reasoning import ThoughtRouter, shape_openai_delta
from llm_gateway.providers.openai.request import encode_json
from llm_gateway.providers.sse import encode_data_event

__all__ = ["ChunkThoughts"]

_NOTHING: tuple[Any, ...] = (None, "", [], {})


def _carries_nothing(delta: dict[str, Any]) -> bool:
    return all(value in _NOTHING for value in delta.values())


class ChunkThoughts:
    """Per choice: a ``ThoughtRouter``; per chunk: the output event(s)."""

    __slots__ = ("_raw", "_routers", "_settled", "answer_started", "format", "thought_started")

    def __init__(self, reasoning_format: ReasoningFormat | None) -> None:
        self.format = reasoning_format or ReasoningFormat.HIDDEN
        self._raw = self.format is ReasoningFormat.RAW
        self._routers: dict[int, ThoughtRouter] = {}
        self._settled: set[int] = set()
        self.answer_started = False
        self.thought_started = False

    def route(self, chunk: dict[str, Any], data: str) -> list[bytes] | None:
        """The output for one parsed chunk whose ``data`` is the upstream's text; ``None`` when that
        text goes out as it came (the caller forwards the upstream's own bytes)."""
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return None
        if '"reasoning' not in data:
            settled = self._settled
            if len(choices) == 1:  # the usual chunk: one choice, already answering
                only = choices[0]
                if isinstance(only, dict) and only.get("index", 0) in settled:
                    return None
            elif all(isinstance(c, dict) and c.get("index", 0) in settled for c in choices):
                return None
        kept, changed = self._shape(choices)
        if self._raw or not changed:
            return None
        if not kept and chunk.get("usage") is None:
            return []  # only thoughts, and they are hidden
        chunk["choices"] = kept
        return [encode_data_event(encode_json(chunk))]

    def _shape(self, choices: list[Any]) -> tuple[list[Any], bool]:
        kept: list[Any] = []
        changed = False
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                kept.append(choice)
                continue
            index = choice.get("index", 0)
            router = self._routers.get(index)
            if router is None:
                router = self._routers[index] = ThoughtRouter(self.format)
            shaped = shape_openai_delta(router, delta)
            if choice.get("finish_reason") is not None:
                shaped = _with_leftovers(router, shaped)
            self.answer_started = self.answer_started or router.answer_started
            self.thought_started = self.thought_started or router.thought_started
            if router.splitter.settled:
                self._settled.add(index)
            if shaped != delta:
                changed = True
                choice = {**choice, "delta": shaped}
            if (
                _carries_nothing(shaped)
                and choice.get("finish_reason") is None
                and choice.get("usage") is None
            ):
                changed = changed or bool(delta)
                continue
            kept.append(choice)
        return kept, changed


def _with_leftovers(router: ThoughtRouter, delta: dict[str, Any]) -> dict[str, Any]:
    """A choice finished inside an unclosed ``<think>`` (or on whitespace): flush what was held."""
    thought, answer = router.finish()
    thought = router.visible_thought(thought)
    if not thought and not answer:
        return delta
    shaped = dict(delta)
    if answer:
        shaped["content"] = (shaped.get("content") or "") + answer
    if thought:
        shaped["reasoning_content"] = (shaped.get("reasoning_content") or "") + thought
    return shaped
