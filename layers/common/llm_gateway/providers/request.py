"""The one request shape every provider builds and every HTTP adapter sends."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What to send upstream: pure data, so adapters do all the I/O. ``repr`` hides header values
    (the key is in them) and the body."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"UpstreamRequest(method={self.method!r}, url={self.url!r}, headers={sorted(self.headers)!r})"
