"""What every spec module provides (``Spec``: its error vocabulary, JSON style and success
headers) and the wire helpers the specs share; the shared gate speaks to a spec only through it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.responses import Response

SpecName = Literal["openai", "azure", "gemini", "anthropic"]
#: How an OpenAI-compatible reasoning fake streams its thoughts (DeepSeek/vLLM, Groq parsed, Groq raw).
ThoughtForm = Literal["reasoning_content", "reasoning", "think"]


@dataclass(frozen=True)
class Spec:
    """One provider's wire vocabulary, as the shared steps (faults, key check) need it."""

    name: SpecName
    #: The provider's JSON style (key order, separators) for bodies and stream events.
    dumps: Callable[[Any], bytes]
    #: (presented key, echo): the answer to a missing or wrong key; ``echo`` leaks the key.
    auth_error: Callable[[str | None, bool], Response]
    #: (model): the provider's unknown-model answer.
    not_found: Callable[[str], Response]
    #: (status, model, presented key, fault argument): a ``status-NNN`` fault's answer.
    status_error: Callable[[int, str, str | None, str | None], Response]
    #: A prompt over the model's context (400).
    context_length_error: Callable[[], Response]
    #: A prompt refused by a content filter before streaming; None: the spec refuses in the stream.
    content_filter_error: Callable[[], Response] | None
    success_headers: Callable[[], dict[str, str]]


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def truncated(piece_json: bytes) -> bytes:
    """Half of a JSON text: the ``invalid-json`` fault's event."""
    return piece_json[: max(1, len(piece_json) // 2)]


def content_type_for(fault_name: str, normal: str) -> str | None:
    """The stream's content type, unless a fault bends it."""
    if fault_name == "wrong-content-type":
        return "application/json"
    if fault_name == "no-content-type":
        return None
    return normal


def status_error_shaped(
    spec: Spec, status: int, model: str, presented_key: str | None, retry_after: str | None,
    body: Callable[[int], Response],
) -> Response:  # fmt: skip
    """A ``status-NNN[:SECONDS]`` fault's error in the provider's shape for that status (``body``);
    a 429 says ``Retry-After: 1`` unless SECONDS says otherwise (``none``: no header)."""
    seconds = retry_after or ("1" if status == 429 else "none")
    if status == 401:
        return spec.auth_error(presented_key or "wrong-key", False)
    if status == 404:
        return spec.not_found(model)
    response = body(status)
    if seconds != "none":
        response.headers.update({"retry-after": seconds})
    return response
