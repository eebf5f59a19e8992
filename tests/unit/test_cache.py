"""The one TTL cache (sessions and keys): expiry, explicit puts and drops, the off switch, the bound."""

from __future__ import annotations

from llm_gateway.cache import TtlCache


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_until_its_ttl_then_loaded_again() -> None:
    ticks, loads = Ticks(), []
    cache: TtlCache[str, int] = TtlCache(5.0, clock=ticks)

    def load() -> int:
        loads.append(ticks.now)
        return len(loads)

    assert cache.get_or_load("k", load) == 1
    ticks.now += 4.9
    assert (cache.get_or_load("k", load), cache.peek("k")) == (1, 1)
    ticks.now += 0.1
    assert cache.peek("k") is None
    assert cache.get_or_load("k", load) == 2


def test_put_and_discard() -> None:
    cache: TtlCache[str, str] = TtlCache(5.0, clock=Ticks())
    cache.put("a", "x")
    assert cache.peek("a") == "x"
    cache.discard("a")
    cache.discard("never-there")
    assert cache.peek("a") is None


def test_a_zero_ttl_caches_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(0, clock=Ticks())
    cache.put("a", 1)
    assert cache.peek("a") is None
    assert [cache.get_or_load("b", lambda: 2), cache.get_or_load("b", lambda: 3)] == [2, 3]


def test_a_full_cache_drops_expired_entries_first_then_everything() -> None:
    ticks = Ticks()
    cache: TtlCache[int, int] = TtlCache(5.0, max_entries=3, clock=ticks)
    cache.put(1, 1)
    ticks.now += 10  # 1 expired
    cache.put(2, 2)
    cache.put(3, 3)
    cache.put(4, 4)  # full: the expired entry goes, the fresh ones stay
    assert [cache.peek(k) for k in (2, 3, 4)] == [2, 3, 4]
    cache.put(5, 5)  # full of fresh entries: start over
    assert [cache.peek(k) for k in (2, 3, 4, 5)] == [None, None, None, 5]


# -- BoundedMap and SingleFlight (the stream's memory) ----------------------------------------------


def test_a_bounded_map_drops_expired_entries_then_the_older_half() -> None:
    from llm_gateway.cache import BoundedMap

    ticks = Ticks()
    memo: BoundedMap[int, str] = BoundedMap(4, clock=ticks)
    memo.put(1, "a", expires_at=ticks.now + 1)
    memo.put(2, "b")
    assert memo.get(1) == "a"
    ticks.now += 1
    assert memo.get(1) is None and memo.get(2) == "b"
    for k in range(3, 8):
        memo.put(k, str(k))
    assert len(memo) <= 4 and memo.get(7) == "7"


def test_concurrent_loads_of_one_key_share_one_call_and_a_cancelled_caller_does_not_stop_it() -> None:
    import asyncio
    import threading
    import time

    from llm_gateway.cache import SingleFlight

    calls: list[int] = []
    release = threading.Event()

    def load() -> int:
        calls.append(1)
        assert release.wait(5)
        return 42

    async def run() -> list[tuple[int, bool]]:
        flights: SingleFlight[str, int] = SingleFlight()
        first = asyncio.create_task(flights.load("k", load))
        await asyncio.sleep(0)
        others = [asyncio.create_task(flights.load("k", load)) for _ in range(3)]
        await asyncio.sleep(0)
        first.cancel()  # the request that started the read went away
        release.set()
        shared = await asyncio.gather(*others)
        # A caller that needs a read begun after now never joins an older one.
        later = await flights.load("k", load, started_after=time.monotonic())
        return [*shared, later]

    results = asyncio.run(run())
    assert results[:3] == [(42, False)] * 3
    assert results[3] == (42, True) and len(calls) == 2
