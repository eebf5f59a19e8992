"""What arrives on the two work queues, as typed messages: each consumer tells its kinds apart by
the message's own discriminator instead of probing a dict.

- The validation queues carry EventBridge envelopes (the bus's rules target them): a change or
  a requested run (``ValidationWanted``) or the schedule's ``RevalidationDue``.
- The webhook queue carries a bus envelope (``HealthChangedEnvelope``, fanned out per endpoint)
  or one ``WebhookDelivery`` (``kind: "delivery"``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Json, Tag

from llm_gateway.models.webhook import WebhookDelivery


class LlmChanged(BaseModel):
    """The detail of a validation message: which LLM, and the run's id when one was requested."""

    accountId: str
    llmId: str
    version: int | None = None
    validationId: str | None = None
    #: How often this run was put back for later (its account's slots, its target's budget).
    deferrals: int = 0


class _Envelope(BaseModel):
    """The EventBridge envelope, reduced to what the consumers read (moto omits ``account``)."""

    model_config = ConfigDict(populate_by_name=True)

    source: str
    id: str | None = None
    time: str | None = None


class ValidationWanted(_Envelope):
    """A registration, an update or ``POST /validate``: a full run, reported to the customer."""

    detail_type: Literal["LLM Registered", "LLM Updated", "LLM Validation Requested"] = Field(
        alias="detail-type"
    )
    detail: LlmChanged


class RevalidationDue(_Envelope):
    """The re-validation schedule: a light run in the re-validation slots."""

    detail_type: Literal["LLM Revalidation Due"] = Field(alias="detail-type")
    detail: LlmChanged


ValidatorMessage = Annotated[ValidationWanted | RevalidationDue, Field(discriminator="detail_type")]


class ValidatorRecord(SqsRecordModel):
    body: Json[ValidatorMessage]


class HealthChangedEnvelope(_Envelope):
    """A bus event for the account's webhooks (its type decides which endpoints take it)."""

    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any] = Field(default_factory=dict)


def _webhook_message_kind(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "delivery" if kind == "delivery" else "event"


WebhookQueueMessage = Annotated[
    Annotated[WebhookDelivery, Tag("delivery")] | Annotated[HealthChangedEnvelope, Tag("event")],
    Discriminator(_webhook_message_kind),
]


class WebhookQueueRecord(SqsRecordModel):
    body: Json[WebhookQueueMessage]
