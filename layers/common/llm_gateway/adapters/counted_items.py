"""Per-account limits that hold under concurrency: an item and its account's counter change in
one transaction, the counter under a condition (the pattern of API keys' ``keyCount``).

A count is ``ACCOUNT#<id>`` / ``COUNT#<what>`` with attribute ``n``. Check-then-insert (list,
compare, put) lets two concurrent creates both see 9 of 10 and both insert; here the second
transaction's condition fails and nothing is written.

Items created before the counter existed are not counted: a delete of such an item finds the
counter at 0 (or absent) and deletes the item alone, so the counter never goes negative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_gateway.adapters.table_keys import account_pk
from llm_gateway.domain.ports import AlreadyExists, LimitReached

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def count_key(account_id: str, what: str) -> dict[str, Any]:
    return {"PK": {"S": account_pk(account_id)}, "SK": {"S": f"COUNT#{what}"}}


def _codes(exc: Exception) -> list[str]:
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return [str(r.get("Code", "None")) for r in reasons]


def put_counted(
    db: DynamoDBClient, table: str, item: dict[str, Any], account_id: str, what: str, limit: int
) -> None:
    """Put ``item`` (which must not exist) and count it; ``LimitReached`` at ``limit`` items."""
    count = {
        "Update": {
            "TableName": table,
            "Key": count_key(account_id, what),
            "UpdateExpression": "SET n = if_not_exists(n, :zero) + :one, kind = :kind",
            "ConditionExpression": "attribute_not_exists(n) OR n < :max",
            "ExpressionAttributeValues": {
                ":zero": {"N": "0"}, ":one": {"N": "1"}, ":max": {"N": str(limit)}, ":kind": {"S": "count"},
            },
        }
    }  # fmt: skip
    put = {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}
    try:
        db.transact_write_items(TransactItems=[count, put])  # type: ignore[list-item]
    except db.exceptions.TransactionCanceledException as exc:
        codes = _codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise LimitReached(account_id, what, limit) from None
        if codes[1:2] == ["ConditionalCheckFailed"]:
            raise AlreadyExists(item["SK"]["S"]) from None
        raise


def delete_counted(db: DynamoDBClient, table: str, key: dict[str, Any], account_id: str, what: str) -> bool:
    """Delete the item and uncount it; ``False`` when there was no such item."""
    delete = {"Delete": {"TableName": table, "Key": key, "ConditionExpression": "attribute_exists(PK)"}}
    uncount = {
        "Update": {
            "TableName": table,
            "Key": count_key(account_id, what),
            "UpdateExpression": "SET n = n - :one",
            "ConditionExpression": "n > :zero",
            "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}},
        }
    }
    try:
        db.transact_write_items(TransactItems=[delete, uncount])  # type: ignore[list-item]
        return True
    except db.exceptions.TransactionCanceledException as exc:
        codes = _codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return False
        if codes[1:2] != ["ConditionalCheckFailed"]:
            raise
    # An item from before the counter: delete it alone.
    try:
        db.delete_item(TableName=table, Key=key, ConditionExpression="attribute_exists(PK)")
    except db.exceptions.ConditionalCheckFailedException:
        return False
    return True
