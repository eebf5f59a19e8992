"""Session-token verification remembered per token until the token expires.

A session sends its token with every answer it asks for, and each answer used to pay for a full
ES256 verification (~90-270 µs of CPU) although nothing about the token can change: its signature,
issuer, audience and times are what they were a second ago. Only its *expiry* moves, and that is
checked again on every use. Revocation is not a property of the token: it stays exact through the
per-request freshness read of the session (``SessionAccess``), which this does not touch. Only
genuine tokens are remembered (a failure is verified again next time, and raises again).

One instance per container, shared by its concurrent streams: plain dict operations on one event
loop, with a bound on the entries so a flood of distinct tokens cannot grow memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llm_gateway.domain.tokens import SessionClaims

__all__ = ["RememberedVerifications"]

#: Enough for every session one environment serves at once, many times over (~300 B each).
DEFAULT_MAX_TOKENS = 10_000


class RememberedVerifications:
    """``verify`` as ``TokenVerifier.verify`` does it, from memory for a token already verified.

    A key that is taken out of the key set keeps verifying the tokens already remembered until
    they expire (at most the maximum token lifetime); tokens it signed later are refused.
    """

    __slots__ = ("_claims", "_clock", "_max", "_verify")

    def __init__(
        self,
        verify: Callable[[str], SessionClaims],
        *,
        clock: Callable[[], float] = time.time,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self._verify = verify
        self._clock = clock
        self._max = max_tokens
        self._claims: dict[str, SessionClaims] = {}

    def verify(self, token: str) -> SessionClaims:
        """Remembered until ``exp``; past it (within the verifier's leeway, or not) every use is a
        full verification again, so the answer is always the verifier's."""
        claims = self._claims.get(token)
        if claims is not None:
            if self._clock() < claims.expires_at:
                return claims
            del self._claims[token]
        claims = self._verify(token)
        if self._clock() < claims.expires_at:
            if len(self._claims) >= self._max:
                self._drop_expired_or_oldest()
            self._claims[token] = claims
        return claims

    def __len__(self) -> int:
        return len(self._claims)

    def _drop_expired_or_oldest(self) -> None:
        now = self._clock()
        expired = [t for t, c in self._claims.items() if now >= c.expires_at]
        for token in expired:
            del self._claims[token]
        if len(self._claims) >= self._max:
            del self._claims[next(iter(self._claims))]  # the oldest remembered
