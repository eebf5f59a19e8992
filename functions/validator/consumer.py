"""The validation queues' consumer (``ValidatorFunction``): runs the conformance suite on an LLM
for a registration, an update, a requested run (``POST /validate`` through the bus) or the
re-validation schedule, one message per invocation.

It is the only management function allowed to decrypt customer keys; the REST routes are a
function of their own (``api.py``) over the same domain calls.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.composition import ServicesSlot
from llm_gateway.domain.conformance.budget import validator_budget
from llm_gateway.domain.fairness import (
    FULL_RUN_REQUESTS_PER_URL,
    LIGHT_RUN_REQUESTS_PER_URL,
    Deferred,
    account_slot,
    slot_backoff,
)
from llm_gateway.errors import ErrorCode
from llm_gateway.models.queue_messages import LlmChanged, RevalidationDue, ValidatorRecord
from llm_gateway.observability import get_logger, get_tracer
from llm_gateway.validation_services import ValidatorServices

#: Built on the first message from this function's settings (``ValidatorSettings``).
services = ServicesSlot(ValidatorServices)


def record_handler(record: ValidatorRecord, lambda_context: LambdaContext | None = None) -> None:
    """One queued validation, within what is left of this invocation (batch size 1 in the template).

    It runs in one of its account's slots and within its targets' request budgets; when either has
    no room it goes back on its queue for later (``domain.fairness``), and this validator serves
    another account meanwhile."""
    detail = record.body.detail
    revalidation = isinstance(record.body, RevalidationDue)  # from the re-validation schedule
    try:
        _validate(detail, revalidation, lambda_context)
    except Deferred as deferred:
        delay = max(deferred.delay_s, slot_backoff(detail.deferrals))
        get_logger().info(
            "validation deferred",
            extra={"llm_id": detail.llmId, "delay_s": round(delay), "why": str(deferred)},
        )
        later = record.body.model_copy(
            update={"detail": detail.model_copy(update={"deferrals": detail.deferrals + 1})}
        )
        services().fairness.deferrals.defer(
            services().validation_queue_for(revalidation), later.model_dump_json(by_alias=True), delay
        )


def _validate(detail: LlmChanged, revalidation: bool, lambda_context: LambdaContext | None) -> None:
    s, account, llm_id = services(), detail.accountId, detail.llmId
    llm = s.llm_repository.get(account, llm_id)
    if revalidation and (llm is None or s.validation_requests.pending(account, llm_id)):
        s.fairness.revalidation_marks.clear(account, llm_id)  # a requested run reports instead
        return
    slots = s.fairness.revalidation_slots if revalidation else s.fairness.validation_slots
    with account_slot(slots, account, "validations"):
        if llm is not None:
            per_url = LIGHT_RUN_REQUESTS_PER_URL if revalidation else FULL_RUN_REQUESTS_PER_URL
            s.fairness.outbound_limits.admit_or_defer([u.url for u in llm.urls], per_url)
        if revalidation:
            try:
                s.revalidator.revalidate(account, llm_id)
            finally:
                s.fairness.revalidation_marks.clear(account, llm_id)
            return
        remaining = lambda_context.get_remaining_time_in_millis() if lambda_context is not None else None
        timed_out = llm is not None and llm.validation.error_code == ErrorCode.UPSTREAM_TIMEOUT
        budget = validator_budget(remaining, timed_out_before=timed_out)
        report = s.validator.validate(account, llm_id, validation_id=detail.validationId, budget=budget)
        s.revalidator.after_validation(account, llm_id, report)


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS, model=ValidatorRecord)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
