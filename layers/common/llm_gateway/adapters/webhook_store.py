"""Webhooks in the single table: ``ACCOUNT#<id>`` / ``WEBHOOK#<webhookId>``, the public fields as
``doc`` JSON plus the secret's reference; the secret itself lives in Secrets Manager."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llm_gateway.adapters.counted_items import delete_counted, put_counted
from llm_gateway.models.webhook import StoredWebhook

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _key(account_id: str, webhook_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": f"WEBHOOK#{webhook_id}"}}


def _stored(item: dict[str, Any]) -> StoredWebhook:
    fields = json.loads(item["doc"]["S"])
    if "enabled" in item:
        fields["enabled"] = item["enabled"]["BOOL"]
    if "disabledReason" in item:
        fields["disabledReason"] = item["disabledReason"]["S"]
    fields["consecutiveTimeouts"] = int(item.get("timeouts", {}).get("N", "0"))
    return StoredWebhook.model_validate(fields)


class DynamoWebhookRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def add(self, webhook: StoredWebhook, limit: int) -> None:
        """Put and count in one transaction: ``LimitReached`` when the account has ``limit``."""
        item = {
            **_key(webhook.account_id, webhook.id),
            "kind": {"S": "webhook"},
            "doc": {"S": webhook.model_dump_json(by_alias=True)},
        }
        put_counted(self._db, self._table, item, webhook.account_id, "WEBHOOK", limit)

    def list(self, account_id: str) -> list[StoredWebhook]:
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"ACCOUNT#{account_id}"}, ":prefix": {"S": "WEBHOOK#"}},
            ConsistentRead=True,
        ).get("Items", [])
        return [_stored(item) for item in items]

    def get(self, account_id: str, webhook_id: str) -> StoredWebhook | None:
        item = self._db.get_item(
            TableName=self._table, Key=_key(account_id, webhook_id), ConsistentRead=True
        ).get("Item")
        return _stored(item) if item else None

    def delete(self, account_id: str, webhook_id: str) -> bool:
        return delete_counted(self._db, self._table, _key(account_id, webhook_id), account_id, "WEBHOOK")

    def note_timeout(self, account_id: str, webhook_id: str) -> int:
        """One more delivery in a row without a complete answer; how many there are now."""
        try:
            updated = self._db.update_item(
                TableName=self._table,
                Key=_key(account_id, webhook_id),
                UpdateExpression="ADD timeouts :one",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return 0  # deleted meanwhile
        return int(updated["Attributes"]["timeouts"]["N"])

    def clear_timeouts(self, account_id: str, webhook_id: str) -> None:
        self._db.update_item(
            TableName=self._table, Key=_key(account_id, webhook_id), UpdateExpression="REMOVE timeouts"
        )

    def disable(self, account_id: str, webhook_id: str, reason: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(account_id, webhook_id),
                UpdateExpression="SET enabled = :false, disabledReason = :reason",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":false": {"BOOL": False}, ":reason": {"S": reason}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return  # deleted meanwhile
