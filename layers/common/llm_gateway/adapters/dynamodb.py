"""Single-table storage. Keys: ``ACCOUNT#<id>`` / ``LLM#<id>`` and ``APIKEY#<keyId>``,
``APIKEY#<sha256>`` / ``APIKEY`` (the authorizer's lookup).

Each LLM item keeps the document as JSON plus the attributes conditions need (``version``) and
``status``, the partition key of the ``LlmsByStatus`` index (keys and ``version`` only): the
re-validation schedule lists every ``valid`` and ``invalid`` LLM of every account from it, reading
a few bytes per LLM instead of scanning the whole table (sessions, reports, health buckets); and
``rev``, a hash of the document: every write that changes anything (config, status, a promoted
key's hint) makes a new one, which is what the stream's freshness read compares.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llm_gateway.adapters.counted_items import delete_counted, put_counted
from llm_gateway.adapters.table_keys import SESSION_SK, account_pk, llm_revision, llm_sk, session_pk
from llm_gateway.domain.ports import AlreadyExists, LastKey, TooManyKeys, VersionConflict
from llm_gateway.models.account import KeyOwner, StoredApiKey
from llm_gateway.models.llm import LlmStatus, StoredLlm
from llm_gateway.models.report import Report, ValidationRun, ValidationRunStatus
from llm_gateway.models.session import SessionRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from llm_gateway.domain.revalidation import LlmKey


#: The table's index on ``status`` (template.yaml): LLM items are the only ones with that attribute
#: besides Powertools' idempotency records (whose statuses are never valid or invalid).
LLMS_BY_STATUS_INDEX = "LlmsByStatus"


class DynamoLlmRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _item(self, llm: StoredLlm) -> dict[str, Any]:
        doc = llm.model_dump_json()
        return {
            "PK": {"S": account_pk(llm.account_id)},
            "SK": {"S": llm_sk(llm.id)},
            "kind": {"S": "llm"},
            "version": {"N": str(llm.version)},
            "status": {"S": llm.status.value},
            "rev": {"S": llm_revision(doc)},
            "doc": {"S": doc},
        }

    def create(self, llm: StoredLlm, limit: int) -> None:
        """Put and count in one transaction (``counted_items``): ``LimitReached`` at ``limit``."""
        put_counted(self._db, self._table, self._item(llm), llm.account_id, "LLM", limit)

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
        except self._db.exceptions.ConditionalCheckFailedException:
            raise VersionConflict(llm.id) from None

    def delete(self, account_id: str, llm_id: str) -> bool:
        key = {"PK": {"S": account_pk(account_id)}, "SK": {"S": llm_sk(llm_id)}}
        if not delete_counted(self._db, self._table, key, account_id, "LLM"):
            return False
        from llm_gateway.adapters.health_store import DynamoHealthStore

        DynamoHealthStore(self._db, self._table).delete_state(account_id, llm_id)
        return True

    def revalidation_candidates(self) -> Iterator[LlmKey]:
        """Every ``valid`` and ``invalid`` LLM of every account, one index page at a time."""
        from llm_gateway.domain.revalidation import LlmKey

        for status in (LlmStatus.VALID, LlmStatus.INVALID):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": LLMS_BY_STATUS_INDEX,
                "KeyConditionExpression": "#status = :status",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":status": {"S": status.value}},
            }
            while True:
                page = self._db.query(**kwargs)
                for item in page.get("Items", []):
                    if item.get("SK", {}).get("S", "").startswith("LLM#"):
                        yield LlmKey(
                            account_id=item["PK"]["S"].removeprefix("ACCOUNT#"),
                            llm_id=item["SK"]["S"].removeprefix("LLM#"),
                            version=int(item.get("version", {}).get("N", "0")),
                        )
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def api_key_lookup_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


API_KEY_LOOKUP_SK = "APIKEY"


def api_key_sk(key_id: str) -> str:
    return f"APIKEY#{key_id}"


def _cancellation_codes(exc: Exception) -> list[str]:
    """Per-item reasons of a cancelled transaction ("None" for items that did not fail)."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return [str(r.get("Code", "None")) for r in reasons]


