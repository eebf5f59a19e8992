"""The request log store on moto: records spread over shards and days come back newest first, page
by page with no record lost or repeated; filters; usage counters add up across flushes; TTL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from llm_gateway.adapters.request_log_store import SHARDS, DynamoRequestLogStore, shard_of
from llm_gateway.adapters.request_recorder import BufferedRequestLog
from llm_gateway.domain.request_log import LoggedRequest, RequestBatch, RequestLogService
from llm_gateway.errors import NotFound
from llm_gateway.models.request_log import RequestRecord, TokenUsage
from tests.integration.conftest import AwsStack

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class _Owner:
    def __init__(self, *owned: tuple[str, str]) -> None:
        self.owned = set(owned)

    def owns_session(self, account_id: str, session_id: str) -> bool:
        return (account_id, session_id) in self.owned


def _record(
    n: int, *, at: datetime, session: str = "s1", outcome: str = "ok", llm: str = "llm-1"
) -> RequestRecord:
    return RequestRecord(
        at=at,
        request_id=f"req-{n:04d}",
        session_id=session,
        llm_id=llm,
        outcome=outcome,
        http_status=200,
        ttft_ms=100 + n,
        attempts=1,
        url_index=0,
        usage=TokenUsage(input_tokens=10, output_tokens=n, total_tokens=10 + n),
    )


def _store(aws: AwsStack) -> DynamoRequestLogStore:
    return DynamoRequestLogStore(aws.client("dynamodb"), aws.env["TABLE_NAME"], retention_days=7)


def _write(store: DynamoRequestLogStore, account: str, records: list[RequestRecord]) -> None:
    batch = RequestBatch()
    for record in records:
        batch.add(LoggedRequest(account, record))
    store.put(batch)


def test_pages_over_shards_and_days_lose_and_repeat_nothing(aws: AwsStack) -> None:
    store = _store(aws)
    rng = random.Random(7)
    records = [
        _record(n, at=NOW - timedelta(minutes=rng.randrange(0, 3 * 24 * 60)), session=f"s{n % 3}")
        for n in range(90)
    ]
    assert len({shard_of(r.request_id) for r in records}) == SHARDS  # every shard holds some
    _write(store, "acct_a", records)
    _write(store, "acct_b", [_record(999, at=NOW)])  # another account's record is never listed
    service = RequestLogService(store, _Owner(), now=lambda: NOW)
    seen: list[RequestRecord] = []
    cursor = None
    while True:
        page = service.llm_requests("acct_a", "llm-1", service.query(limit=7, cursor=cursor))
        seen += page.data
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(records, key=lambda r: (r.at, r.request_id), reverse=True)
    assert [r.request_id for r in seen] == [r.request_id for r in expected]

    by_session = service.llm_requests("acct_a", "llm-1", service.query(session_id="s1", limit=100))
    assert [r.request_id for r in by_session.data] == [r.request_id for r in expected if r.session_id == "s1"]
    since = NOW - timedelta(hours=20)
    recent = service.llm_requests("acct_a", "llm-1", service.query(since=since, limit=100)).data
    assert [r.request_id for r in recent] == [r.request_id for r in expected if r.at >= since]


def test_outcome_filter_and_the_session_list(aws: AwsStack) -> None:
    store = _store(aws)
    _write(store, "acct_a", [_record(n, at=NOW - timedelta(seconds=n), outcome="upstream_timeout" if n % 4 == 0 else "ok")
                             for n in range(20)])  # fmt: skip
    service = RequestLogService(store, _Owner(("acct_a", "s1"), ("acct_a", "quiet")), now=lambda: NOW)
    failed = service.llm_requests("acct_a", "llm-1", service.query(outcome="upstream_timeout")).data
    assert [r.request_id for r in failed] == [f"req-{n:04d}" for n in (0, 4, 8, 12, 16)]
    session = service.session_requests("acct_a", "s1", service.query(limit=3))
    assert [r.request_id for r in session.data] == ["req-0000", "req-0001", "req-0002"]
    assert session.next_cursor is not None
    assert service.session_requests("acct_a", "quiet", service.query()).data == []
    with pytest.raises(NotFound):
        service.session_requests("acct_b", "s1", service.query())  # another account's session


def test_usage_adds_up_across_flushes_and_every_item_expires(aws: AwsStack) -> None:
    containers = [DynamoRequestLogStore(aws.client("dynamodb"), aws.env["TABLE_NAME"], 7, usage_shard=n % 2)
                  for n in range(3)]  # fmt: skip
    store = containers[0]
    for flush, container in enumerate(containers):  # three containers' flushes of the same day
        _write(container, "acct_a", [_record(flush * 10 + n, at=NOW, outcome="ok" if n else "upstream_timeout")
                                 for n in range(4)])  # fmt: skip
    service = RequestLogService(store, _Owner(), now=lambda: NOW)
    usage = service.usage("acct_a", "llm-1", 3)
    assert [d.day.isoformat() for d in usage.data] == ["2026-12-05", "2026-12-06", "2026-12-07"]
    today = usage.data[-1]
    assert (today.requests, today.errors, today.errors_by_code) == (12, 3, {"upstream_timeout": 3})
    assert today.input_tokens == 120
    assert today.output_tokens == sum(flush * 10 + n for flush in range(3) for n in range(4))
    assert today.ttft_p50_ms is not None and usage.requests == 12
    day_items = [i["SK"]["S"] for i in aws.scan_table() if i["PK"]["S"] == "USAGE#acct_a#llm-1"]
    assert sorted(day_items) == ["DAY#2026-12-07#0", "DAY#2026-12-07#1"]  # the containers' own shards
    for item in aws.scan_table():
        if item["PK"]["S"].startswith(("REQLOG#", "REQSESSION#", "USAGE#")):
            assert NOW.timestamp() < int(item["ttl"]["N"]) <= NOW.timestamp() + 8 * 86400


def test_the_recorder_writes_in_batches_off_the_caller(aws: AwsStack) -> None:
    store = _store(aws)
    log = BufferedRequestLog(store.put, interval_s=60, max_pending=1000)
    for n in range(60):
        log.stream_ended("acct_a", _record(n, at=NOW - timedelta(seconds=n)))
    log.stream_ended(None, _record(99, at=NOW))  # no verified account: nothing to file it under
    assert log.written == 0  # nothing written while the streams ran
    log.close()
    assert (log.flushes, log.written) == (1, 60)
    service = RequestLogService(store, _Owner(), now=lambda: NOW)
    assert len(service.llm_requests("acct_a", "llm-1", service.query(limit=100)).data) == 60
