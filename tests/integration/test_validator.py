"""The validator function in-process on events/validator files, with moto and a loopback fake provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from llm_gateway.models.llm import LlmStatus
from llm_gateway_fake_provider.server import FakeProviderHandle, start_in_thread
from llm_gateway_local.demo import register_demo_llms
from llm_gateway_local.front_door import LambdaContext
from llm_gateway_local.sqs_poller import SqsPoller
from tests.conftest import CANARY, LeakCollector, load_event
from tests.integration.conftest import AwsStack


@pytest.fixture
def fake() -> Iterator[FakeProviderHandle]:
    with start_in_thread() as handle:
        yield handle


@pytest.fixture
def private_ok(aws: AwsStack, fake: FakeProviderHandle) -> None:
    """The fake provider lives on loopback: its origin is allowed, as in the local stack."""
    aws.configure(PRIVATE_ENDPOINT_ORIGINS=fake.url)


def invoke(event: dict[str, Any], leak_collector: LeakCollector) -> dict[str, Any]:
    from functions.validator import api, consumer

    entry = consumer if "Records" in event else api  # the queue's consumer, or the REST routes
    result: dict[str, Any] = entry.lambda_handler(event, LambdaContext("validator"))
    leak_collector.add("validator result", result)
    return result


def sqs_event_for(account: str, llm_id: str, name: str = "validator/sqs_llm_registered") -> dict[str, Any]:
    event = load_event(name)
    body = json.loads(event["Records"][0]["body"])
    body["detail"].update(accountId=account, llmId=llm_id)
    event["Records"][0]["body"] = json.dumps(body)
    return event


def test_a_registered_llm_is_validated_from_its_sqs_event(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["openai"]
    assert aws.registry.llm_repository.get(account, llm_id).status is LlmStatus.PENDING  # type: ignore[union-attr]
    result = invoke(sqs_event_for(account, llm_id), leak_collector)
    assert result == {"batchItemFailures": []}
    stored = aws.registry.llm_repository.get(account, llm_id)
    assert stored is not None
    assert stored.status is LlmStatus.VALID
    report = aws.validator.report_repository.latest(account, llm_id)
    assert report is not None
    assert report.compatible


def test_a_malformed_record_fails_alone(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["gemini"]
    event = load_event("validator/sqs_partial_failure")
    good = json.loads(event["Records"][0]["body"])
    good["detail"].update(accountId=account, llmId=llm_id)
    event["Records"][0]["body"] = json.dumps(good)
    result = invoke(event, leak_collector)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert aws.registry.llm_repository.get(account, llm_id).status is LlmStatus.VALID  # type: ignore[union-attr]


def test_every_probe_carries_this_deployments_hop_marker(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    """A probe that leads back to the gateway is refused there (508), never served (issue 9)."""
    fake.state.reset()
    for llm_id in register_demo_llms(aws.registry, account, fake.url).values():
        invoke(sqs_event_for(account, llm_id), leak_collector)
    marker = aws.registry.hop_marker.headers
    probes = fake.state.requests()
    assert len(probes) >= 6, "a main request and a wrong-key request per spec"
    for probe in probes:
        assert probe["headers"]["x-llm-gateway-hop"] == marker["X-LLM-Gateway-Hop"]
        assert probe["headers"]["via"] == marker["Via"]


def test_an_event_for_a_deleted_llm_is_a_no_op(
    account: str, private_ok: None, leak_collector: LeakCollector
) -> None:
    result = invoke(sqs_event_for(account, "00000000-0000-4000-8000-000000000000"), leak_collector)
    assert result == {"batchItemFailures": []}


def test_a_failing_staged_key_is_refused_and_the_old_one_stays(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["azure_openai"]
    invoke(sqs_event_for(account, llm_id), leak_collector)
    aws.registry.credential_store.stage_pending(account, llm_id, CANARY)
    invoke(sqs_event_for(account, llm_id, "validator/sqs_llm_updated"), leak_collector)
    stored = aws.registry.llm_repository.get(account, llm_id)
    assert stored is not None
    assert stored.status is LlmStatus.VALID
    assert "refused" in (stored.validation.summary or "")
    assert not aws.registry.credential_store.has_pending(account, llm_id)
    assert aws.registry.credential_store.read(account, llm_id, stored.secret_ref) == "fake-key"
    report = aws.validator.report_repository.latest(account, llm_id)
    assert report is not None
    assert report.details is not None
    assert report.details["rotation"] == "refused"


def test_a_passing_staged_key_is_promoted(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["openai"]
    store = aws.registry.credential_store
    stored = aws.registry.llm_repository.get(account, llm_id)
    assert stored is not None
    store.stage_pending(account, llm_id, "fake-key")
    invoke(sqs_event_for(account, llm_id, "validator/sqs_llm_updated"), leak_collector)
    assert not store.has_pending(account, llm_id)
    report = aws.validator.report_repository.latest(account, llm_id)
    assert report is not None
    assert report.details is not None
    assert report.details["rotation"] == "accepted"


def test_a_copied_key_blob_cannot_be_decrypted_for_another_account(
    aws: AwsStack, account: str, other_account: str, private_ok: None, fake: FakeProviderHandle
) -> None:
    """SECURITY 8: the KMS context binds the key to (tenant, llm); a copied blob fails closed."""
    from llm_gateway.errors import CredentialsUnavailable

    mine = register_demo_llms(aws.registry, account, fake.url)["openai"]
    theirs = register_demo_llms(aws.registry, other_account, fake.url)["openai"]
    sm = aws.client("secretsmanager")
    store = aws.registry.credential_store
    blob = sm.get_secret_value(SecretId=store.secret_name(account, mine))["SecretBinary"]
    sm.put_secret_value(SecretId=store.secret_name(other_account, theirs), SecretBinary=blob)
    their_llm = aws.registry.llm_repository.get(other_account, theirs)
    assert their_llm is not None
    with pytest.raises(CredentialsUnavailable):
        store.read(other_account, theirs, their_llm.secret_ref)
    my_llm = aws.registry.llm_repository.get(account, mine)
    assert my_llm is not None
    with pytest.raises(CredentialsUnavailable):  # a reference copied from another account
        store.read(other_account, theirs, my_llm.secret_ref)


def test_kms_sees_exactly_the_tenant_context(
    aws: AwsStack, account: str, private_ok: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECURITY 9: every encrypt/decrypt of a customer key names {tenant_id, llm_config_id}."""
    store = aws.registry.credential_store
    kms = store._kms
    seen: list[dict[str, str]] = []
    for name in ("encrypt", "decrypt"):
        original = getattr(kms, name)

        def spy(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(kwargs["EncryptionContext"])
            return _original(*args, **kwargs)

        monkeypatch.setattr(kms, name, spy)
    ref = store.create(account, "llm-1", CANARY)
    assert store.read(account, "llm-1", ref) == CANARY
    assert seen == [{"tenant_id": account, "llm_config_id": "llm-1"}] * 2


def test_dead_letter_after_three_failed_receives(aws: AwsStack) -> None:
    """The template's redrive policy, exercised through the local poller: a record that always
    fails reaches the DLQ after 3 receives."""
    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName="llm-gateway-test-validation")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="llm-gateway-test-validation-dlq")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "0"})
    sqs.send_message(QueueUrl=queue, MessageBody="{not json")
    from functions.validator import consumer as handler

    poller = SqsPoller(sqs, queue, "arn:aws:sqs:us-east-1:123456789012:llm-gateway-test-validation",
                       lambda event: handler.lambda_handler(event, LambdaContext("validator")))  # fmt: skip
    for _ in range(4):
        poller.poll_once(wait_seconds=0)
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ["{not json"]


