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
from typing import TYPE_CHECKING, Any

from llm_gateway_local.template import Resolver, UsagePlanLimits, usage_plan_limits

if TYPE_CHECKING:
    from llm_gateway.adapters.aws import AwsClients


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
    """One plan's membership check and per-key (and per-method, where the plan says so) buckets."""

    def __init__(
        self,
        limits: UsagePlanLimits,
        is_member: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._is_member = is_member
        self._clock = clock
        self._members: set[str] = set()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, usage_key: str | None, method: str = "") -> Refusal | None:
        """``None`` when the request may go on; otherwise the refusal API Gateway would answer.

        ``method`` is ``"/path/METHOD"``: a method the plan throttles on its own has its own bucket.
        """
        if not usage_key:
            return Refusal("INVALID_API_KEY")
        if usage_key not in self._members:
            if not self._is_member(usage_key):
                return Refusal("INVALID_API_KEY")
            self._members.add(usage_key)  # keys are never removed from a plan locally
        throttle = self.limits.methods.get(method)
        slot = (usage_key, method if throttle else "")
        throttle = throttle or self.limits.default
        with self._lock:
            bucket = self._buckets.get(slot)
            if bucket is None:
                bucket = TokenBucket(throttle.rate_per_second, throttle.burst, self._clock)
                self._buckets[slot] = bucket
            wait = bucket.take()
        return None if wait == 0.0 else Refusal("THROTTLED", wait)


def usage_plan_gate(
    template: dict[str, Any], resolver: Resolver, aws: AwsClients | None
) -> UsagePlanGate | None:
    """The template's usage plan as the front door enforces it: members are the plan's keys in moto."""
    from llm_gateway.adapters.aws import AwsClients

    limits = usage_plan_limits(template, resolver)
    if limits is None:
        return None
    plan_id = resolver.lookup(limits.logical_id)
    apigateway = (aws or AwsClients()).apigateway()

    def is_member(usage_key: str) -> bool:
        pages = apigateway.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan_id)
        return any(item.get("value") == usage_key for page in pages for item in page.get("items", []))

    return UsagePlanGate(limits, is_member)


def enroll(aws: AwsClients, table_name: str, account_id: str, usage_plan_id: str) -> None:
    """The account's own throttle: its key in the stage's usage plan (``accounts create`` too)."""
    from llm_gateway.adapters.dynamodb import DynamoUsageKeyRepository
    from llm_gateway.adapters.usage_plans import ApiGatewayUsagePlans
    from llm_gateway.domain.usage_plans import enroll_account

    keys = DynamoUsageKeyRepository(aws.dynamodb(), table_name)
    enroll_account(ApiGatewayUsagePlans(aws.apigateway()), keys, account_id, usage_plan_id)
