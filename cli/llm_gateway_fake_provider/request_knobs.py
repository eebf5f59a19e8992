"""What the handlers read off a request besides its body: keys and the ``x-fake-*`` knobs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

CHUNKS_HEADER = "x-fake-chunks"
INTERVAL_HEADER = "x-fake-interval-ms"
MAX_CHUNKS = 100_000


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def int_header(request: Request, name: str, default: int) -> int:
    try:
        return min(MAX_CHUNKS, max(1, int(request.headers[name])))
    except (KeyError, ValueError):
        return default


def float_header(request: Request, name: str, default: float) -> float:
    try:
        return max(0.0, float(request.headers[name]))
    except (KeyError, ValueError):
        return default


def positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
