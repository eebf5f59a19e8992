"""What one tenant may take of what every tenant shares, and what the gateway sends anyone's way.

- **Per-account slots**: an account runs at most a few validations (and webhook deliveries) at a
  time, whatever its backlog; a queued run that finds its account's slots taken is *deferred* (put
  back on its queue with a delay), so the validators go to the other accounts meanwhile.
- **Per-target budgets**: tests, validations, re-validations and webhooks, everything sent on a
  tenant's behalf outside live sessions, draw on one request budget per target host (the address
  it resolves to) and minute, shared by every tenant. ``POST /v1/llms/test`` answers 429
  ``target_rate_limited`` with ``Retry-After``; queued work is deferred until the next window.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from llm_gateway.errors import TargetRateLimited

#: A full conformance run sends two requests per URL (the key, then a wrong key); a light one one.
FULL_RUN_REQUESTS_PER_URL = 2
LIGHT_RUN_REQUESTS_PER_URL = 1
#: A message deferred because its account's slots were taken comes back after 2 s, then 4, 8, …
#: (plus jitter) up to 5 minutes: a burst of an account's own runs waits a moment, while a flood
#: of slow ones costs a few receives each, not a stream of them.
FIRST_DEFER_S = 2.0
MAX_DEFER_S = 300.0


class Slots(Protocol):
    def acquire(self, account_id: str) -> str | None: ...
    def release(self, account_id: str, token: str) -> None: ...


class TargetBudget(Protocol):
    def take(self, target: str, requests: int) -> float | None:
        """``None`` when granted; else seconds until there is room again."""
        ...


class Deferred(Exception):
    """This message must wait: put it back on its queue, delayed at least ``delay_s`` seconds
    (0: the slot backoff alone decides, from how often the message was deferred before)."""

    def __init__(self, delay_s: float, why: str) -> None:
        super().__init__(why)
        self.delay_s = delay_s


def defer_delay(base_s: float, jitter: Callable[[], float] = random.random) -> float:
    """The base delay, +0..50 %, so deferred messages of one account do not return together."""
    return base_s * (1 + 0.5 * jitter())


def slot_backoff(deferrals: int, jitter: Callable[[], float] = random.random) -> float:
    """How long a message deferred ``deferrals`` times before waits now."""
    return defer_delay(min(MAX_DEFER_S, FIRST_DEFER_S * 2 ** min(deferrals, 16)), jitter)


@contextmanager
def account_slot(slots: Slots | None, account_id: str, what: str) -> Iterator[None]:
    """Hold one of the account's slots for the block; ``Deferred`` when all are taken."""
    if slots is None:
        yield
        return
    token = slots.acquire(account_id)
    if token is None:
        raise Deferred(0.0, f"the account already runs its most {what} at once")
    try:
        yield
    finally:
        slots.release(account_id, token)


@dataclass
class OutboundLimits:
    """Admits a batch of requests to their targets, or refuses it with when to try again."""

    budget: TargetBudget
    #: The target a URL reaches (its host's first checked address), ``None`` when it cannot be told
    #: (no address: the run itself then reports the host as unresolvable, sending nothing).
    target_of: Callable[[str], str | None]
    per_minute: int

    def admit(self, urls: Sequence[str], requests_per_url: int) -> None:
        """Raises ``TargetRateLimited`` when some target has no room for its share of the batch."""
        costs: Counter[str] = Counter()
        hosts: dict[str, str] = {}
        for url in urls:
            target = self.target_of(url)
            if target is not None:
                costs[target] += requests_per_url
                hosts.setdefault(target, urlsplit(url).hostname or target)
        for target, cost in costs.items():
            wait = self.budget.take(target, cost)
            if wait is not None:
                raise TargetRateLimited(hosts[target], wait, self.per_minute)

    def admit_or_defer(self, urls: Sequence[str], requests_per_url: int) -> None:
        """``admit`` for queued work: a refusal becomes ``Deferred`` until the target has room."""
        try:
            self.admit(urls, requests_per_url)
        except TargetRateLimited as exc:
            raise Deferred(exc.retry_after_s + defer_delay(1.0), exc.message) from None
