"""Feeds a function from an SQS queue exactly as Lambda's event source mapping would.

Batches of records, partial batch failures honoured: reported items stay on the queue (and
reach the dead-letter queue after ``maxReceiveCount``), the rest are deleted.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from llm_gateway_local.template import REGION


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody")
                or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class SqsPoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        batch_size: int = 10,
        on_error: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self._sqs, self._url, self._arn = sqs, queue_url, queue_arn
        self._invoke, self._batch = invoke, max(1, min(batch_size, 10))
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller:{queue_arn}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout_s: float = 0.5) -> None:
        """Stop polling. A long poll in flight ends when moto stops (the thread is a daemon)."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def poll_once(self, wait_seconds: int = 1) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        try:
            result = self._invoke(sqs_event(messages, self._arn)) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception as exc:  # a crashed invocation fails the whole batch, as in Lambda
            self._on_error(f"validator invocation failed: {type(exc).__name__}")
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                # Long polling, as Lambda's event source mapping does: moto wakes the call as soon
                # as a message arrives, and an idle stack makes one request every 20 s.
                self.poll_once(wait_seconds=20)
            except Exception as exc:
                self._on_error(f"polling failed: {type(exc).__name__}")
                self._stop.wait(1)
