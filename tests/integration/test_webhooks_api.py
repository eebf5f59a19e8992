"""Webhooks with moto: the webhooks handler on events/webhooks/*, the secret sealed in Secrets
Manager, and the delivery handler fanning out and posting to a real loopback receiver, retrying
with backoff until it answers 2xx."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from llm_gateway.domain.webhooks import MAX_WEBHOOKS_PER_ACCOUNT
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import LeakCollector, load_event
from tests.hostile import HostileServer
from tests.integration.conftest import AwsStack


def _call(
    name: str, account: str, *, body: Any = None, webhook_id: str | None = None
) -> tuple[int, Any, dict[str, Any]]:
    from functions.webhooks import handler

    event = load_event(name)
    event["requestContext"]["authorizer"] = {"accountId": account, "principalId": account}
    if body is not None:
        event["body"] = json.dumps(body)
    if webhook_id is not None:
        event["path"] = f"/v1/webhooks/{webhook_id}"
        event["pathParameters"] = {"id": webhook_id}
    result = handler.lambda_handler(event, LambdaContext("webhooks"))
    text = result.get("body") or ""
    headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return int(result["statusCode"]), (json.loads(text) if text else None), headers


class Receiver:
    """A webhook endpoint on loopback that answers what it is told, and keeps what it got."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[tuple[dict[str, str], str]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/hooks/llm-gateway"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def private_ok(aws: AwsStack, receiver: Receiver) -> None:
    aws.configure(PRIVATE_ENDPOINT_ORIGINS=receiver.origin)  # the receiver lives on loopback


def test_the_secret_is_shown_once_and_kept_sealed(
    aws: AwsStack, account: str, private_ok: None, receiver: Receiver, leak_collector: LeakCollector
) -> None:
    status, created, headers = _call(
        "webhooks/create", account, body={"url": receiver.url, "description": "pager"}
    )
    assert status == 201 and headers.get("Cache-Control") == "no-store"
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["eventTypes"] == ["llm.health_changed"]
    status, listing, _ = _call("webhooks/list", account)
    assert status == 200 and [w["id"] for w in listing["data"]] == [created["id"]]
    assert secret not in json.dumps(listing)
    assert secret not in json.dumps(aws.scan_table())
    name = f"llm-gateway/test/webhooks/{account}/{created['id']}"
    stored = aws.client("secretsmanager").get_secret_value(SecretId=name)
    assert "SecretBinary" in stored and secret.encode() not in stored["SecretBinary"]
    assert aws.webhooks.webhook_secrets.read(account, created["id"], name) == secret


def test_urls_pass_the_llm_address_policy(aws: AwsStack, account: str) -> None:
    for url in ("http://127.0.0.1:9/x", "https://169.254.169.254/latest", "https://10.0.0.1/hook"):
        status, error, _ = _call("webhooks/create", account, body={"url": url})
        assert (status, error["error"]["code"]) == (400, "endpoint_blocked"), url
    status, error, _ = _call("webhooks/create", account, body={"url": "https://u:p@hooks.example.com/x"})
    assert status == 400
    assert _call("webhooks/list", account)[1] == {"data": []}


def test_at_most_ten_and_deleted_ones_are_gone_for_everyone(
    aws: AwsStack, account: str, other_account: str, private_ok: None, receiver: Receiver
) -> None:
    ids = [
        _call("webhooks/create", account, body={"url": receiver.url})[1]["id"]
        for _ in range(MAX_WEBHOOKS_PER_ACCOUNT)
    ]
    status, error, _ = _call("webhooks/create", account, body={"url": receiver.url})
    assert (status, error["error"]["code"]) == (409, "too_many_webhooks")
    assert _call("webhooks/delete", other_account, webhook_id=ids[0])[0] == 404
    assert _call("webhooks/delete", account, webhook_id=ids[0])[0] == 204
    assert _call("webhooks/delete", account, webhook_id=ids[0])[0] == 404
    assert _call("webhooks/list", other_account)[1] == {"data": []}
    with pytest.raises(aws.client("secretsmanager").exceptions.ResourceNotFoundException):
        aws.client("secretsmanager").get_secret_value(
            SecretId=f"llm-gateway/test/webhooks/{account}/{ids[0]}"
        )


def _deliver(event: dict[str, Any], leak_collector: LeakCollector) -> dict[str, Any]:
    from functions.webhook_delivery import handler

    result: dict[str, Any] = handler.lambda_handler(event, LambdaContext("webhook-delivery"))
    leak_collector.add("webhook delivery", result)
    return result


