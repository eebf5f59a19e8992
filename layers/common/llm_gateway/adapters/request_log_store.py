"""The request log in the single table (SCALING.md, "Request log"):

- ``REQLOG#<account>#<llm>#<yyyymmdd>#<shard>`` / ``<epoch ms>#<requestId>``: one record per stream
  request, in one of ``SHARDS`` partitions per LLM and UTC day (the shard from the request id), so
  one busy LLM spreads its writes over ``SHARDS`` partitions and a day's partitions stop growing at
  midnight. A list reads the days that saw traffic (from the usage items), newest first, every
  shard of a day at once, and merges.
- ``REQSESSION#<account>#<session>`` / same sort key: the same record again, for the session's list
  (one conversation is never thousands of requests per second).
- ``USAGE#<account>#<llm>`` / ``DAY#<yyyy-mm-dd>#<shard>``: the day's counters, atomic ``ADD``s
  from every container's flush (requests, errors, ``e_<code>``, tokens, the TTFT histogram). Each
  container adds to one of ``USAGE_SHARDS`` items per day (picked at random when it starts), so
  thousands of containers flushing for one LLM never meet on one item; a read sums a day's shards.

Every item carries ``ttl``: records and days expire after the retention period (a template
parameter). The stream function's role may write these prefixes only (``dynamodb:LeadingKeys``).
"""

from __future__ import annotations

import random
import re
import time
import zlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.request_log import LoggedRequest, RequestBatch, RequestQuery, UsageCounts
from llm_gateway.domain.traffic import TTFT_BINS
from llm_gateway.models.request_log import RequestPage, RequestRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Partitions per LLM and day: ~1,000 one-WCU writes per second each (SCALING.md).
SHARDS = 8
#: Usage items per LLM and day (one per container, at random): a read sums them.
USAGE_SHARDS = 8
BATCH_WRITE_MAX = 25
_UNPROCESSED_RETRIES = 5
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def shard_of(request_id: str) -> int:
    return zlib.crc32(request_id.encode()) % SHARDS


def llm_pk(account_id: str, llm_id: str, day: date, shard: int) -> str:
    return f"REQLOG#{account_id}#{llm_id}#{day:%Y%m%d}#{shard}"


def session_pk(account_id: str, session_id: str) -> str:
    return f"REQSESSION#{account_id}#{session_id}"


def usage_pk(account_id: str, llm_id: str) -> str:
    return f"USAGE#{account_id}#{llm_id}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def record_sk(record: RequestRecord) -> str:
    """Time first (newest-first reads), then the request id (unique; hashed when not key-safe)."""
    rid = (
        record.request_id
        if _SAFE_ID.match(record.request_id)
        else f"{zlib.crc32(record.request_id.encode()):x}"
    )
    return f"{_ms(record.at):013d}#{rid}"


class DynamoRequestLogStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, retention_days: int = 7, usage_shard: int | None = None
    ) -> None:
        self._db = client
        self._table = table_name
        self._retention_s = retention_days * 86400
        self._usage_shard = random.randrange(USAGE_SHARDS) if usage_shard is None else usage_shard

    # -- writes (the stream function's flush) ------------------------------------------------------

    def put(self, batch: RequestBatch) -> None:
        puts = [put for logged in batch.records for put in self._items(logged)]
        for start in range(0, len(puts), BATCH_WRITE_MAX):
            self._batch_write(puts[start : start + BATCH_WRITE_MAX])
        for counts in batch.usage.values():
            self._add_usage(counts)

    def _items(self, logged: LoggedRequest) -> list[dict[str, Any]]:
        record, account = logged.record, logged.account_id
        body: dict[str, Any] = {
            "SK": {"S": record_sk(record)},
            "kind": {"S": "request"},
            "outcome": {"S": record.outcome},
            "doc": {"S": record.model_dump_json(by_alias=True, exclude_none=True)},
            "ttl": {"N": str(int(record.at.timestamp()) + self._retention_s)},
        }
        if record.session_id:
            body["sid"] = {"S": record.session_id}
        pk = llm_pk(account, record.llm_id, record.at.astimezone(UTC).date(), shard_of(record.request_id))
        items = [{"PK": {"S": pk}, **body}]
        if record.session_id:
            items.append({"PK": {"S": session_pk(account, record.session_id)}, **body})
        return [{"PutRequest": {"Item": item}} for item in items]

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table: requests}
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            answer = self._db.batch_write_item(RequestItems=pending)
            pending = dict(answer.get("UnprocessedItems") or {})
            if not pending:
                return
            time.sleep(min(1.0, 0.05 * 2**attempt))  # throttled: back off (we are off the stream path)
        raise RuntimeError(f"{len(pending.get(self._table, []))} request records left unprocessed")

    def _add_usage(self, counts: UsageCounts) -> None:
        names = {"#ttl": "ttl"}
        expiry = datetime(counts.day.year, counts.day.month, counts.day.day, tzinfo=UTC) + timedelta(days=1)
        values: dict[str, Any] = {":ttl": {"N": str(int(expiry.timestamp()) + self._retention_s)}}
        adds: list[str] = []
        fields = {"requests": counts.requests, "errors": counts.errors, "tin": counts.input_tokens,
                  "tout": counts.output_tokens}  # fmt: skip
        fields |= {f"e_{code}": n for code, n in counts.errors_by_code.items()}
        fields |= {f"t{i}": n for i, n in enumerate(counts.ttft) if n}
        for index, (name, value) in enumerate(sorted(fields.items())):
            names[f"#a{index}"], values[f":a{index}"] = name, {"N": str(value)}
            adds.append(f"#a{index} :a{index}")
        self._db.update_item(
            TableName=self._table,
            Key={
                "PK": {"S": usage_pk(counts.account_id, counts.llm_id)},
                "SK": {"S": f"DAY#{counts.day}#{self._usage_shard}"},
            },
            UpdateExpression=f"SET #ttl = if_not_exists(#ttl, :ttl) ADD {', '.join(adds)}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    # -- reads (the API) -----------------------------------------------------------------------------

    def llm_requests(
        self, account_id: str, llm_id: str, query: RequestQuery, active_days: Iterable[date]
    ) -> RequestPage:
        found: list[tuple[str, RequestRecord]] = []
        last_day = datetime.fromtimestamp(int(query.cursor[:13]) / 1000, UTC).date() if query.cursor else None
        for day in active_days:  # newest first
            if last_day is not None and day > last_day:
                continue
            for shard in range(SHARDS):
                found += self._newest(llm_pk(account_id, llm_id, day, shard), query)
            if len(found) > query.limit:
                break
        return _page(found, query.limit)

    def session_requests(self, account_id: str, session_id: str, query: RequestQuery) -> RequestPage:
        return _page(self._newest(session_pk(account_id, session_id), query), query.limit)

    def _newest(self, pk: str, query: RequestQuery) -> list[tuple[str, RequestRecord]]:
        """Up to ``limit + 1`` matching records of one partition, newest first, before the cursor."""
        upper = f"{_ms(query.until):013d}#~"
        upper = min(upper, query.cursor) if query.cursor else upper
        values: dict[str, Any] = {
            ":pk": {"S": pk},
            ":from": {"S": f"{_ms(query.since):013d}#"},
            ":to": {"S": upper},
        }
        filters = []
        if query.outcome:
            filters.append("outcome = :outcome")
            values[":outcome"] = {"S": query.outcome}
        if query.session_id:
            filters.append("sid = :sid")
            values[":sid"] = {"S": query.session_id}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :from AND :to",
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": query.limit + 2,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        out: list[tuple[str, RequestRecord]] = []
        while len(out) <= query.limit:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                if item["SK"]["S"] != query.cursor:  # BETWEEN includes the cursor itself
                    out.append((item["SK"]["S"], RequestRecord.model_validate_json(item["doc"]["S"])))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    def usage(self, account_id: str, llm_id: str, since: date) -> list[UsageCounts]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                ":pk": {"S": usage_pk(account_id, llm_id)},
                ":from": {"S": f"DAY#{since}"},
                ":to": {"S": "DAY#~"},
            },
        }
        days: dict[date, UsageCounts] = {}
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                counts = _counts(account_id, llm_id, item)
                if counts.day in days:
                    days[counts.day].merge(counts)
                else:
                    days[counts.day] = counts
            if "LastEvaluatedKey" not in page:
                return [days[day] for day in sorted(days)]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _page(found: list[tuple[str, RequestRecord]], limit: int) -> RequestPage:
    found.sort(key=lambda pair: pair[0], reverse=True)
    page = found[:limit]
    cursor = page[-1][0] if len(found) > limit else None
    return RequestPage(data=[record for _, record in page], next_cursor=cursor)


def _counts(account_id: str, llm_id: str, item: dict[str, Any]) -> UsageCounts:
    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    return UsageCounts(
        account_id=account_id,
        llm_id=llm_id,
        day=date.fromisoformat(item["SK"]["S"].removeprefix("DAY#").partition("#")[0]),
        requests=number("requests"),
        errors=number("errors"),
        errors_by_code={k.removeprefix("e_"): int(v["N"]) for k, v in item.items() if k.startswith("e_")},
        input_tokens=number("tin"),
        output_tokens=number("tout"),
        ttft=[number(f"t{i}") for i in range(TTFT_BINS)],
    )
