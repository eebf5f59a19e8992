"""Per-account limits: each account's usage-plan key, and the token bucket the local front door applies."""

from __future__ import annotations

import re

from llm_gateway.domain.accounts import create_account
from llm_gateway.domain.usage_plans import enroll_account, usage_key_value
from llm_gateway_local.template import Throttle, UsagePlanLimits
from llm_gateway_local.usage_plan import TokenBucket, UsagePlanGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_usage_key_is_a_valid_api_gateway_key_value_and_stable_per_account() -> None:
    value = usage_key_value("acct_0123456789abcdef0123")
    assert re.fullmatch(r"[A-Za-z0-9]{20,128}", value), "API Gateway key values are 20-128 alphanumerics"
    assert value == usage_key_value("acct_0123456789abcdef0123")
    assert value != usage_key_value("acct_0123456789abcdef0124")


class RecordingPlans:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.plan_keys: list[tuple[str, str]] = []

    def create_key(self, name: str, value: str, account_id: str) -> str:
        key_id = f"key{len(self.keys)}"
        self.keys[key_id] = value
        return key_id

    def add_to_plan(self, usage_plan_id: str, key_id: str) -> None:
        self.plan_keys.append((usage_plan_id, key_id))


class RecordingStore:
    def __init__(self) -> None:
        self.saved: list[tuple[str, str, str]] = []

    def save_usage_key(self, account_id: str, usage_plan_id: str, key_id: str) -> None:
        self.saved.append((account_id, usage_plan_id, key_id))


def test_enrolling_creates_the_key_the_authorizer_returns_and_puts_it_in_the_plan() -> None:
    plans, store = RecordingPlans(), RecordingStore()
    enrolled = enroll_account(plans, store, "acct_1", "plan9")
    assert plans.keys[enrolled.key_id] == usage_key_value("acct_1")
    assert plans.plan_keys == [("plan9", enrolled.key_id)]
    assert store.saved == [("acct_1", "plan9", enrolled.key_id)]


class NoAccounts:
    def create(self, *args: object) -> None:
        pass

    def account_for_key_hash(self, key_hash: str) -> str | None:
        return None


def test_account_ids_start_with_acct_underscore() -> None:
    """The IAM scope of tenant secrets (llm-gateway/<stage>/acct_*) relies on this prefix."""
    assert create_account(NoAccounts(), "x").account_id.startswith("acct_")


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == 0.5  # one token comes every 0.5 s
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 10
    assert [bucket.take() for _ in range(4)][-1] > 0, "never more than the burst, however long the pause"


def test_gate_refuses_keys_outside_the_plan_and_throttles_each_key_on_its_own() -> None:
    clock = FakeClock()
    gate = UsagePlanGate(UsagePlanLimits("Plan", Throttle(1.0, 1)), lambda key: key in {"a", "b"}, clock)
    for key in (None, "stranger"):
        refused = gate.admit(key)
        assert refused is not None and refused.gateway_response == "INVALID_API_KEY", key
    assert gate.admit("a") is None
    throttled = gate.admit("a")
    assert throttled is not None and throttled.gateway_response == "THROTTLED"
    assert throttled.retry_after_s == 1.0
    assert gate.admit("b") is None, "another account's bucket is untouched"


def test_a_method_the_plan_throttles_on_its_own_has_its_own_bucket_per_account() -> None:
    mint = "/v1/auth/session-token/POST"
    limits = UsagePlanLimits("Plan", Throttle(1.0, 1), {mint: Throttle(1.0, 3)})
    gate = UsagePlanGate(limits, lambda key: True, FakeClock())
    assert gate.admit("a", "/v1/llms/GET") is None
    assert gate.admit("a", "/v1/llms/GET") is not None, "management: burst 1"
    assert [gate.admit("a", mint) for _ in range(3)] == [None] * 3, "minting: burst 3, its own bucket"
    assert gate.admit("a", mint) is not None