def _received_as_event(aws: AwsStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Take the next message off the webhook queue as Lambda's event source would hand it over."""
    sqs = aws.client("sqs")
    url = aws.env["WEBHOOK_QUEUE_URL"]
    (message,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MaxNumberOfMessages=1)["Messages"]
    event = load_event("webhook_delivery/sqs_delivery_retry")
    record = event["Records"][0]
    record.update(
        body=message["Body"], receiptHandle=message["ReceiptHandle"], messageId=message["MessageId"]
    )
    record["attributes"]["ApproximateReceiveCount"] = message["Attributes"]["ApproximateReceiveCount"]
    return event, message


def test_an_event_fans_out_then_is_delivered_signed_and_retried_until_it_lands(
    aws: AwsStack, account: str, private_ok: None, receiver: Receiver, leak_collector: LeakCollector
) -> None:
    secret = _call("webhooks/create", account, body={"url": receiver.url})[1]["secret"]
    fan_out = load_event("webhook_delivery/sqs_health_changed")
    envelope = json.loads(fan_out["Records"][0]["body"])
    envelope["detail"]["accountId"] = account
    fan_out["Records"][0]["body"] = json.dumps(envelope)
    assert _deliver(fan_out, leak_collector) == {"batchItemFailures": []}
    assert receiver.received == [], "fan-out only queues; delivery is its own message"

    receiver.answers = [503]
    event, message = _received_as_event(aws)
    result = _deliver(event, leak_collector)
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    sqs, url = aws.client("sqs"), aws.env["WEBHOOK_QUEUE_URL"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == [], "hidden for its backoff"

    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert _deliver(event, leak_collector) == {"batchItemFailures": []}
    (first_headers, _), (headers, body) = receiver.received
    assert first_headers["webhook-id"] == headers["webhook-id"], "a retry keeps its webhook-id"
    payload = Verifier(secret).verify(body, headers)
    marker = {k.lower(): v for k, v in headers.items()}.get("x-llm-gateway-hop")
    assert marker == aws.delivery.hop_marker.value, "a delivery carries the hop marker like every call"
    assert payload["type"] == "llm.health_changed"
    assert payload["data"]["state"] == "failing" and payload["data"]["llmId"] == envelope["detail"]["llmId"]
    assert payload["data"]["lastCheck"]["failedChecks"][0]["hint"]


def test_410_gone_disables_the_webhook(
    aws: AwsStack, account: str, private_ok: None, receiver: Receiver, leak_collector: LeakCollector
) -> None:
    created = _call("webhooks/create", account, body={"url": receiver.url})[1]
    fan_out = load_event("webhook_delivery/sqs_health_changed")
    envelope = json.loads(fan_out["Records"][0]["body"])
    envelope["detail"]["accountId"] = account
    fan_out["Records"][0]["body"] = json.dumps(envelope)
    _deliver(fan_out, leak_collector)
    receiver.answers = [410]
    event, _ = _received_as_event(aws)
    assert _deliver(event, leak_collector) == {"batchItemFailures": []}
    (listed,) = _call("webhooks/list", account)[1]["data"]
    assert listed["id"] == created["id"] and listed["enabled"] is False
    assert "410" in listed["disabledReason"]
    _deliver(fan_out, leak_collector)
    assert aws.client("sqs").receive_message(QueueUrl=aws.env["WEBHOOK_QUEUE_URL"]).get("Messages", []) == []


def test_a_dripping_receiver_is_cut_at_the_deadline_and_disabled_after_repeated_timeouts(
    aws: AwsStack, account: str, leak_collector: LeakCollector
) -> None:
    """One header line every 0.2 s never trips a read timeout; each attempt still ends at its 1 s
    deadline, and the second timeout in a row disables the endpoint, saying why."""
    hostile = HostileServer(interval_s=0.2, limit_s=30).start()
    try:
        aws.configure(
            PRIVATE_ENDPOINT_ORIGINS=hostile.origin,
            WEBHOOK_DELIVERY_DEADLINE_SECONDS="1",
            WEBHOOK_TIMEOUTS_BEFORE_DISABLE="2",
        )
        created = _call("webhooks/create", account, body={"url": hostile.url("/drip/hook")})[1]
        fan_out = load_event("webhook_delivery/sqs_health_changed")
        envelope = json.loads(fan_out["Records"][0]["body"])
        envelope["detail"]["accountId"] = account
        fan_out["Records"][0]["body"] = json.dumps(envelope)
        _deliver(fan_out, leak_collector)
        event, message = _received_as_event(aws)
        assert _deliver(event, leak_collector) == {
            "batchItemFailures": [{"itemIdentifier": message["MessageId"]}]
        }
        (first,) = hostile.hits("/drip/hook")
        deadline = time.monotonic() + 5
        while first.held_s is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.held_s is not None, "the receiver saw the attempt end"
        (listed,) = _call("webhooks/list", account)[1]["data"]
        assert listed["enabled"] is True, "one timeout is not yet a pattern"

        event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
        assert _deliver(event, leak_collector) == {"batchItemFailures": []}, "disabled: nothing to retry"
        (listed,) = _call("webhooks/list", account)[1]["data"]
        assert listed["id"] == created["id"] and listed["enabled"] is False
        assert "2 deliveries in a row" in listed["disabledReason"] and "1 s" in listed["disabledReason"]
    finally:
        hostile.close()
