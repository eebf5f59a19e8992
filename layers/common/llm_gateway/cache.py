"""The one TTL cache for per-container lookups (sessions, keys), safe across threads.

Entries expire ``ttl_seconds`` after they were stored; a ``ttl_seconds`` of 0 turns the cache off.
When full, expired entries are dropped first, then everything (a cache, never a store).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self, ttl_seconds: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl, self._max, self._clock = ttl_seconds, max_entries, clock
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def peek(self, key: K) -> V | None:
        """A fresh cached value, or ``None``; never loads."""
        if not self.enabled:
            return None
        with self._lock:
            hit = self._items.get(key)
        return hit[1] if hit is not None and hit[0] > self._clock() else None

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        now = self._clock()
        if self.enabled:
            with self._lock:
                hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        self._store(key, value, now)
        return value

    def put(self, key: K, value: V) -> None:
        self._store(key, value, self._clock())

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _store(self, key: K, value: V, now: float) -> None:
        if not self.enabled:
            return
        with self._lock:
            if len(self._items) >= self._max:
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
                if len(self._items) >= self._max:
                    self._items.clear()
            self._items[key] = (now + self._ttl, value)
