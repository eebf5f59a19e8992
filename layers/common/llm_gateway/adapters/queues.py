"""SQS senders: re-validations onto the validation queue, webhook deliveries onto the webhook queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.revalidation import LlmKey, message_body
from llm_gateway.models.webhook import WebhookDelivery

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH = 10


class QueueSendFailed(Exception):
    """Some messages were refused; the caller's invocation fails and is retried as a whole."""


def _send(sqs: SQSClient, queue_url: str, entries: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(entries), SQS_BATCH):
        chunk = list(entries[start : start + SQS_BATCH])
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)  # type: ignore[arg-type]
        if response.get("Failed"):
            raise QueueSendFailed(f"{len(response['Failed'])} of {len(chunk)} messages were refused")


class SqsRevalidationQueue:
    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs, self._url = sqs, queue_url

    def enqueue(self, due: list[tuple[LlmKey, int]]) -> None:
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(message_body(key)), "DelaySeconds": delay}
            for i, (key, delay) in enumerate(due)
        ]
        _send(self._sqs, self._url, entries)


class SqsWebhookQueue:
    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs, self._url = sqs, queue_url

    @property
    def url(self) -> str:
        return self._url

    def send(self, deliveries: list[WebhookDelivery]) -> None:
        entries = [{"Id": str(i), "MessageBody": d.model_dump_json()} for i, d in enumerate(deliveries)]
        _send(self._sqs, self._url, entries)

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """Backoff: the message reappears after ``seconds`` (its invocation then reports it failed)."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


class SqsDeferrals:
    """Puts a message back on its queue for later, as a new message: its receive count (the
    attempts that lead to the dead-letter queue) starts again, since waiting is not failing."""

    def __init__(self, sqs: SQSClient) -> None:
        self._sqs = sqs

    def defer(self, queue_url: str, body: str, delay_s: float) -> None:
        delay = max(1, min(MAX_DELAY_S, int(delay_s + 0.999)))
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay)


#: SQS ``DelaySeconds`` tops out at 15 minutes.
MAX_DELAY_S = 900
