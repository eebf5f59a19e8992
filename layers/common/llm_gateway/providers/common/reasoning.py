"""A reasoning model's thoughts, recognised in every form the specs send them and routed by the LLM's
``reasoningFormat``: dropped (``hidden``), moved to ``delta.reasoning_content`` (``parsed``) or left
as the upstream sent them (``raw``).

Forms recognised: OpenAI-compatible ``reasoning_content`` / ``reasoning`` deltas, ``<think>…</think>``
at the start of the content, Gemini ``thought`` parts and Anthropic ``thinking`` blocks (the last two
reach the router as separate thought text). The router also says when the first thought and the
first answer token went by, so time to first token is measured to the answer, never to a thought.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.models.llm import ReasoningFormat

__all__ = ["THINK_CLOSE", "THINK_OPEN", "ThinkTagSplitter", "ThoughtRouter", "shape_openai_delta"]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
#: Keys a thought arrives under in an OpenAI-compatible delta (DeepSeek/vLLM, Groq/OpenRouter).
THOUGHT_KEYS = ("reasoning_content", "reasoning")
_START, _THINKING, _AFTER_THOUGHT, _ANSWER = 0, 1, 2, 3


def _held_suffix(text: str, tag: str) -> int:
    """How many trailing characters of ``text`` could be the start of ``tag`` (split across chunks)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ThinkTagSplitter:
    """Splits a leading ``<think>…</think>`` off a content stream, one piece at a time, whatever the
    split points. Text that does not start with the tag (after whitespace) is all answer."""

    __slots__ = ("_buffer", "state")

    def __init__(self) -> None:
        self.state = _START
        self._buffer = ""

    @property
    def settled(self) -> bool:
        """Only answer text can follow: pieces pass through untouched."""
        return self.state == _ANSWER

    def feed(self, piece: str) -> tuple[str, str]:
        """(thought, answer) text this piece completes."""
        if self.state == _ANSWER:
            return "", piece
        text = self._buffer + piece
        self._buffer = ""
        if self.state == _START:
            stripped = text.lstrip()
            if not stripped:
                return "", text  # whitespace passes; a <think> may still follow it
            if stripped.startswith(THINK_OPEN):
                self.state = _THINKING
                text = stripped[len(THINK_OPEN) :]
            elif THINK_OPEN.startswith(stripped):  # a tag not complete yet
                self._buffer = text
                return "", ""
            else:
                self.state = _ANSWER
                return "", text
        if self.state == _THINKING:
            end = text.find(THINK_CLOSE)
            if end < 0:
                held = _held_suffix(text, THINK_CLOSE)
                self._buffer = text[len(text) - held :] if held else ""
                return text[: len(text) - held], ""
            thought, text = text[:end], text[end + len(THINK_CLOSE) :]
            self.state = _AFTER_THOUGHT
            return thought, self._answer_after_thought(text)
        return "", self._answer_after_thought(text)

    def settle(self) -> None:
        """Answer output other than text began: treat what follows as answer text."""
        if self.state in (_START, _AFTER_THOUGHT) and not self._buffer:
            self.state = _ANSWER

    def _answer_after_thought(self, text: str) -> str:
        """The blank lines models put after ``</think>`` are not part of the answer."""
        answer = text.lstrip()
        if answer:
            self.state = _ANSWER
        return answer

    def finish(self) -> tuple[str, str]:
        """What a stream that ended mid-tag leaves: an unclosed thought stays a thought."""
        text, self._buffer = self._buffer, ""
        if self.state == _THINKING:
            return text, ""
        if self.state == _START:
            return "", text  # whitespace (or a tag's start) and nothing else: that was the answer
        return "", ""


class ThoughtRouter:
    """One choice's thoughts and answer, routed by the format; notes the first of each."""

    __slots__ = ("answer_started", "format", "splitter", "thought_started")

    def __init__(self, reasoning_format: ReasoningFormat | None) -> None:
        self.format = reasoning_format or ReasoningFormat.HIDDEN
        self.splitter = ThinkTagSplitter()
        self.answer_started = False
        self.thought_started = False

    @property
    def raw(self) -> bool:
        return self.format is ReasoningFormat.RAW

    def content(self, piece: str) -> tuple[str, str]:
        """(thought, answer) of a content piece; under ``raw`` the answer is the piece as sent."""
        thought, answer = self.splitter.feed(piece)
        self._note(thought, answer)
        return ("", piece) if self.raw else (thought, answer)

    def thought(self, piece: str) -> str:
        """A thought sent apart from the content (a reasoning delta, a thought part or block)."""
        if piece:
            self.thought_started = True
        return "" if self.format is ReasoningFormat.HIDDEN else piece

    def answer_token(self) -> None:
        """A tool call or a refusal: answer, not thought (no ``<think>`` can lead the content now)."""
        self.answer_started = True
        self.splitter.settle()

    def finish(self) -> tuple[str, str]:
        thought, answer = self.splitter.finish()
        self._note(thought, answer)
        return ("", "") if self.raw else (thought, answer)

    def visible_thought(self, thought: str) -> str:
        return thought if self.format is ReasoningFormat.PARSED else ""

    def _note(self, thought: str, answer: str) -> None:
        if thought:
            self.thought_started = True
        if answer and (answer.strip() or self.splitter.settled):
            self.answer_started = True


def shape_openai_delta(router: ThoughtRouter, delta: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-compatible delta with its thoughts routed: a new dict when anything changed."""
    separate = "".join(v for k in THOUGHT_KEYS if isinstance(v := delta.get(k), str))
    content = delta.get("content")
    if delta.get("tool_calls") or delta.get("refusal"):
        router.answer_token()
    if router.raw:
        router.thought(separate)
        if isinstance(content, str) and content:
            router.content(content)
        return delta
    shaped = {k: v for k, v in delta.items() if k not in THOUGHT_KEYS}
    thoughts = [router.thought(separate)] if separate else []
    if isinstance(content, str) and content:
        inline, answer = router.content(content)
        thoughts.append(router.visible_thought(inline))
        shaped["content"] = answer
    thought = "".join(thoughts)
    if thought:
        shaped["reasoning_content"] = thought
    return shaped
