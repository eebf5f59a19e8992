"""The request log's write batching (issue 21): what a stream pays, and what a flush sends.

``stream_ended`` is the only request-log work on a stream's path (after its last byte): its CPU is
timed in-process. A flush is measured on moto (in-process, the template's table): the DynamoDB
requests and their payload per 1,000 records, batched as the stream function writes them
(``BatchWriteItem`` of 25 items, each record twice, plus one ``UpdateItem`` per LLM and day) against
one ``PutItem`` per item and one ``UpdateItem`` per record. moto's time is not DynamoDB's, so the
figures that carry over are the request counts and the bytes; the milliseconds show the client side.

    python -m bench.request_log
"""

from __future__ import annotations

import json
import os
import time
import timeit
from collections import Counter
from datetime import UTC, datetime
from typing import Any

RECORDS = 1000


def _record(n: int) -> Any:
    from llm_gateway.models.request_log import RequestRecord, TokenUsage

    return RequestRecord(
        at=datetime.now(UTC),
        request_id=f"{n:08d}-5d0c-4a43-9c43-3f1ad5e1c0de",
        session_id=f"sess_{n % 50:032x}",
        client_label="persona-web",
        llm_id="4f1c2a9e-2b7d-4c55-9d1e-1a2b3c4d5e6f",
        outcome="ok",
        http_status=200,
        upstream_status=200,
        upstream_ttfb_ms=212.4,
        ttft_ms=230.9,
        total_ms=4120.5,
        attempts=1,
        url_index=0,
        chunks=180,
        usage=TokenUsage(input_tokens=812, output_tokens=164, total_tokens=976),
    )


def stream_ended_micros(n: int = 100_000) -> float:
    from llm_gateway.adapters.request_recorder import BufferedRequestLog

    log = BufferedRequestLog(lambda batch: None, interval_s=3600, max_pending=10**9)
    record = _record(1)
    seconds = timeit.timeit(lambda: log.stream_ended("acct_bench", record), number=n)
    log.close(flush=False)
    return seconds / n * 1e6


def record_micros(n: int = 20_000) -> float:
    """Building one record (the pydantic model), in the stream's ``finally`` after its last byte."""
    return timeit.timeit(lambda: _record(1), number=n) / n * 1e6


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings as UTF-8, numbers ~ their digits)."""
    return sum(len(name.encode()) + len(next(iter(value.values())).encode()) for name, value in item.items())


def flush_figures(per_flush: int) -> dict[str, Any]:
    """Write RECORDS records in flushes of ``per_flush``, counting DynamoDB requests and bytes."""
    import boto3
    from moto import mock_aws

    from llm_gateway.adapters.request_log_store import DynamoRequestLogStore
    from llm_gateway.domain.request_log import LoggedRequest, RequestBatch
    from llm_gateway_local.provision import provision
    from llm_gateway_local.template import Resolver, load_template, parameter_defaults

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # moto supplies fake credentials
    with mock_aws():
        template = load_template()
        provision(template, Resolver(parameter_defaults(template, {"Stage": "bench"})), boto3.client)
        client = boto3.client("dynamodb")
        table = next(t for t in client.list_tables()["TableNames"])
        calls: Counter[str] = Counter()
        sent = [0]

        def count(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls[model.name] += 1
            sent[0] += len(params.get("body") or b"")

        client.meta.events.register("before-call.dynamodb.*", count)
        store = DynamoRequestLogStore(client, table)
        records = [_record(n) for n in range(RECORDS)]
        started = time.perf_counter()
        for start in range(0, RECORDS, per_flush):
            batch = RequestBatch()
            for record in records[start : start + per_flush]:
                batch.add(LoggedRequest("acct_bench", record))
            store.put(batch)
        elapsed = time.perf_counter() - started
        item_bytes = item_size(record_item(store, records[0]))
    return {
        "per_flush": per_flush,
        "requests": sum(calls.values()),
        "by_operation": dict(calls),
        "kb_sent": round(sent[0] / 1024, 1),
        "ms_per_record": round(elapsed / RECORDS * 1000, 3),
        "item_bytes": item_bytes,
    }


def record_item(store: Any, record: Any) -> dict[str, Any]:
    from llm_gateway.domain.request_log import LoggedRequest

    item: dict[str, Any] = store._items(LoggedRequest("acct_bench", record))[0]["PutRequest"]["Item"]
    return item


def unbatched_requests() -> int:
    """The same records written one request at a time: two PutItem and one UpdateItem each."""
    return RECORDS * 3


def figures() -> dict[str, Any]:
    return {
        "stream_ended_us": round(stream_ended_micros(), 2),
        "record_us": round(record_micros(), 2),
        "flushes": [flush_figures(n) for n in (1, 10, 100)],
        "unbatched_requests": unbatched_requests(),
    }


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"| request log, {RECORDS} records | DynamoDB requests | of them BatchWriteItem / UpdateItem | "
        "sent | client time per record (moto) |",
        "|---|---|---|---|---|",
    ]
    for f in result["flushes"]:
        ops = f["by_operation"]
        lines.append(
            f"| flushes of {f['per_flush']} | {f['requests']} | {ops.get('BatchWriteItem', 0)} / "
            f"{ops.get('UpdateItem', 0)} | {f['kb_sent']} KB | {f['ms_per_record']:.3f} ms |"
        )
    lines += [
        f"| one request per item (no batching) | {result['unbatched_requests']} | - | - | - |",
        "",
        f"After a stream's last byte: building its record {result['record_us']:.1f} µs, `stream_ended` "
        f"{result['stream_ended_us']:.2f} µs; one record item is {result['flushes'][0]['item_bytes']} bytes "
        "(DynamoDB's measure: 1 WCU).",
    ]
    return lines


if __name__ == "__main__":
    result = figures()
    print(json.dumps(result, indent=2))
    print("\n".join(render(result)))
