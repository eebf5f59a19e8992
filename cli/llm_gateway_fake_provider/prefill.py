"""Prefill: a request whose last message is the assistant's (OpenAI, Azure) or the model's (Gemini)
asks the model to continue that text; the fake does (``completion.continued``) unless the
``no-prefill`` fault refuses it."""

from __future__ import annotations

from typing import Any

NO_PREFILL = (
    "This model does not continue a prefilled assistant message: the last message must be the user's."
)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def openai_prefill(messages: list[Any]) -> tuple[str | None, str]:
    """(the trailing assistant text a request prefills, the last user message's text)."""
    prefill = None
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant" and not last.get("tool_calls"):
        prefill = _text_of(last.get("content"))
    asked = next(
        (
            _text_of(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    return prefill, asked


def gemini_prefill(contents: list[Any]) -> tuple[str | None, str]:
    """Gemini's prefill: a trailing ``model`` turn of text parts."""
    prefill = None
    last = contents[-1] if contents else None
    if isinstance(last, dict) and last.get("role") == "model":
        prefill = _text_of(last.get("parts"))
    asked = next(
        (
            _text_of(c.get("parts"))
            for c in reversed(contents)
            if isinstance(c, dict) and c.get("role") == "user"
        ),
        "",
    )
    return prefill, asked
