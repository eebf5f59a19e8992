"""Health with moto: atomic traffic counters from many containers, the conditional state write, the
re-validation index and schedule, the validator's re-validation, and the registry's health routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from llm_gateway.adapters.health_store import BUCKET_RETENTION_SECONDS, DynamoHealthStore
from llm_gateway.adapters.traffic_recorder import BufferedTrafficRecorder
from llm_gateway.domain.ports import VersionConflict
from llm_gateway.domain.revalidation import REVALIDATION_DUE
from llm_gateway.domain.traffic import TrafficCounts, bucket_start
from llm_gateway.models.health import HealthRecord, HealthState
from llm_gateway.models.llm import LlmStatus
from llm_gateway_fake_provider.server import FakeProviderHandle, start_in_thread
from llm_gateway_local.demo import register_demo_llms
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import LeakCollector, load_event
from tests.integration.conftest import AwsStack, Invoke


@pytest.fixture
def private_ok(aws: AwsStack, fake: FakeProviderHandle) -> None:
    aws.configure(PRIVATE_ENDPOINT_ORIGINS=fake.url)  # the fake provider lives on loopback


@pytest.fixture
def fake() -> Iterator[FakeProviderHandle]:
    with start_in_thread() as handle:
        yield handle


@pytest.fixture
def bus_events(aws: AwsStack) -> Any:
    """Every LlmHealthChanged on the bus, read back through a rule of our own into a queue."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="health-events-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = aws.env["EVENT_BUS_NAME"]
    events.put_rule(
        Name="probe", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["LlmHealthChanged"]})
    )
    events.put_targets(Rule="probe", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def _valid_llm(aws: AwsStack, account: str, fake_url: str) -> str:
    llm_id = register_demo_llms(aws.registry, account, fake_url)["openai"]
    llm = aws.registry.llm_repository.get(account, llm_id)
    assert llm is not None
    valid = llm.model_copy(update={"status": LlmStatus.VALID})
    aws.registry.llm_repository.replace(valid, expected_version=llm.version)
    return llm_id


# ---------------------------------------------------------------- counters


def test_flushes_from_many_containers_add_up(aws: AwsStack) -> None:
    """Each container adds with ADD, never a read-modify-write, so none overwrites another's counts.
    (Atomicity under truly simultaneous writes is DynamoDB's guarantee; moto does not lock, so the
    containers take turns here.)"""
    stores = [DynamoHealthStore(aws.client("dynamodb"), aws.env["TABLE_NAME"]) for _ in range(6)]
    start = bucket_start(datetime.now(UTC).timestamp())
    for _ in range(10):
        for store in stores:
            counts = TrafficCounts("acct_1", "llm-1", start, requests=3, errors=1,
                                   errors_by_code={"upstream_timeout": 1})  # fmt: skip
            counts.ttft[2] = 2
            store.add_traffic([counts])
    store = stores[0]
    (bucket,) = store.buckets("acct_1", "llm-1", start)
    assert (bucket.requests, bucket.errors, bucket.errors_by_code) == (180, 60, {"upstream_timeout": 60})
    assert bucket.ttft[2] == 120 and sum(bucket.ttft) == 120
    item = aws.client("dynamodb").get_item(
        TableName=aws.env["TABLE_NAME"],
        Key={"PK": {"S": "HEALTH#acct_1#llm-1"}, "SK": {"S": f"BUCKET#{start:012d}"}},
    )["Item"]
    assert int(item["ttl"]["N"]) == start + BUCKET_RETENTION_SECONDS


def test_buckets_are_read_from_a_point_in_time(aws: AwsStack) -> None:
    store = DynamoHealthStore(aws.client("dynamodb"), aws.env["TABLE_NAME"])
    store.add_traffic([TrafficCounts("a", "l", start, requests=1) for start in (0, 300, 600, 900)])
    assert [b.bucket_start for b in store.buckets("a", "l", 600)] == [600, 900]
    assert store.buckets("a", "other", 0) == []


def test_the_state_write_is_conditional_on_the_revision(aws: AwsStack) -> None:
    store = DynamoHealthStore(aws.client("dynamodb"), aws.env["TABLE_NAME"])
    store.put_state("a", "l", HealthRecord(revision=1), expected_revision=0)
    with pytest.raises(VersionConflict):
        store.put_state("a", "l", HealthRecord(revision=1), expected_revision=0)
    store.put_state("a", "l", HealthRecord(state=HealthState.DEGRADED, revision=2), expected_revision=1)
    with pytest.raises(VersionConflict):
        store.put_state("a", "l", HealthRecord(revision=2), expected_revision=1)
    assert store.get_state("a", "l") == HealthRecord(state=HealthState.DEGRADED, revision=2)


def test_recorders_in_two_containers_flip_the_state_once(aws: AwsStack, bus_events: Any) -> None:
    recorders = [
        BufferedTrafficRecorder(aws.registry.health_service.record_traffic, interval_s=3600) for _ in range(2)
    ]
    for index in range(30):
        outcome = "upstream_server_error" if index % 2 else "ok"
        recorders[index % 2].stream_ended("acct_1", "llm-1", outcome, 120.0)
        recorders[0].stream_ended("acct_1", "llm-1", "token_expired", None)  # not counted
    for recorder in recorders:
        recorder.flush_now()
    health = aws.registry.health_service.summary("acct_1", "llm-1")
    assert health.state is HealthState.FAILING
    assert (health.window.requests, health.window.error_rate) == (30, 0.5)
    events = bus_events()
    assert [e["detail"]["state"] for e in events] == ["failing"]
    assert events[0]["source"] == "llm-gateway.health"


# ---------------------------------------------------------------- the schedule and the validator


def test_the_index_lists_valid_and_invalid_llms_of_every_account(
    aws: AwsStack, account: str, other_account: str, private_ok: None, fake: FakeProviderHandle
) -> None:
    valid = _valid_llm(aws, account, fake.url)
    pending = register_demo_llms(aws.registry, other_account, fake.url)["gemini"]
    llm = aws.registry.llm_repository.get(other_account, pending)
    assert llm is not None
    invalid = llm.model_copy(update={"status": LlmStatus.INVALID})
    aws.registry.llm_repository.replace(invalid, expected_version=llm.version)
    listed = {(k.account_id, k.llm_id) for k in aws.registry.llm_repository.revalidation_candidates()}
    assert listed == {(account, valid), (other_account, pending)}


def test_the_scheduler_enqueues_each_due_llm_delayed(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.revalidation_scheduler import handler

    aws.configure(REVALIDATION_INTERVAL_MINUTES="15")  # one window: every LLM is due in it
    _valid_llm(aws, account, fake.url)
    sqs = aws.client("sqs")
    url = aws.env["REVALIDATION_QUEUE_URL"]  # their own queue: registrations never wait behind them
    result = handler.lambda_handler(load_event("revalidation_scheduler/tick"), LambdaContext("scheduler"))
    assert result == {"enqueued": 1}
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        int(attributes["ApproximateNumberOfMessagesDelayed"]) + int(attributes["ApproximateNumberOfMessages"])
        == 1
    )
    again = handler.lambda_handler(load_event("revalidation_scheduler/tick"), LambdaContext("scheduler"))
    assert again == {"enqueued": 0}, "one scheduled run queued per LLM, however often the schedule ticks"


def test_a_failed_revalidation_keeps_status_and_degrades_health(
    aws: AwsStack,
    account: str,
    private_ok: None,
    fake: FakeProviderHandle,
    bus_events: Any,
    leak_collector: LeakCollector,
) -> None:
    from functions.validator import consumer as handler

    llm_id = _valid_llm(aws, account, fake.url)
    httpx.post(f"{fake.url}/_fake/reset").raise_for_status()  # forget the registration's requests
    fault = {"model": "fake-model", "fault": "status-500"}
    httpx.put(f"{fake.url}/_fake/faults", json=fault).raise_for_status()
    event = load_event("validator/sqs_revalidation_due")
    body = json.loads(event["Records"][0]["body"])
    assert body["detail-type"] == REVALIDATION_DUE
    body["detail"].update(accountId=account, llmId=llm_id)
    event["Records"][0]["body"] = json.dumps(body)
    result = handler.lambda_handler(event, LambdaContext("validator"))
    leak_collector.add("validator", result)
    assert result == {"batchItemFailures": []}
    assert aws.registry.llm_repository.get(account, llm_id).status is LlmStatus.VALID  # type: ignore[union-attr]
    report = aws.validator.report_repository.latest(account, llm_id)
    assert report is not None and not report.compatible
    assert report.details is not None and report.details["trigger"] == "schedule"
    assert report.details["probe"]["probeSet"] == "light"
    assert next(c for c in report.checks if c.id == "auth_probe").status.value == "skip"
    seen = httpx.get(f"{fake.url}/_fake/requests").json()["requests"]
    assert len(seen) == 1, "one streaming request, no wrong-key probe"
    (event_seen,) = bus_events()
    assert event_seen["detail"]["state"] == "degraded"
    assert event_seen["detail"]["lastCheck"]["errorCode"] == "upstream_server_error"


# ---------------------------------------------------------------- the registry's view


def test_the_llm_object_and_the_history_show_health(
    aws: AwsStack,
    invoke_registry: Invoke,
    account: str,
    other_account: str,
    private_ok: None,
    fake: FakeProviderHandle,
) -> None:
    llm_id = _valid_llm(aws, account, fake.url)
    recorder = BufferedTrafficRecorder(aws.registry.health_service.record_traffic, interval_s=3600)
    for index in range(25):
        recorder.stream_ended(account, llm_id, "upstream_timeout" if index < 6 else "ok", 300.0)
    recorder.flush_now()
    status, llm, _ = invoke_registry("registry/get", account, llm_id=llm_id)
    assert status == 200
    assert llm["health"]["state"] == "degraded"
    assert llm["health"]["window"] | {"ttftP50Ms": None, "ttftP95Ms": None} == {
        "requests": 25, "errorRate": 0.24, "errorsByCode": {"upstream_timeout": 6},
        "ttftP50Ms": None, "ttftP95Ms": None,
    }  # fmt: skip
    assert 250 <= llm["health"]["window"]["ttftP50Ms"] < 500
    event = load_event("registry/get_health")
    event["path"] = f"/v1/llms/{llm_id}/health"
    event["pathParameters"] = {"id": llm_id}
    status, history, _ = _health(event, account)
    assert status == 200 and history["hours"] == 24 and history["bucketSeconds"] == 300
    assert [b["requests"] for b in history["buckets"]] == [25]
    assert _health(event, other_account)[0] == 404


def test_history_hours_are_bounded(account: str, aws: AwsStack) -> None:
    event = load_event("registry/get_health")
    event["queryStringParameters"] = {"hours": "49"}
    event["multiValueQueryStringParameters"] = {"hours": ["49"]}
    assert _health(event, account)[0] == 400


def test_builtins_have_no_health_of_yours(account: str, invoke_registry: Invoke) -> None:
    status, llm, _ = invoke_registry("registry/get_builtin", account)
    assert status == 200 and "health" not in llm


def _health(event: dict[str, Any], account: str) -> tuple[int, Any, dict[str, str]]:
    from functions.registry import handler

    event["requestContext"]["authorizer"] = {"accountId": account, "principalId": account}
    result = handler.lambda_handler(event, LambdaContext("registry"))
    return int(result["statusCode"]), json.loads(result["body"]), result.get("headers") or {}