def api_event(name: str, account: str, llm_id: str | None = None, body: Any = None) -> dict[str, Any]:
    event = load_event(name)
    event["requestContext"]["authorizer"] = {"accountId": account, "principalId": account}
    if llm_id is not None:
        event["path"] = event["path"].replace("3f2b8c1e-0d4a-4c55-9e1b-7a6f5d4c3b2a", llm_id)
        event["pathParameters"] = {"id": llm_id}
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def drain_validation_queue(aws: AwsStack, leak_collector: LeakCollector) -> int:
    """Run the validator on everything queued, one record per invocation as the template says."""
    from functions.validator import consumer as handler

    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName="llm-gateway-test-validation")["QueueUrl"]
    arn = "arn:aws:sqs:us-east-1:123456789012:llm-gateway-test-validation"
    results: list[Any] = []

    def run(event: dict[str, Any]) -> Any:
        results.append(handler.lambda_handler(event, LambdaContext("validator", timeout_seconds=90)))
        return results[-1]

    poller = SqsPoller(sqs, queue, arn, run, batch_size=1)
    while poller.poll_once(wait_seconds=0):
        pass
    leak_collector.add("validator results", results)
    return len(results)


def test_validate_now_queues_a_run_whose_report_arrives_at_validation(
    aws: AwsStack,
    account: str,
    other_account: str,
    private_ok: None,
    fake: FakeProviderHandle,
    leak_collector: LeakCollector,
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["gemini"]
    missing = invoke(api_event("validator/latest_report", account, llm_id), leak_collector)
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"]["code"] == "validation_not_found"
    assert drain_validation_queue(aws, leak_collector) == 4  # the four demo registrations (one per spec)
    first = json.loads(invoke(api_event("validator/latest_report", account, llm_id), leak_collector)["body"])
    assert first["pending"] is None and first["validationId"].startswith("val_")

    accepted = invoke(api_event("validator/validate_now", account, llm_id), leak_collector)
    assert accepted["statusCode"] == 202
    run = json.loads(accepted["body"])
    assert run["status"] == "queued" and run["validationId"] != first["validationId"]
    assert accepted["multiValueHeaders"]["Location"][0].endswith(f"/v1/llms/{llm_id}/validation")
    # Asked again while queued: the same run, nothing more queued.
    again = invoke(api_event("validator/validate_now", account, llm_id), leak_collector)
    assert json.loads(again["body"])["validationId"] == run["validationId"]
    waiting = json.loads(
        invoke(api_event("validator/latest_report", account, llm_id), leak_collector)["body"]
    )
    assert waiting["validationId"] == first["validationId"]
    assert waiting["pending"]["validationId"] == run["validationId"]

    assert drain_validation_queue(aws, leak_collector) == 1  # bus -> queue -> validator, one run
    done = json.loads(invoke(api_event("validator/latest_report", account, llm_id), leak_collector)["body"])
    assert done["validationId"] == run["validationId"] and done["pending"] is None
    assert done["compatible"] is True
    theirs = invoke(api_event("validator/validate_now", other_account, llm_id), leak_collector)
    assert theirs["statusCode"] == 404


def test_a_run_requested_before_any_report_answers_202_until_it_reports(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["openai"]
    run = json.loads(invoke(api_event("validator/validate_now", account, llm_id), leak_collector)["body"])
    pending = invoke(api_event("validator/latest_report", account, llm_id), leak_collector)
    assert pending["statusCode"] == 202
    assert json.loads(pending["body"]) == run
    drain_validation_queue(aws, leak_collector)
    latest = invoke(api_event("validator/latest_report", account, llm_id), leak_collector)
    assert latest["statusCode"] == 200 and json.loads(latest["body"])["pending"] is None


def test_test_route_refuses_blocked_endpoints_before_any_connect(
    account: str, leak_collector: LeakCollector
) -> None:
    body = json.loads(load_event("validator/test_config")["body"])
    body["urls"] = [{"url": "https://169.254.169.254/latest"}]
    result = invoke(api_event("validator/test_config", account, body=body), leak_collector)
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"]["code"] == "endpoint_blocked"


def test_a_requested_run_from_its_sample_event_reports_under_its_id(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    llm_id = register_demo_llms(aws.registry, account, fake.url)["azure_openai"]
    event = sqs_event_for(account, llm_id, "validator/sqs_validation_requested")
    run_id = json.loads(event["Records"][0]["body"])["detail"]["validationId"]
    assert invoke(event, leak_collector) == {"batchItemFailures": []}
    report = aws.validator.report_repository.latest(account, llm_id)
    assert report is not None and report.validation_id == run_id and report.compatible
