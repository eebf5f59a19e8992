"""The request log's public shapes: one record per stream request, its pages, and usage per day.

A record holds ids, outcome, timings, attempts and token counts: never content, prompts, headers
or keys (nothing in it comes from a request body or an upstream answer except the token counts).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from llm_gateway.models.common import ApiModel


class TokenUsage(ApiModel):
    """Token counts as the upstream reported them (OpenAI ``usage``, Gemini ``usageMetadata``)."""

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    total_tokens: int = Field(0, ge=0)


class RequestRecord(ApiModel):
    """One stream request (``POST /v1/chat/completions``) as the gateway saw it."""

    at: datetime = Field(description="When the request arrived (UTC).")
    request_id: str
    session_id: str | None = None
    client_label: str | None = None
    llm_id: str
    fallback_llm_id: str | None = Field(None, description="The fallback LLM that answered, if any.")
    outcome: str = Field(description="`ok`, an error code, or `client_disconnected`.")
    http_status: int | None = Field(None, description="The status the gateway answered (200 once streaming).")
    upstream_status: int | None = Field(None, description="The status of the upstream's last answer.")
    upstream_ttfb_ms: float | None = Field(None, description="Upstream request sent to its response headers.")
    ttft_ms: float | None = Field(
        None, description="Request arrived to its first output leaving the gateway."
    )
    total_ms: float | None = Field(None, description="Request arrived to its last byte.")
    attempts: int = Field(0, description="Upstream attempts before the first byte (retries and failover).")
    url_index: int | None = Field(
        None, description="Position, in the LLM's `urls`, of the URL that answered."
    )
    hedged: bool = False
    continued: bool = False
    chunks: int = 0
    usage: TokenUsage | None = None


class RequestPage(ApiModel):
    """Newest first; pass ``nextCursor`` as ``cursor`` for the next page (absent on the last one)."""

    data: list[RequestRecord]
    next_cursor: str | None = None


class UsageDay(ApiModel):
    """One UTC day of an LLM's stream requests."""

    day: date
    requests: int = 0
    errors: int = 0
    errors_by_code: dict[str, int] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None


class LlmUsage(ApiModel):
    """``GET /v1/llms/{id}/usage``: the last ``days`` UTC days, oldest first (days without traffic too)."""

    llm_id: str
    days: int
    data: list[UsageDay]
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
