"""Validator function: validates LLMs from the SQS queue (fed by the bus), queues on-demand runs,
serves their reports, and runs ``llms/test`` synchronously within its 25 s budget.

It is the only management function allowed to decrypt customer keys.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api import (
    LlmId,
    account_id,
    create_resolver,
    error_responses,
    model_response,
    ok_response,
    request_origins,
    resolve,
)
from llm_gateway.composition import ServicesSlot, ValidatorServices
from llm_gateway.domain import validation
from llm_gateway.domain.conformance.budget import config_test_budget, validator_budget
from llm_gateway.domain.fairness import (
    FULL_RUN_REQUESTS_PER_URL,
    LIGHT_RUN_REQUESTS_PER_URL,
    Deferred,
    account_slot,
    slot_backoff,
)
from llm_gateway.domain.registry import check_endpoint_urls
from llm_gateway.errors import ErrorCode
from llm_gateway.models.llm import LlmCreate
from llm_gateway.models.queue_messages import LlmChanged, RevalidationDue, ValidatorRecord
from llm_gateway.models.report import LatestReport, Report, ValidationRun
from llm_gateway.observability import get_logger, get_tracer

app = create_resolver()
#: Built on the first request or message from this function's settings (``ValidatorSettings``).
services = ServicesSlot(ValidatorServices)


_REPORT = ok_response(Report, "The conformance report")


def _remaining_ms() -> int | None:
    context = getattr(app, "lambda_context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


def _validation_location(llm_id: str) -> str:
    """Where the report will be, under the prefix the client called (stage, base path mapping)."""
    event = app.current_event.raw_event
    path = str(event.get("path") or "")
    full = str((event.get("requestContext") or {}).get("path") or path)
    prefix = full[: -len(path)] if path and full.endswith(path) else ""
    return f"{prefix}/v1/llms/{llm_id}/validation"


_ACCEPTED: dict[int, OpenAPIResponse] = {
    202: {
        "description": "Accepted: the run is queued (or the pending run is joined); the report will be "
        "at the Location",
        "headers": {
            "Location": {"description": "GET /v1/llms/{id}/validation", "schema": {"type": "string"}}
        },
        "content": {"application/json": {"model": ValidationRun}},
    }
}


@app.post(
    "/v1/llms/<llm_id>/validate",
    summary="Queue a conformance run now; the report arrives at GET /v1/llms/{id}/validation",
    responses=_ACCEPTED | error_responses(401, 403, 404),
)
def validate_now(llm_id: LlmId) -> Response[ValidationRun]:
    s = services()
    llm, run = validation.request_validation(s.llm_repository, s.validation_requests, account_id(app), llm_id)
    return model_response(run, 202, headers={"Location": _validation_location(llm.id)})


@app.get(
    "/v1/llms/<llm_id>/validation",
    summary="The latest conformance report, and the run still in progress (pending)",
    responses=ok_response(LatestReport, "The latest report; pending names a run not finished yet")
    | ok_response(ValidationRun, "No report yet: a requested run is queued or running", 202)
    | error_responses(401, 403, 404),
)
def latest_report(llm_id: LlmId) -> Response[LatestReport | ValidationRun]:
    s = services()
    found = validation.latest_report(
        s.llm_repository, s.validation_requests, s.report_repository, account_id(app), llm_id
    )
    return model_response(found, 200 if isinstance(found, LatestReport) else 202)


@app.post(
    "/v1/llms/test",
    summary="Run the conformance suite on an unsaved config (nothing is stored; answers within 25 s)",
    responses=_REPORT | error_responses(400, 401, 413, 429),
)
def test_config(request: Annotated[LlmCreate, Body()]) -> Report:
    account_id(app)
    s = services()
    check_endpoint_urls(s.url_guard, request.urls, request_origins(app, s.own_origins))
    s.fairness.outbound_limits.admit([u.url for u in request.urls], FULL_RUN_REQUESTS_PER_URL)
    budget = config_test_budget(_remaining_ms())
    return s.config_probe(request, request.secret.get_secret_value(), budget)


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
    if "Records" in event:
        processor = BatchProcessor(event_type=EventType.SQS, model=ValidatorRecord)
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    return resolve(app, event, context, services())
