"""How the fake thinks aloud: which form an OpenAI-compatible reasoning request gets, and the
models that refuse reasoning parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .wire import ThoughtForm

#: ``reasoning_content`` | ``reasoning`` | ``think``: an OpenAI-compatible fake thinks aloud in that form.
REASONING_HEADER = "x-fake-reasoning"
#: A model whose name holds this refuses reasoning parameters with its spec's 400.
NO_REASONING = "no-reasoning"
_GROQ_FORMS: dict[str, ThoughtForm | None] = {"parsed": "reasoning", "raw": "think", "hidden": None}


def thought_form(headers: Mapping[str, str], body: dict[str, Any]) -> ThoughtForm | None:
    """The header wins; else Groq's ``reasoning_format``; else any ``reasoning_effort`` thinks aloud
    as DeepSeek-style ``reasoning_content`` deltas."""
    header = headers.get(REASONING_HEADER)
    if header in ("reasoning_content", "reasoning", "think"):
        return header  # type: ignore[return-value]
    groq = body.get("reasoning_format")
    if isinstance(groq, str) and groq in _GROQ_FORMS:
        return _GROQ_FORMS[groq]
    return "reasoning_content" if body.get("reasoning_effort") is not None else None
