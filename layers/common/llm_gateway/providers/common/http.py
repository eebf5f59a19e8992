"""HTTP rules every spec shares: extra-header filtering, Retry-After, media types, error objects,
and the status codes whose meaning does not depend on the spec.

One copy of each, so the stream path and the validator can never disagree about them.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from llm_gateway.errors import ErrorCode
from llm_gateway.models.llm import FORBIDDEN_HEADER_PREFIXES, FORBIDDEN_HEADERS
from llm_gateway.models.report import CheckCategory

__all__ = [
    "MAX_RETRY_AFTER_S",
    "RESERVED_HEADERS",
    "UpstreamError",
    "code_for_status",
    "error_object",
    "filter_extra_headers",
    "header_map",
    "media_type",
    "retry_after",
]

#: The longest wait an upstream's Retry-After may ask for; longer values are cut to this.
MAX_RETRY_AFTER_S = 3600.0
#: What a customer's extra headers may never set (the registry refuses them too), plus ``accept``,
#: which the relay owns because the stream's framing depends on it.
RESERVED_HEADERS = FORBIDDEN_HEADERS | {"accept"}
_UNSAFE_CHARS = ("\r", "\n", "\x00")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """An upstream error answer, mapped to the gateway's code and the report's category."""

    code: ErrorCode
    category: CheckCategory
    status: int
    message: str  # the upstream's own message (redacted, trimmed) or a description
    upstream_code: str | None = None
    retry_after_s: float | None = None
    hint: str = ""


def header_map(headers: Headers) -> dict[str, str]:
    """Response headers with lower-case names (the last value wins)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): str(value) for name, value in items}


def filter_extra_headers(extra_headers: Mapping[str, str] | None) -> dict[str, str]:
    """The LLM's extra headers minus anything that could override auth, framing or routing: reserved
    names and prefixes, and any name or value holding CR, LF or NUL. Defence in depth behind the
    API model, which refuses all of these at registration."""
    if not extra_headers:
        return {}
    kept: dict[str, str] = {}
    for name, value in extra_headers.items():
        lower = name.lower()
        if lower in RESERVED_HEADERS or lower.startswith(FORBIDDEN_HEADER_PREFIXES):
            continue
        if any(ch in name or ch in value for ch in _UNSAFE_CHARS):
            continue
        kept[name] = value
    return kept


def media_type(content_type: str | None) -> str | None:
    """``text/event-stream`` for ``Text/Event-Stream; charset=utf-8``; None without a header."""
    return None if content_type is None else content_type.split(";", 1)[0].strip().lower()


def error_object(
    body: bytes | str | Mapping[str, Any] | None, *, unwrap_list: bool = False
) -> dict[str, Any] | None:
    """``body["error"]`` when the body is a JSON object holding an ``error`` object, else None.
    ``unwrap_list`` also accepts a one-element array around it (some proxies send that)."""
    parsed: Any = body
    if isinstance(parsed, str | bytes | bytearray):
        try:
            parsed = json.loads(parsed)
        except ValueError:  # not JSON, or bytes that are not UTF-8/16/32
            return None
    if unwrap_list and isinstance(parsed, list) and len(parsed) == 1:
        parsed = parsed[0]
    if isinstance(parsed, Mapping) and isinstance(parsed.get("error"), Mapping):
        return dict(parsed["error"])
    return None


def retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the upstream asks to wait before retrying, from ``retry-after-ms`` (OpenAI, Azure) or
    ``retry-after`` (seconds or an HTTP date), at most ``MAX_RETRY_AFTER_S``; None when absent or
    unreadable. ``headers`` has lower-case names."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        seconds = _seconds(value.strip(), scale, now)
        if seconds is not None:
            return min(seconds, MAX_RETRY_AFTER_S)
    return None


def _seconds(value: str, scale: float, now: Callable[[], float]) -> float | None:
    try:
        seconds = float(value) * scale
    except ValueError:
        return _seconds_until(value, now) if scale == 1.0 else None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str, now: Callable[[], float]) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def code_for_status(status: int) -> ErrorCode | None:
    """The gateway code of an error status that means the same for every spec; None for the
    statuses a spec reads from its error body (404, 405, other 4xx)."""
    if 300 <= status < 400:
        return ErrorCode.UPSTREAM_PROTOCOL_ERROR  # redirects are never followed
    if status in (401, 403):
        return ErrorCode.UPSTREAM_UNAUTHORIZED
    if status in (408, 504):  # the upstream (or its own gateway) timed out
        return ErrorCode.UPSTREAM_TIMEOUT
    if status == 429:
        return ErrorCode.UPSTREAM_RATE_LIMITED
    if status >= 500:
        return ErrorCode.UPSTREAM_SERVER_ERROR
    return None