class DynamoAccountRepository:
    """Accounts and their API keys.

    - ``ACCOUNT#<id>`` / ``ACCOUNT``: the account, with ``keyCount`` (the limit is a condition on it)
    - ``ACCOUNT#<id>`` / ``APIKEY#<keyId>``: a key's public fields, its hash, ``lastUsedAt`` (epoch s)
    - ``APIKEY#<sha256>`` / ``APIKEY``: what the authorizer reads, one GetItem per new key

    Adding and revoking a key write all three in one transaction, so the lookup item exists exactly
    as long as the key is listed, and the count cannot drift.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _key_puts(self, account_id: str, key: StoredApiKey) -> list[dict[str, Any]]:
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "PK": {"S": account_pk(account_id)},
                        "SK": {"S": api_key_sk(key.id)},
                        "kind": {"S": "apikey-meta"},
                        "keyHash": {"S": key.key_hash},
                        "doc": {"S": key.public().model_dump_json(exclude={"last_used_at"})},
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "PK": {"S": api_key_lookup_pk(key.key_hash)},
                        "SK": {"S": API_KEY_LOOKUP_SK},
                        "kind": {"S": "apikey"},
                        "accountId": {"S": account_id},
                        "keyId": {"S": key.id},
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]

    def create(self, account_id: str, name: str, first_key: StoredApiKey, created_at: datetime) -> None:
        account = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "PK": {"S": account_pk(account_id)},
                    "SK": {"S": "ACCOUNT"},
                    "kind": {"S": "account"},
                    "keyCount": {"N": "1"},
                    "doc": {"S": json.dumps({"accountId": account_id, "name": name,
                                             "createdAt": created_at.isoformat()})},
                },
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }  # fmt: skip
        try:
            self._db.transact_write_items(TransactItems=[account, *self._key_puts(account_id, first_key)])  # type: ignore[list-item]
        except self._db.exceptions.TransactionCanceledException:  # the account or key hash exists
            raise AlreadyExists(account_id) from None

    def owner_of_key(self, key_hash: str) -> KeyOwner | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"PK": {"S": api_key_lookup_pk(key_hash)}, "SK": {"S": API_KEY_LOOKUP_SK}},
        ).get("Item")
        if not item:
            return None
        key_id = item.get("keyId", {}).get("S")
        return KeyOwner(account_id=item["accountId"]["S"], key_id=key_id)

    def add_key(self, account_id: str, key: StoredApiKey, max_keys: int) -> None:
        # Accounts made before keys had ids hold exactly one key and no keyCount.
        count = {
            "Update": {
                "TableName": self._table,
                "Key": {"PK": {"S": account_pk(account_id)}, "SK": {"S": "ACCOUNT"}},
                "UpdateExpression": "SET keyCount = if_not_exists(keyCount, :one) + :one",
                "ConditionExpression": "attribute_exists(PK) AND "
                "(attribute_not_exists(keyCount) OR keyCount < :max)",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": str(max_keys)}},
            }
        }
        try:
            self._db.transact_write_items(TransactItems=[count, *self._key_puts(account_id, key)])  # type: ignore[list-item]
        except self._db.exceptions.TransactionCanceledException as exc:
            if _cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                raise TooManyKeys(account_id) from None
            raise

    def list_keys(self, account_id: str) -> list[StoredApiKey]:
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": {"S": account_pk(account_id)}, ":prefix": {"S": "APIKEY#"}},
            ConsistentRead=True,
        ).get("Items", [])
        return [self._stored_key(item) for item in items]

    @staticmethod
    def _stored_key(item: dict[str, Any]) -> StoredApiKey:
        fields = json.loads(item["doc"]["S"]) | {"keyHash": item["keyHash"]["S"]}
        if "lastUsedAt" in item:
            fields["lastUsedAt"] = datetime.fromtimestamp(int(item["lastUsedAt"]["N"]), UTC).isoformat()
        return StoredApiKey.model_validate(fields)

    def delete_key(self, account_id: str, key_id: str) -> bool:
        item = self._db.get_item(
            TableName=self._table,
            Key={"PK": {"S": account_pk(account_id)}, "SK": {"S": api_key_sk(key_id)}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return False
        key_hash = item["keyHash"]["S"]
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"PK": {"S": account_pk(account_id)}, "SK": {"S": api_key_sk(key_id)}},
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"PK": {"S": api_key_lookup_pk(key_hash)}, "SK": {"S": API_KEY_LOOKUP_SK}},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"PK": {"S": account_pk(account_id)}, "SK": {"S": "ACCOUNT"}},
                            "UpdateExpression": "SET keyCount = keyCount - :one",
                            "ConditionExpression": "keyCount > :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except self._db.exceptions.TransactionCanceledException as exc:
            if _cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False  # revoked meanwhile by another request
            raise LastKey(key_id) from None
        return True

    def touch_key(self, account_id: str, key_id: str, used_at: datetime, stale_before: datetime) -> None:
        # A use after ``stale_before`` already recorded is the condition failing: nothing to do.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key={"PK": {"S": account_pk(account_id)}, "SK": {"S": api_key_sk(key_id)}},
                UpdateExpression="SET lastUsedAt = :now",
                ConditionExpression="attribute_exists(PK) AND "
                "(attribute_not_exists(lastUsedAt) OR lastUsedAt < :stale)",
                ExpressionAttributeValues={
                    ":now": {"N": str(int(used_at.timestamp()))},
                    ":stale": {"N": str(int(stale_before.timestamp()))},
                },
            )


class DynamoReportRepository:
    """Validation reports, newest first: ``REPORT#<llmId>#<checkedAt>`` under the account; at most
    ``keep`` per LLM (each add deletes what falls beyond), so no loop of runs grows the table."""

    RETENTION_SECONDS = 90 * 24 * 3600

    def __init__(self, client: DynamoDBClient, table_name: str, keep: int = 50) -> None:
        self._db = client
        self._table = table_name
        self._keep = max(1, keep)

    def _prune(self, account_id: str, llm_id: str) -> None:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": account_pk(account_id)},
                ":prefix": {"S": f"REPORT#{llm_id}#"},
            },
            ProjectionExpression="PK, SK",
            ScanIndexForward=False,
            Limit=self._keep + 25,
        )
        for item in page.get("Items", [])[self._keep :]:
            self._db.delete_item(TableName=self._table, Key={"PK": item["PK"], "SK": item["SK"]})

    def add(self, account_id: str, llm_id: str, report: Report) -> None:
        checked = report.checked_at.astimezone(UTC)
        self._db.put_item(
            TableName=self._table,
            Item={
                "PK": {"S": account_pk(account_id)},
                "SK": {"S": f"REPORT#{llm_id}#{checked.isoformat()}#{uuid.uuid4().hex[:8]}"},
                "kind": {"S": "report"},
                "doc": {"S": report.model_dump_json(by_alias=True)},
                "ttl": {"N": str(int(checked.timestamp()) + self.RETENTION_SECONDS)},
            },
        )
        self._prune(account_id, llm_id)

    def latest(self, account_id: str, llm_id: str) -> Report | None:
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": account_pk(account_id)},
                ":prefix": {"S": f"REPORT#{llm_id}#"},
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        ).get("Items", [])
        return Report.model_validate_json(items[0]["doc"]["S"]) if items else None


class DynamoValidationRuns:
    """The latest requested validation run per LLM: ``VALIDATION_RUN#<llmId>`` under the account.

    One item per LLM: a request claims it only when the run there is done or expired (one
    conditional ``PutItem``), so concurrent requests join one run; ``ttl`` tidies it away."""

    RETENTION_SECONDS = 24 * 3600

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _key(self, account_id: str, llm_id: str) -> dict[str, Any]:
        return {"PK": {"S": account_pk(account_id)}, "SK": {"S": f"VALIDATION_RUN#{llm_id}"}}

    def claim(
        self,
        account_id: str,
        llm_id: str,
        run: ValidationRun,
        expires_at: datetime,
        finished_before: datetime | None = None,
    ) -> tuple[ValidationRun, bool]:
        expires = int(expires_at.timestamp())
        fresh = int(finished_before.timestamp()) if finished_before is not None else 0
        item = self._key(account_id, llm_id) | {
            "kind": {"S": "validation_run"},
            "validationId": {"S": run.validation_id},
            "runStatus": {"S": run.status.value},
            "doc": {"S": run.model_dump_json(by_alias=True)},
            "expiresAt": {"N": str(expires)},
            "ttl": {"N": str(expires + self.RETENTION_SECONDS)},
        }
        for _attempt in range(2):  # a pending run that settles between put and get: try once more
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(PK) OR expiresAt < :now OR "
                    "(runStatus = :done AND (attribute_not_exists(finishedAt) OR finishedAt < :fresh))",
                    ExpressionAttributeValues={
                        ":done": {"S": ValidationRunStatus.DONE.value},
                        ":now": {"N": str(int(run.requested_at.timestamp()))},
                        ":fresh": {"N": str(fresh)},
                    },
                )
            except self._db.exceptions.ConditionalCheckFailedException:
                existing = self.pending(account_id, llm_id, run.requested_at) or self._finished_since(
                    account_id, llm_id, fresh
                )
                if existing is not None:
                    return existing, False
                continue
            return run, True
        raise RuntimeError("validation run item keeps changing")  # pragma: no cover

    def _finished_since(self, account_id: str, llm_id: str, fresh: int) -> ValidationRun | None:
        """The done run, if it finished at or after ``fresh`` (epoch seconds)."""
        item = self._db.get_item(
            TableName=self._table, Key=self._key(account_id, llm_id), ConsistentRead=True
        ).get("Item")
        if item is None or item["runStatus"]["S"] != ValidationRunStatus.DONE.value:
            return None
        if int(item.get("finishedAt", {}).get("N", "0")) < fresh or not fresh:
            return None
        run = ValidationRun.model_validate_json(item["doc"]["S"])
        return run.model_copy(update={"status": ValidationRunStatus.DONE})

    def pending(self, account_id: str, llm_id: str, now: datetime) -> ValidationRun | None:
        item = self._db.get_item(
            TableName=self._table, Key=self._key(account_id, llm_id), ConsistentRead=True
        ).get("Item")
        if item is None or item["runStatus"]["S"] == ValidationRunStatus.DONE.value:
            return None
        if int(item["expiresAt"]["N"]) < int(now.timestamp()):
            return None
        run = ValidationRun.model_validate_json(item["doc"]["S"])
        return run.model_copy(update={"status": ValidationRunStatus(item["runStatus"]["S"])})

    def mark(self, account_id: str, llm_id: str, validation_id: str, status: ValidationRunStatus) -> None:
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key=self._key(account_id, llm_id),
                UpdateExpression="SET runStatus = :status, finishedAt = :at",
                ConditionExpression="validationId = :id",
                ExpressionAttributeValues={
                    ":status": {"S": status.value},
                    ":id": {"S": validation_id},
                    ":at": {"N": str(int(datetime.now(UTC).timestamp()))},
                },
            )


class DynamoSessionRepository:
    """Session records: ``SESSION#<id>`` / ``SESSION``, the record as ``doc`` JSON, ``ttl`` at expiry.

    ``accountId`` and ``revoked`` sit beside the document so revocation is one conditional
    ``UpdateItem`` (no read-modify-write race with a concurrent revoke). DynamoDB deletes expired
    items lazily (up to days later), so readers also compare ``expiresAt`` themselves.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def put(self, record: SessionRecord) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "PK": {"S": session_pk(record.session_id)},
                    "SK": {"S": SESSION_SK},
                    "kind": {"S": "session"},
                    "accountId": {"S": record.account_id},
                    "revoked": {"BOOL": record.revoked},
                    "ttl": {"N": str(int(record.expires_at.timestamp()))},
                    "doc": {"S": record.model_dump_json()},
                },
                ConditionExpression="attribute_not_exists(PK)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise AlreadyExists(record.session_id) from None

    def get(self, session_id: str) -> SessionRecord | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"PK": {"S": session_pk(session_id)}, "SK": {"S": SESSION_SK}},
            ConsistentRead=True,
        ).get("Item")
        if not item or "doc" not in item:
            return None
        record = SessionRecord.model_validate_json(item["doc"]["S"])
        if item.get("revoked", {}).get("BOOL"):
            record = record.model_copy(update={"revoked": True})
        return record

    def revoke(self, account_id: str, session_id: str, revoked_at: datetime) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"PK": {"S": session_pk(session_id)}, "SK": {"S": SESSION_SK}},
                UpdateExpression="SET revoked = :true, revokedAt = if_not_exists(revokedAt, :at)",
                ConditionExpression="attribute_exists(PK) AND accountId = :account",
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":at": {"S": revoked_at.isoformat()},
                    ":account": {"S": account_id},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True


class DynamoUsageKeyRepository:
    """``ACCOUNT#<id>`` / ``USAGEKEY``: which API Gateway key and usage plan limit the account."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def save_usage_key(self, account_id: str, usage_plan_id: str, key_id: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "PK": {"S": account_pk(account_id)},
                "SK": {"S": "USAGEKEY"},
                "kind": {"S": "usagekey"},
                "usagePlanId": {"S": usage_plan_id},
                "apiKeyId": {"S": key_id},
            },
        )
