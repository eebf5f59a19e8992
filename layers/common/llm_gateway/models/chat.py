"""The OpenAI Chat Completions request the stream endpoint accepts (and the probe sends).

Strict types (``"true"`` is not a boolean, ``"5"`` not a number): a body the gateway cannot use
is the client's 400, never an upstream's puzzle or our 500. Messages keep only the fields the
three specs use; anything else a client adds to a message is dropped, never forwarded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Every role an OpenAI-compatible client sends (``developer`` is the newer ``system``).
ChatRole = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(BaseModel):
    """One message: ``role``, ``content`` (a string or a list of content parts), ``name``,
    ``tool_calls`` and ``tool_call_id``; other fields are dropped."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    role: ChatRole
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatRequest(BaseModel):
    """Only the fields the gateway forwards. ``model`` and anything naming an upstream are ignored.

    ``stream`` absent means false, as in OpenAI's API: the answer is one ``chat.completion`` object.
    """

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    messages: list[ChatMessage] = Field(min_length=1, max_length=2048)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=512)
    tool_choice: str | dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
