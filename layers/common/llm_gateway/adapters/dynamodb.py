"""Single-table storage. Keys: ``ACCOUNT#<id>`` / ``LLM#<id>``, ``APIKEY#<sha256>`` / ``APIKEY``.

Each LLM item keeps the document as JSON plus the attributes conditions need (``version``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.ports import AlreadyExists, VersionConflict
from llm_gateway.models.llm import StoredLlm

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def llm_sk(llm_id: str) -> str:
    return f"LLM#{llm_id}"


def _is_conditional_failure(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


class DynamoLlmRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _item(self, llm: StoredLlm) -> dict[str, Any]:
        return {
            "PK": {"S": account_pk(llm.account_id)},
            "SK": {"S": llm_sk(llm.id)},
            "kind": {"S": "llm"},
            "version": {"N": str(llm.version)},
            "status": {"S": llm.status.value},
            "doc": {"S": llm.model_dump_json()},
        }

    def create(self, llm: StoredLlm) -> None:
        try:
            self._db.put_item(
                TableName=self._table, Item=self._item(llm), ConditionExpression="attribute_not_exists(PK)"
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise AlreadyExists(llm.id) from None
            raise

    def get(self, account_id: str, llm_id: str) -> StoredLlm | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"PK": {"S": account_pk(account_id)}, "SK": {"S": llm_sk(llm_id)}},
            ConsistentRead=True,
        ).get("Item")
        return StoredLlm.model_validate_json(item["doc"]["S"]) if item else None

    def list(self, account_id: str) -> list[StoredLlm]:
        out: list[StoredLlm] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :llm)",
            "ExpressionAttributeValues": {":pk": {"S": account_pk(account_id)}, ":llm": {"S": "LLM#"}},
        }
        while True:
            page = self._db.query(**kwargs)
            out.extend(StoredLlm.model_validate_json(i["doc"]["S"]) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def replace(self, llm: StoredLlm, expected_version: int) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(llm),
                ConditionExpression="attribute_exists(PK) AND version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise VersionConflict(llm.id) from None
            raise

    def delete(self, account_id: str, llm_id: str) -> bool:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"PK": {"S": account_pk(account_id)}, "SK": {"S": llm_sk(llm_id)}},
                ConditionExpression="attribute_exists(PK)",
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True


class DynamoAccountRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def create(self, account_id: str, name: str, key_hash: str, created_at: datetime) -> None:
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "PK": {"S": account_pk(account_id)},
                            "SK": {"S": "ACCOUNT"},
                            "kind": {"S": "account"},
                            "doc": {"S": json.dumps({"accountId": account_id, "name": name,
                                                     "createdAt": created_at.isoformat()})},
                        },
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "PK": {"S": f"APIKEY#{key_hash}"},
                            "SK": {"S": "APIKEY"},
                            "kind": {"S": "apikey"},
                            "accountId": {"S": account_id},
                        },
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )  # fmt: skip

    def account_for_key_hash(self, key_hash: str) -> str | None:
        item = self._db.get_item(
            TableName=self._table, Key={"PK": {"S": f"APIKEY#{key_hash}"}, "SK": {"S": "APIKEY"}}
        ).get("Item")
        return item["accountId"]["S"] if item else None
