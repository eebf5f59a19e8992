"""The queue consumers tell their messages apart by type: a change, a requested run or the
re-validation schedule on the validation queues; a bus event or a delivery on the webhook queue."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.domain.registry import LLM_REGISTERED, LLM_UPDATED
from llm_gateway.domain.revalidation import REVALIDATION_DUE
from llm_gateway.domain.validation import LLM_VALIDATION_REQUESTED
from llm_gateway.models.queue_messages import (
    HealthChangedEnvelope,
    RevalidationDue,
    ValidationWanted,
    ValidatorRecord,
    WebhookQueueRecord,
)
from llm_gateway.models.webhook import WebhookDelivery


def sqs_record(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "1700000000000",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def bus_event(detail_type: str, **detail: Any) -> dict[str, Any]:
    return {
        "source": "llm-gateway",
        "detail-type": detail_type,
        "detail": {"accountId": "a", "llmId": "l", **detail},
    }


@pytest.mark.parametrize("detail_type", [LLM_REGISTERED, LLM_UPDATED, LLM_VALIDATION_REQUESTED])
def test_changes_and_requested_runs_are_full_validations(detail_type: str) -> None:
    message = ValidatorRecord.model_validate(sqs_record(bus_event(detail_type, validationId="v"))).body
    assert isinstance(message, ValidationWanted)
    assert (message.detail.llmId, message.detail.validationId) == ("l", "v")


def test_the_schedule_is_a_revalidation_and_keeps_its_deferrals() -> None:
    message = ValidatorRecord.model_validate(sqs_record(bus_event(REVALIDATION_DUE, deferrals=3))).body
    assert isinstance(message, RevalidationDue)
    assert message.detail.deferrals == 3
    # What a deferral puts back on the queue reads as the same kind of message.
    again = ValidatorRecord.model_validate(sqs_record(json.loads(message.model_dump_json(by_alias=True))))
    assert isinstance(again.body, RevalidationDue)


def test_an_unknown_event_on_a_validation_queue_fails_its_record() -> None:
    with pytest.raises(ValidationError, match=r"detail-type|detail_type"):
        ValidatorRecord.model_validate(sqs_record(bus_event("LLM Deleted")))


def test_the_webhook_queue_has_deliveries_and_bus_events() -> None:
    delivery = WebhookDelivery(account_id="a", webhook_id="w", message_id="m", payload="{}")
    parsed = WebhookQueueRecord.model_validate(sqs_record(delivery.to_json_dict())).body
    assert parsed == delivery
    event = WebhookQueueRecord.model_validate(sqs_record(bus_event("LLM Health Changed"))).body
    assert isinstance(event, HealthChangedEnvelope)
    assert event.model_dump(by_alias=True)["detail-type"] == "LLM Health Changed"
