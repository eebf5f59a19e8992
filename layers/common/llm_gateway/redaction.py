"""The one text redaction: known secrets and anything shaped like a credential become ``[REDACTED]``.

Used by the spec checks (evidence, messages), the conformance engine and the log formatter, so a key
is masked the same way wherever text about an upstream ends up. Pure ``re``: cheap to import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
#: A known secret shorter than this is not replaced (it would mask ordinary words); keys are longer.
MIN_SECRET_CHARS = 4

# Upstreams echo (masked) keys in error messages; query strings and bearer values carry them too.
_KEY_SHAPED = re.compile(r"sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{10,}")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_KEY_IN_QUERY = re.compile(r"([?&](?:key|api[-_]?key|token)=)[^&\s\"']+", re.IGNORECASE)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every credential-shaped substring replaced."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED)
    text = _KEY_SHAPED.sub(REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    return _KEY_IN_QUERY.sub(r"\1" + REDACTED, text)
