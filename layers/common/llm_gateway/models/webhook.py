"""Per-account webhooks: where ``LlmHealthChanged`` is delivered, signed as Standard Webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from llm_gateway.models.common import ApiModel
from llm_gateway.models.llm import EndpointUrl

#: The event types a webhook can receive (Standard Webhooks ``type``).
EventType = Literal["llm.health_changed"]
HEALTH_CHANGED_TYPE: EventType = "llm.health_changed"


def _every_type() -> list[EventType]:
    return [HEALTH_CHANGED_TYPE]


class WebhookCreate(EndpointUrl):
    """``url`` follows the rules of an LLM URL (https, no credentials, an address the gateway may
    call); ``eventTypes`` defaults to every type there is."""

    description: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = (
        None
    )
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=10)] = Field(
        default_factory=_every_type
    )


class Webhook(ApiModel):
    id: str
    url: str
    description: str | None = None
    event_types: list[EventType]
    created_at: datetime
    #: False once the endpoint answered 410 Gone, or kept timing out: nothing more is sent to it.
    enabled: bool = True
    disabled_reason: str | None = None


class NewWebhook(Webhook):
    """Returned once, by ``POST /v1/webhooks``: the only time the signing secret is visible."""

    secret: str = Field(
        description="The signing secret (whsec_ + base64), for any Standard Webhooks library."
    )


class WebhookList(ApiModel):
    data: list[Webhook]


class StoredWebhook(Webhook):
    account_id: str
    secret_ref: str
    #: Deliveries in a row that got no complete answer within the deadline (reset by a 2xx).
    consecutive_timeouts: int = 0

    def public(self) -> Webhook:
        return Webhook.model_validate(
            self.model_dump(exclude={"account_id", "secret_ref", "consecutive_timeouts"})
        )


class WebhookDelivery(ApiModel):
    """One message of the webhook queue: one event for one endpoint, retried until it lands."""

    kind: Literal["delivery"] = "delivery"
    account_id: str
    webhook_id: str
    #: ``webhook-id``: the same on every retry, so a receiver can drop duplicates.
    message_id: str
    #: The exact body that is signed and sent.
    payload: str
    #: Attempts made before this message was put back for later (a deferral is not an attempt;
    #: the queue's receive count restarts with the new message).
    earlier_attempts: int = 0
    #: How often it was put back for later (its account's slots, its target's budget).
    deferrals: int = 0
