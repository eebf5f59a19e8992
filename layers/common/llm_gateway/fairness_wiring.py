"""The adapters of ``domain.fairness``, built once per container from a function's services:
per-account slots, per-target request budgets, re-validation marks and deferrals."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_gateway.adapters.aws import AwsClients
    from llm_gateway.adapters.queues import SqsDeferrals
    from llm_gateway.adapters.shared_limits import DynamoAccountSlots, DynamoRevalidationMarks
    from llm_gateway.domain.fairness import OutboundLimits
    from llm_gateway.domain.ports import UrlGuard

#: A validation slot's lease outlives any holder: the validator's Lambda timeout (template, 90 s).
VALIDATION_SLOT_HOLD_S = 95.0


def target_of(guard: UrlGuard) -> Callable[[str], str | None]:
    """The first checked address a URL's host resolves to, and the port: the key of its request
    budget (names aliased to one server share it; other ports of one address are other services)."""
    from llm_gateway.errors import EndpointBlocked

    def target(url: str) -> str | None:
        try:
            resolved = guard.check_url(url)  # type: ignore[attr-defined]
        except EndpointBlocked:
            return None
        address = str(resolved.addresses[0]) if resolved.addresses else str(resolved.host)
        return f"[{address}]:{resolved.port}" if ":" in address else f"{address}:{resolved.port}"

    return target


class Fairness:
    def __init__(
        self, aws: AwsClients, table_name: str, guard: UrlGuard, *, per_minute: int, account_slots: int
    ) -> None:
        self.aws, self.table_name, self.guard = aws, table_name, guard
        self.per_minute, self.account_slots = per_minute, account_slots

    def slots(self, kind: str, hold_s: float) -> DynamoAccountSlots:
        from llm_gateway.adapters.shared_limits import DynamoAccountSlots

        return DynamoAccountSlots(self.aws.dynamodb(), self.table_name, kind, self.account_slots, hold_s)

    @cached_property
    def validation_slots(self) -> DynamoAccountSlots:
        return self.slots("VALIDATION", VALIDATION_SLOT_HOLD_S)

    @cached_property
    def revalidation_slots(self) -> DynamoAccountSlots:
        """Scheduled runs have slots of their own: an account's slow re-validations never hold up
        its registrations and key rotations."""
        return self.slots("REVALIDATION", VALIDATION_SLOT_HOLD_S)

    @cached_property
    def outbound_limits(self) -> OutboundLimits:
        from llm_gateway.adapters.shared_limits import DynamoTargetBudget
        from llm_gateway.domain.fairness import OutboundLimits

        budget = DynamoTargetBudget(self.aws.dynamodb(), self.table_name, self.per_minute)
        return OutboundLimits(budget=budget, target_of=target_of(self.guard), per_minute=self.per_minute)

    @cached_property
    def revalidation_marks(self) -> DynamoRevalidationMarks:
        from llm_gateway.adapters.shared_limits import DynamoRevalidationMarks

        return DynamoRevalidationMarks(self.aws.dynamodb(), self.table_name)

    @cached_property
    def deferrals(self) -> SqsDeferrals:
        from llm_gateway.adapters.queues import SqsDeferrals

        return SqsDeferrals(self.aws.sqs())
