"""Origins (scheme, host, port) as settings name them: the local stack's private endpoints, the
gateway's own public addresses. Pure parsing, no I/O; every layer may import it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS: dict[str, int] = {"https": 443, "http": 80}
_ORIGIN = re.compile(r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?/?")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

Origin = tuple[str, str, int]


def parse_origin(origin: str) -> Origin:
    """``http://127.0.0.1:8000`` → ``("http", "127.0.0.1", 8000)``: scheme, lower-case host (no
    brackets), effective port. Raises ``ValueError`` for anything but a bare origin."""
    match = _ORIGIN.fullmatch(origin.strip())
    if match is None:
        raise ValueError(f"not an origin (scheme://host[:port], nothing after it): {origin!r}")
    scheme, host, port = match[1].lower(), match[2].lower().strip("[]"), match[3]
    effective = int(port) if port else DEFAULT_PORTS[scheme]
    if not 0 < effective < 65536:
        raise ValueError(f"not a port number: {port}")
    return scheme, host, effective


def format_origin(origin: Origin) -> str:
    """The origin as a URL prefix again: an IPv6 host goes back into brackets (``http://[::1]:80``)."""
    scheme, host, port = origin
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def parse_origins(text: str) -> tuple[Origin, ...]:
    """A comma-separated list of origins (an environment variable); a bare host name means
    ``https://<name>`` (a custom domain); empty entries are skipped."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return tuple(parse_origin(part if "://" in part else f"https://{part}") for part in parts)


def host_and_port(url: str) -> tuple[str, int] | None:
    """The (lower-case host, effective port) a URL connects to; ``None`` when it has none."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host.lower().rstrip("."), port if port is not None else DEFAULT_PORTS.get(
        parts.scheme.lower(), 443
    )
