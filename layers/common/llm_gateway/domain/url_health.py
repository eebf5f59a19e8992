"""What a container knows about each upstream URL: a breaker, its speed, and its hedge delay.

- **Breaker**: ``FAILURES_TO_OPEN`` failed attempts in a row open it for a cool-down (5 s, doubled
  on each re-open up to 60 s). An open URL goes last (still tried when every other URL failed).
  After the cool-down it is half-open: it takes its place in the ranking again, so the next
  request tries it; an answer closes it, a failure opens it again for longer.
- **Ranking**: by recent time to first output (EWMA); a URL overtakes an earlier-registered one
  only when it is clearly faster (by 50 ms and 25 %), so near-ties keep the registered order and
  a recovered first URL gets its traffic back. Measurements older than ``STALE_S`` are forgotten:
  a URL that lost hedge races is measured again rather than demoted for ever.
- **Hedge delay**: the URL's p95 time to first output times ``HEDGE_FACTOR``, within
  ``HEDGE_MIN_S``..``HEDGE_MAX_S``; ``HEDGE_DEFAULT_S`` before anything was measured.

What one container learns reaches the others through the shared breaker view (``shared_view`` /
``merge_shared``: URL key -> open-until epoch seconds), which the stream reads with the request's
freshness read and writes when a breaker opens or closes.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from llm_gateway.domain.streaming import AttemptRecord

FAILURES_TO_OPEN = 2
COOL_DOWN_S = 5.0
MAX_COOL_DOWN_S = 60.0
STALE_S = 30.0
EWMA_ALPHA = 0.3
TIE_ABS_S = 0.05
TIE_REL = 0.25
#: The hedge fires at p95 x 1.5 of the URL's own first-output times, kept within [0.5 s, 5 s]:
#: below 0.5 s a hedge would fire on ordinary jitter and double the upstream's load; above 5 s a
#: voice caller has heard too long a silence for the hedge to rescue the turn.
HEDGE_FACTOR = 1.5
HEDGE_MIN_S = 0.5
HEDGE_MAX_S = 5.0
HEDGE_DEFAULT_S = 2.0
SAMPLES = 50
MAX_URLS = 4096


def url_key(url: str) -> str:
    """A short stable name for a URL in the shared view (the URL itself stays in the config)."""
    return hashlib.blake2b(url.encode(), digest_size=6).hexdigest()


@dataclass
class UrlState:
    ewma_s: float | None = None
    measured_at: float = 0.0
    failures: int = 0
    open_until: float = 0.0
    cool_down_s: float = COOL_DOWN_S
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    #: The breaker moved (opened or closed) since the last ``take_changes``: share it.
    changed: bool = False

    def p95(self) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class UrlBoard:
    """Per container (all its streams): one ``UrlState`` per URL. Times are monotonic seconds,
    except the shared view's (epoch seconds, comparable across containers)."""

    _urls: dict[str, UrlState] = field(default_factory=dict)

    def state(self, url: str) -> UrlState:
        found = self._urls.get(url)
        if found is None:
            if len(self._urls) >= MAX_URLS:
                self._urls.pop(next(iter(self._urls)))
            found = self._urls[url] = UrlState()
        return found

    def is_open(self, url: str, now: float) -> bool:
        found = self._urls.get(url)
        return found is not None and found.open_until > now

    def observe(self, url: str, record: AttemptRecord, now: float) -> None:
        """One finished attempt: a failure counts towards the breaker; an answer closes it and is a
        speed sample; a lost hedge race is a (lower-bound) speed sample only."""
        state = self.state(url)
        if record.code is not None:
            state.failures += 1
            if state.failures >= FAILURES_TO_OPEN:
                reopened = state.open_until > 0.0
                state.cool_down_s = min(MAX_COOL_DOWN_S, state.cool_down_s * 2) if reopened else COOL_DOWN_S
                state.open_until = now + state.cool_down_s
                state.changed = True
            return
        sample = record.ttft_s if record.ttft_s is not None else now - record.started
        if record.ttft_s is not None:
            state.samples.append(sample)
            if state.open_until or state.failures:
                state.changed = state.open_until > 0.0
                state.failures, state.open_until, state.cool_down_s = 0, 0.0, COOL_DOWN_S
        stale = state.ewma_s is None or now - state.measured_at > STALE_S
        state.ewma_s = sample if stale else state.ewma_s + EWMA_ALPHA * (sample - state.ewma_s)  # type: ignore[operator]
        state.measured_at = now

    def order(self, urls: list[str], now: float) -> list[str]:
        """Closed and half-open URLs by speed (near-ties in registered order), then open ones."""
        usable = [u for u in urls if not self.is_open(u, now)]
        ranked: list[str] = []
        for url in usable:
            position = len(ranked)
            while position and self._clearly_faster(url, ranked[position - 1], now):
                position -= 1
            ranked.insert(position, url)
        return ranked + [u for u in urls if self.is_open(u, now)]

    def _speed(self, url: str, now: float) -> float | None:
        found = self._urls.get(url)
        if found is None or found.ewma_s is None or now - found.measured_at > STALE_S:
            return None
        return found.ewma_s

    def _clearly_faster(self, url: str, other: str, now: float) -> bool:
        mine, theirs = self._speed(url, now), self._speed(other, now)
        if mine is None or theirs is None:
            return False  # unmeasured: neither jumps nor is jumped over
        return mine + max(TIE_ABS_S, TIE_REL * theirs) < theirs

    def hedge_delay_s(self, url: str, configured_ms: int | None) -> float | None:
        """Seconds without output before hedging an attempt on ``url``; None: never."""
        if configured_ms is not None:
            return configured_ms / 1000 if configured_ms > 0 else None
        found = self._urls.get(url)
        p95 = found.p95() if found is not None else None
        if p95 is None:
            return HEDGE_DEFAULT_S
        return min(HEDGE_MAX_S, max(HEDGE_MIN_S, p95 * HEDGE_FACTOR))

    # -- what containers share

    def shared_view(self, urls: list[str], now: float, epoch_now: float) -> dict[str, float]:
        """Open-until (epoch seconds) of the open breakers among ``urls``."""
        return {
            url_key(u): round(epoch_now + (self._urls[u].open_until - now), 3)
            for u in urls
            if self.is_open(u, now)
        }

    def take_changes(self, urls: list[str]) -> bool:
        """Whether a breaker of ``urls`` moved since the last call (then the view is written)."""
        moved = False
        for url in urls:
            found = self._urls.get(url)
            if found is not None and found.changed:
                found.changed, moved = False, True
        return moved

    def merge_shared(self, urls: list[str], view: Mapping[str, float], now: float, epoch_now: float) -> None:
        """Open the breakers another container opened (never closes one this container opened:
        an answer here closes it)."""
        for url in urls:
            until_epoch = view.get(url_key(url))
            if until_epoch is None or until_epoch <= epoch_now:
                continue
            state = self.state(url)
            until = now + (until_epoch - epoch_now)
            if until > state.open_until:
                state.open_until = until
                state.failures = max(state.failures, FAILURES_TO_OPEN)
