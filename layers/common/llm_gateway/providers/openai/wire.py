"""Facts of the OpenAI Chat Completions stream format (WIRE_FORMATS.md §1-§2) the checks and the
relay share."""

from __future__ import annotations

from typing import Any

DONE_EVENT = b"data: [DONE]\n\n"
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def is_azure_annotation(chunk: dict[str, Any]) -> bool:
    """Azure prompt-filter chunk or asynchronous-filter annotation: no choice carries a delta."""
    choices = chunk.get("choices")
    if isinstance(choices, list) and any(isinstance(c, dict) and "delta" in c for c in choices):
        return False
    if "prompt_filter_results" in chunk or "prompt_annotations" in chunk or chunk.get("object") == "":
        return True
    return (
        isinstance(choices, list)
        and bool(choices)
        and all(
            isinstance(c, dict) and ("content_filter_results" in c or "content_filter_offsets" in c)
            for c in choices
        )
    )
