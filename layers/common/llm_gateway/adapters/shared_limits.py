"""What tenants share, rationed in the table: per-account slots and per-target request budgets.

**Slots.** An account holds at most ``slots`` validations (or webhook deliveries) at once, so one
account's slow endpoints cannot occupy every validator. Slot ``k`` is the item ``ACCOUNT#<id>`` /
``SLOT#<kind>#<k>`` with a lease id and ``until`` (epoch seconds): taking one is a conditional put
that succeeds when it is free or its lease ran out, so a slot whose holder died (a Lambda timeout)
frees itself at ``until``; giving it back deletes it if the lease is still ours.

**Target budgets.** Everything the gateway sends on a tenant's behalf outside live sessions
(tests, validations, re-validations, webhooks) draws on one budget per target and minute, shared
by every tenant: ``TARGET#<address>:<port>`` / ``MINUTE#<n>``, ``n`` incremented by the request
count under the condition that it stays within the limit. The target is the address the host
resolves to, so host names aliased to one server share its budget.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llm_gateway.adapters.table_keys import account_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW_S = 60


class DynamoAccountSlots:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        kind: str,
        slots: int,
        hold_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._table = client, table_name
        self.kind, self.slots, self.hold_s = kind, max(1, slots), hold_s
        self._clock = clock

    def _key(self, account_id: str, slot: int) -> dict[str, Any]:
        return {"PK": {"S": account_pk(account_id)}, "SK": {"S": f"SLOT#{self.kind}#{slot}"}}

    def acquire(self, account_id: str) -> str | None:
        """A lease token, or ``None`` when every slot of the account is taken."""
        now = self._clock()
        lease = uuid.uuid4().hex
        start = random.randrange(self.slots)
        for offset in range(self.slots):
            slot = (start + offset) % self.slots
            until = int(now + self.hold_s) + 1
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=self._key(account_id, slot)
                    | {
                        "kind": {"S": "slot"},
                        "lease": {"S": lease},
                        "until": {"N": str(until)},
                        "ttl": {"N": str(until + 3600)},
                    },
                    ConditionExpression="attribute_not_exists(PK) OR #until < :now",
                    ExpressionAttributeNames={"#until": "until"},
                    ExpressionAttributeValues={":now": {"N": str(int(now))}},
                )
            except self._db.exceptions.ConditionalCheckFailedException:
                continue
            return f"{slot}:{lease}"
        return None

    def release(self, account_id: str, token: str) -> None:
        slot, _, lease = token.partition(":")
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.delete_item(
                TableName=self._table,
                Key=self._key(account_id, int(slot)),
                ConditionExpression="lease = :lease",
                ExpressionAttributeValues={":lease": {"S": lease}},
            )


class DynamoTargetBudget:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._table = client, table_name
        self.per_minute = max(1, per_minute)
        self._clock = clock

    def take(self, target: str, requests: int) -> float | None:
        """Draw ``requests`` from ``target``'s budget: ``None`` when granted, else the seconds
        until the next window (nothing is drawn then)."""
        now = self._clock()
        window = int(now // WINDOW_S)
        cost = max(1, requests)
        if cost > self.per_minute:
            cost = self.per_minute  # one run larger than a whole window still runs, alone
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"PK": {"S": f"TARGET#{target}"}, "SK": {"S": f"MINUTE#{window}"}},
                UpdateExpression="ADD n :cost SET kind = :kind, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(n) OR n <= :room",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":cost": {"N": str(cost)},
                    ":room": {"N": str(self.per_minute - cost)},
                    ":kind": {"S": "target_budget"},
                    ":ttl": {"N": str((window + 2) * WINDOW_S)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return (window + 1) * WINDOW_S - now
        return None


class DynamoRevalidationMarks:
    """At most one scheduled re-validation queued per LLM: ``ACCOUNT#<id>`` / ``REVALIDATION#<llm>``
    holds ``until``; the scheduler enqueues an LLM only when it can claim the mark (none there, or
    expired: a message that died), and the validator clears it when the run is done or skipped.
    A schedule of seconds then re-validates each LLM as often as it can, never piling up runs."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._db, self._table = client, table_name
        self._clock = clock

    def _key(self, account_id: str, llm_id: str) -> dict[str, Any]:
        return {"PK": {"S": account_pk(account_id)}, "SK": {"S": f"REVALIDATION#{llm_id}"}}

    def claim(self, account_id: str, llm_id: str, hold_s: float) -> bool:
        now = self._clock()
        until = int(now + hold_s) + 1
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._key(account_id, llm_id)
                | {
                    "kind": {"S": "revalidation_mark"},
                    "until": {"N": str(until)},
                    "ttl": {"N": str(until + 3600)},
                },
                ConditionExpression="attribute_not_exists(PK) OR #until < :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def clear(self, account_id: str, llm_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=self._key(account_id, llm_id))
