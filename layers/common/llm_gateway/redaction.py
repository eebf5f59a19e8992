"""The one redaction: known secrets and anything shaped like a credential become ``[REDACTED]``.

Used by the spec checks (evidence, messages), the conformance engine, the log formatter and every
URL the gateway shows, so a key is masked the same way wherever text about an upstream ends up.

A known secret is found however an upstream may echo it: in any letter case, percent-encoded
(wholly or in part, ``%2F`` or ``%2f``), JSON-escaped (``\\/``, ``\\u002d``), and base64-encoded
(standard or URL-safe alphabet, padded or not) at any byte offset inside a larger encoded blob.
Pure ``re`` and ``base64``: cheap to import.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "[REDACTED]"
#: A known secret shorter than this is not replaced (it would mask ordinary words); keys are longer.
MIN_SECRET_CHARS = 4
#: A base64 core shorter than this is not searched for (too likely to match unrelated text).
_MIN_BASE64_CORE = 8

#: Query parameter names that carry credentials, compared lower-cased with ``-`` read as ``_``.
#: A URL with one of these is refused at registration (``credential_in_url``) and redacted when shown.
CREDENTIAL_QUERY_PARAMS = frozenset(
    {
        "key", "api_key", "apikey", "token", "access_token", "sig", "signature", "code", "auth",
        "x_api_key", "subscription_key", "secret", "password", "client_secret",
        # pre-signed URLs (AWS SigV4), OAuth and session credentials
        "x_amz_signature", "x_amz_credential", "x_amz_security_token", "refresh_token", "id_token",
        "jwt", "bearer", "session", "session_token", "sessionid", "session_id",
    }
)  # fmt: skip

# Upstreams echo (masked) keys in error messages; query strings and bearer values carry them too.
_KEY_SHAPED = re.compile(r"sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{10,}")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_PARAM_NAMES = "|".join(
    sorted({n.replace("_", "[-_]") for n in CREDENTIAL_QUERY_PARAMS} | {"apiKey"}, key=len, reverse=True)
)
_KEY_IN_QUERY = re.compile(rf"([?&;](?:{_PARAM_NAMES})=)[^&#\s\"'<>]+", re.IGNORECASE)
# A credential in a URL's user information: scheme://user:password@host
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/?#@\s\"'<>]+@", re.IGNORECASE)


def is_credential_param(name: str) -> bool:
    """Whether a query parameter ``name`` (as written, possibly percent-encoded) names a credential."""
    return unquote_plus(name).strip().lower().replace("-", "_") in CREDENTIAL_QUERY_PARAMS


def _char_pattern(char: str) -> str:
    """``char`` as written, percent-encoded (each UTF-8 byte) or JSON-escaped (``\\uXXXX``, ``\\/``)."""
    forms = [re.escape(char)]
    encoded = char.encode("utf-8")
    forms.append("".join(f"%{byte:02x}" for byte in encoded))
    if len(char) == 1 and ord(char) < 0x10000:
        forms.append(f"\\\\u{ord(char):04x}")
    if char in '/"\\':
        forms.append("\\\\" + re.escape(char))
    return forms[0] if len(forms) == 1 else "(?:" + "|".join(forms) + ")"


def _base64_cores(secret: bytes) -> list[str]:
    """For each byte offset mod 3 at which ``secret`` may sit in a larger blob, the base64 text
    that only the secret's own bytes decide (whole 3-byte groups), as a pattern matching both
    alphabets. Padding never falls inside a core, so padded and unpadded forms both match."""
    cores = []
    for skip in range(3):
        usable = (len(secret) - skip) // 3 * 3
        if usable <= 0:
            continue
        core = base64.b64encode(secret[skip : skip + usable]).decode("ascii")
        if len(core) >= _MIN_BASE64_CORE:
            cores.append("".join({"+": "[+-]", "/": "[/_]"}.get(c, c) for c in core))
    return cores


@lru_cache(maxsize=64)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives: list[str] = []
    for secret in secrets:
        alternatives.append("".join(_char_pattern(c) for c in secret))
        alternatives.extend(_base64_cores(secret.encode("utf-8")))
    if not alternatives:
        return None
    # Longest first: a base64 core may contain the plain secret's shorter alternative, or the reverse.
    alternatives.sort(key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret (in any of its encodings) and every credential-shaped
    substring replaced."""
    known = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}))
    pattern = _secrets_pattern(known) if known else None
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _KEY_SHAPED.sub(REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _USERINFO.sub(r"\1", text)
    return _KEY_IN_QUERY.sub(r"\1" + REDACTED, text)


def redact_url(url: str) -> str:
    """``url`` as it may be shown (responses, reports, events, logs, the CLI): no user information,
    and the value of every credential-named query parameter replaced. Everything else is kept as
    written, so the URL still reads as the one the customer registered."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{name}={REDACTED}" if sep and is_credential_param(name) else f"{name}{sep}{value}"
        for name, sep, value in (piece.partition("=") for piece in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "", parts.fragment))
