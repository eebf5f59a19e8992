"""domain.fairness with fakes: slots defer, budgets count per target and refuse with a wait."""

from __future__ import annotations

import pytest

from llm_gateway.domain.fairness import Deferred, OutboundLimits, account_slot, slot_backoff
from llm_gateway.errors import TargetRateLimited


class Slots:
    def __init__(self, free: int) -> None:
        self.free, self.released = free, 0

    def acquire(self, account_id: str) -> str | None:
        if self.free == 0:
            return None
        self.free -= 1
        return "token"

    def release(self, account_id: str, token: str) -> None:
        self.free += 1
        self.released += 1


class Budget:
    def __init__(self, room: int) -> None:
        self.room, self.taken = room, []  # type: ignore[var-annotated]

    def take(self, target: str, requests: int) -> float | None:
        if requests > self.room:
            return 42.0
        self.room -= requests
        self.taken.append((target, requests))
        return None


def test_a_slot_is_held_for_the_block_and_given_back_even_on_error() -> None:
    slots = Slots(free=1)
    with pytest.raises(RuntimeError), account_slot(slots, "acct", "validations"):
        assert slots.free == 0
        raise RuntimeError
    assert (slots.free, slots.released) == (1, 1)


def test_no_free_slot_defers_and_each_deferral_waits_longer() -> None:
    with pytest.raises(Deferred) as caught, account_slot(Slots(free=0), "acct", "validations"):
        pytest.fail("must not run")
    assert caught.value.delay_s == 0, "the slot backoff decides"
    waits = [slot_backoff(n, jitter=lambda: 0.0) for n in range(12)]
    assert waits[:4] == [2.0, 4.0, 8.0, 16.0] and waits[-1] == 300.0
    assert slot_backoff(0, jitter=lambda: 1.0) == 3.0


def test_urls_on_one_target_are_counted_together_and_unresolvable_ones_not_at_all() -> None:
    budget = Budget(room=100)
    targets = {"https://a.example/v1": "1.2.3.4:443", "https://alias.example/v1": "1.2.3.4:443"}
    limits = OutboundLimits(budget=budget, target_of=targets.get, per_minute=100)
    limits.admit([*targets, "https://nowhere.example/v1"], 2)
    assert budget.taken == [("1.2.3.4:443", 4)]


def test_a_target_without_room_is_a_429_for_callers_and_a_deferral_for_queued_work() -> None:
    limits = OutboundLimits(budget=Budget(room=1), target_of=lambda url: "1.2.3.4:443", per_minute=1)
    with pytest.raises(TargetRateLimited) as caught:
        limits.admit(["https://a.example/v1"], 2)
    assert (caught.value.status, caught.value.retry_after_s) == (429, 42.0)
    assert "a.example" in caught.value.message
    with pytest.raises(Deferred) as deferred:
        limits.admit_or_defer(["https://a.example/v1"], 2)
    assert deferred.value.delay_s >= 42.0
