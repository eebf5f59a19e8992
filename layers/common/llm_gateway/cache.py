"""Per-container memory: a TTL cache (platform keys), a bounded memo, and single-flight loads.

``TtlCache``: entries expire ``ttl_seconds`` after they were stored; 0 turns the cache off. When
full, expired entries are dropped first, then everything (a cache, never a store). Safe across
threads. ``BoundedMap`` and ``SingleFlight`` belong to the event loop thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

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


class BoundedMap(Generic[K, V]):
    """A per-container memo used from the event loop thread only: bounded, entries may expire.

    Correctness never depends on it: what it holds is either immutable (a session record, an LLM
    config at one revision) or confirmed by a fresh read on every request.
    """

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self._max, self._clock = max_entries, clock
        self._items: dict[K, tuple[float | None, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        expires_at, value = hit
        if expires_at is not None and expires_at <= self._clock():
            del self._items[key]
            return None
        return value

    def put(self, key: K, value: V, expires_at: float | None = None) -> None:
        if key not in self._items and len(self._items) >= self._max:
            now = self._clock()
            self._items = {k: v for k, v in self._items.items() if v[0] is None or v[0] > now}
            if len(self._items) >= self._max:  # still full: drop the older half (insertion order)
                self._items = dict(list(self._items.items())[self._max // 2 :])
        self._items[key] = (expires_at, value)

    def discard(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class SingleFlight(Generic[K, V]):
    """Concurrent loads of one key share one call, run in a worker thread (off the event loop).

    ``load`` returns the value and whether this caller started the call. A caller that goes away
    (a client disconnect cancels its request) never cancels the call for the others. With
    ``started_after``, a call begun before that moment (``time.monotonic``) is not joined: a new
    one starts, for callers that need a read that saw every write completed by then.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._flights: dict[K, tuple[float, asyncio.Task[V]]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def start(
        self, key: K, load: Callable[[], V], *, started_after: float | None = None
    ) -> tuple[Awaitable[V], bool]:
        """Join the call in flight for ``key`` or start one; returns what to await and whether this
        caller started it (decided at once, so a caller knows before awaiting)."""
        flight = self._flights.get(key)
        led = flight is None or (started_after is not None and flight[0] < started_after)
        if led:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(load))
            flight = (self._clock(), task)
            self._flights[key] = flight
            task.add_done_callback(lambda done: self._land(key, done))
        assert flight is not None
        waiter = asyncio.shield(flight[1])
        waiter.add_done_callback(retrieved)  # a caller that gave up on it logs no warning
        return waiter, led

    async def load(
        self, key: K, load: Callable[[], V], *, started_after: float | None = None
    ) -> tuple[V, bool]:
        waiter, led = self.start(key, load, started_after=started_after)
        return await waiter, led

    def _land(self, key: K, task: asyncio.Task[V]) -> None:
        current = self._flights.get(key)
        if current is not None and current[1] is task:
            del self._flights[key]
        retrieved(task)


def retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's failure as seen (awaiting it still raises): an abandoned read that
    failed is not an "exception was never retrieved" warning."""
    if not future.cancelled():
        future.exception()
