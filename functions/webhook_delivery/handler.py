"""Webhook delivery: consumes the webhook queue, one message per invocation.

Two kinds of message arrive: an ``LlmHealthChanged`` event from the bus (its rule targets this
queue), which fans out into one delivery message per endpoint of the account; and a delivery,
which is signed and posted. A delivery that must be retried gets its visibility set to the
backoff (``ChangeMessageVisibility``) and is reported failed, so it comes back after that delay;
after ``maxReceiveCount`` receives the queue moves it to its dead-letter queue (and its alarm).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.composition import ServicesSlot, WebhookDeliveryServices
from llm_gateway.domain import webhooks
from llm_gateway.domain.fairness import Deferred, slot_backoff
from llm_gateway.models.queue_messages import HealthChangedEnvelope, WebhookQueueRecord
from llm_gateway.observability import get_logger, get_tracer

#: Built on the first message from this function's settings (``WebhookDeliverySettings``).
services = ServicesSlot(WebhookDeliveryServices)


class DeliveryFailed(Exception):
    """Reported as this record's failure: the queue redelivers it after the backoff."""


def record_handler(record: WebhookQueueRecord) -> None:
    s = services()
    delivery = record.body
    if isinstance(delivery, HealthChangedEnvelope):
        deliveries = webhooks.fan_out(s.webhook_repository, delivery.model_dump(by_alias=True))
        if deliveries:
            s.webhook_queue.send(deliveries)
        return
    attempts = delivery.earlier_attempts + int(record.attributes.ApproximateReceiveCount or 1)
    try:
        result = s.webhook_deliverer.deliver(delivery, attempts)
    except Deferred as deferred:  # the account's slots or the target's budget: later, not failed
        delay = max(deferred.delay_s, slot_backoff(delivery.deferrals))
        later = delivery.model_copy(
            update={"earlier_attempts": attempts - 1, "deferrals": delivery.deferrals + 1}
        )
        s.fairness.deferrals.defer(s.settings.webhook_queue_url, later.model_dump_json(), delay)
        return
    if result.retry_in_s is None:
        return
    get_logger().warning(
        "webhook delivery failed",
        extra={"webhook_id": delivery.webhook_id, "status": result.status, "retry_in_s": result.retry_in_s},
    )
    s.webhook_queue.retry_in(record.receiptHandle, result.retry_in_s)
    raise DeliveryFailed(f"attempt {attempts} of {delivery.message_id} failed")


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A receiver that fails is routine, not our error: the record is reported failed (and comes
    # back after its backoff) without failing the invocation, so the Errors alarm means our bugs.
    processor = BatchProcessor(
        event_type=EventType.SQS, model=WebhookQueueRecord, raise_on_entire_batch_failure=False
    )
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
