"""The usage plan as API Gateway applies it: a key must belong to the plan, then it spends tokens.

API Gateway throttles with a token bucket per API key: ``burst`` tokens at most, refilled at
``rate`` per second; a request without a token is a 429. The local front door keeps one bucket per
usage key the authorizer returns, with the limits of the template's usage plan.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate_per_second: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _updated: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._updated = self.clock()

    def take(self) -> float:
        """Spend a token: 0.0 when there was one, else the seconds until the next one."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate_per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        if self.rate_per_second <= 0:
            return math.inf
        return (1.0 - self._tokens) / self.rate_per_second


@dataclass(frozen=True)
class Refusal:
    """Which gateway response API Gateway would send, and when to retry (429 only)."""

    gateway_response: str
    retry_after_s: float | None = None


class UsagePlanGate:
    """One plan's membership check and per-key buckets."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        is_member: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_second, self.burst = rate_per_second, burst
        self._is_member = is_member
        self._clock = clock
        self._members: set[str] = set()
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, usage_key: str | None) -> Refusal | None:
        """``None`` when the request may go on; otherwise the refusal API Gateway would answer."""
        if not usage_key:
            return Refusal("INVALID_API_KEY")
        if usage_key not in self._members:
            if not self._is_member(usage_key):
                return Refusal("INVALID_API_KEY")
            self._members.add(usage_key)  # keys are never removed from a plan locally
        with self._lock:
            bucket = self._buckets.get(usage_key)
            if bucket is None:
                bucket = self._buckets[usage_key] = TokenBucket(self.rate_per_second, self.burst, self._clock)
            wait = bucket.take()
        return None if wait == 0.0 else Refusal("THROTTLED", wait)
