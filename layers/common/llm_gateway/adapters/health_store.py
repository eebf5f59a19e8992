"""Health in the single table, in a partition per LLM (``HEALTH#<accountId>#<llmId>``):

- ``BUCKET#<epoch start>``: one 5-minute bucket of real traffic. Every container adds to it with
  one ``UpdateItem`` of atomic ``ADD``s (``requests``, ``errors``, ``e_<code>``, ``t<bin>`` for the
  TTFT histogram, ``ua<i>``/``uf<i>``/``us<i>`` for URL i's attempts, failed attempts, streams
  served), so concurrent flushes never lose a count; ``ttl`` drops it after two days.
- ``STATE``: the health record (``doc`` JSON) and its ``revision``, written only conditionally.

A partition of its own per LLM keeps a busy LLM's counters off its account's partition, and lets
the stream function's role write ``HEALTH#*`` items only (``dynamodb:LeadingKeys``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.ports import VersionConflict
from llm_gateway.domain.traffic import TTFT_BINS, TrafficCounts
from llm_gateway.models.health import HealthRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Buckets outlive the longest history the API serves (48 h) by a little.
BUCKET_RETENTION_SECONDS = 49 * 3600
STATE_SK = "STATE"
#: The LLM's URL breakers as containers share them: ``brk`` = JSON {URL key: open-until epoch s}.
URL_BREAKERS_SK = "URLS"
URL_BREAKERS_TTL_SECONDS = 3600


def read_url_breakers(item: dict[str, Any] | None) -> dict[str, float]:
    """The ``brk`` attribute of a ``URLS`` item (absent or unreadable: nothing shared)."""
    try:
        raw = json.loads(item["brk"]["S"]) if item and "brk" in item else {}
    except (KeyError, TypeError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}


def health_pk(account_id: str, llm_id: str) -> str:
    return f"HEALTH#{account_id}#{llm_id}"


def bucket_sk(start: int) -> str:
    return f"BUCKET#{start:012d}"


def _add_expression(counts: TrafficCounts) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {"#ttl": "ttl", "#requests": "requests", "#errors": "errors"}
    values: dict[str, Any] = {
        ":ttl": {"N": str(counts.bucket_start + BUCKET_RETENTION_SECONDS)},
        ":requests": {"N": str(counts.requests)},
        ":errors": {"N": str(counts.errors)},
    }
    adds = ["#requests :requests", "#errors :errors"]
    for index, (code, count) in enumerate(sorted(counts.errors_by_code.items())):
        names[f"#e{index}"] = f"e_{code}"
        values[f":e{index}"] = {"N": str(count)}
        adds.append(f"#e{index} :e{index}")
    for index, count in enumerate(counts.ttft):
        if count:
            names[f"#t{index}"] = f"t{index}"
            values[f":t{index}"] = {"N": str(count)}
            adds.append(f"#t{index} :t{index}")
    for prefix, per_url in (
        ("ua", counts.url_attempts),
        ("uf", counts.url_failures),
        ("us", counts.url_served),
    ):
        for url, count in sorted(per_url.items()):
            names[f"#{prefix}{url}"] = f"{prefix}{url}"
            values[f":{prefix}{url}"] = {"N": str(count)}
            adds.append(f"#{prefix}{url} :{prefix}{url}")
    return f"SET #ttl = if_not_exists(#ttl, :ttl) ADD {', '.join(adds)}", names, values


def _counts(account_id: str, llm_id: str, item: dict[str, Any]) -> TrafficCounts:
    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    return TrafficCounts(
        account_id=account_id,
        llm_id=llm_id,
        bucket_start=int(item["SK"]["S"].removeprefix("BUCKET#")),
        requests=number("requests"),
        errors=number("errors"),
        errors_by_code={k.removeprefix("e_"): int(v["N"]) for k, v in item.items() if k.startswith("e_")},
        ttft=[number(f"t{i}") for i in range(TTFT_BINS)],
        url_attempts=_per_url(item, "ua"),
        url_failures=_per_url(item, "uf"),
        url_served=_per_url(item, "us"),
    )


def _per_url(item: dict[str, Any], prefix: str) -> dict[int, int]:
    """``ua0``, ``ua1``, ...: per-URL counters (URL index after the prefix)."""
    return {
        int(name[len(prefix) :]): int(value["N"])
        for name, value in item.items()
        if name.startswith(prefix) and name[len(prefix) :].isdigit()
    }


class DynamoHealthStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def add_traffic(self, batch: Iterable[TrafficCounts]) -> None:
        for counts in batch:
            expression, names, values = _add_expression(counts)
            self._db.update_item(
                TableName=self._table,
                Key={
                    "PK": {"S": health_pk(counts.account_id, counts.llm_id)},
                    "SK": {"S": bucket_sk(counts.bucket_start)},
                },
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    def buckets(self, account_id: str, llm_id: str, since: int) -> list[TrafficCounts]:
        out: list[TrafficCounts] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                ":pk": {"S": health_pk(account_id, llm_id)},
                ":from": {"S": bucket_sk(max(0, since))},
                ":to": {"S": "BUCKET#~"},
            },
        }
        while True:
            page = self._db.query(**kwargs)
            out.extend(_counts(account_id, llm_id, item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_state(self, account_id: str, llm_id: str) -> HealthRecord | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"PK": {"S": health_pk(account_id, llm_id)}, "SK": {"S": STATE_SK}},
            ConsistentRead=True,
        ).get("Item")
        return HealthRecord.model_validate_json(item["doc"]["S"]) if item else None

    def put_state(self, account_id: str, llm_id: str, record: HealthRecord, expected_revision: int) -> None:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(PK)"}
            if expected_revision == 0
            else {
                "ConditionExpression": "revision = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_revision)}},
            }
        )
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "PK": {"S": health_pk(account_id, llm_id)},
                    "SK": {"S": STATE_SK},
                    "kind": {"S": "health"},
                    "state": {"S": record.state.value},
                    "revision": {"N": str(record.revision)},
                    "doc": {"S": record.model_dump_json()},
                },
                **condition,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise VersionConflict(llm_id) from None

    def put_url_breakers(self, account_id: str, llm_id: str, view: dict[str, float]) -> None:
        """This container's open breakers of the LLM's URLs, for every other container to read with
        its next request (last writer wins: a breaker is a hint, and expires on its own)."""
        self._db.put_item(
            TableName=self._table,
            Item={
                "PK": {"S": health_pk(account_id, llm_id)},
                "SK": {"S": URL_BREAKERS_SK},
                "brk": {"S": json.dumps(view, separators=(",", ":"))},
                "ttl": {"N": str(int(time.time()) + URL_BREAKERS_TTL_SECONDS)},
            },
        )

    def delete_state(self, account_id: str, llm_id: str) -> None:
        """When the LLM goes (its buckets expire on their own)."""
        with contextlib.suppress(self._db.exceptions.ResourceNotFoundException):
            self._db.delete_item(
                TableName=self._table,
                Key={"PK": {"S": health_pk(account_id, llm_id)}, "SK": {"S": STATE_SK}},
            )
