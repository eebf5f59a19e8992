"""Validation's REST routes (``ValidatorApiFunction``): queue an on-demand run, serve the reports,
and run ``llms/test`` on an unsaved config within its 25 s budget.

An entry point of its own, apart from the queue consumer (``consumer.py``): these routes never
read a stored key, so this function's role cannot decrypt one.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
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
from llm_gateway.composition import ServicesSlot
from llm_gateway.domain import validation
from llm_gateway.domain.conformance.budget import config_test_budget
from llm_gateway.domain.fairness import (
    FULL_RUN_REQUESTS_PER_URL,
)
from llm_gateway.domain.registry import check_endpoint_urls
from llm_gateway.models.llm import LlmCreate
from llm_gateway.models.report import LatestReport, Report, ValidationRun
from llm_gateway.observability import get_logger, get_tracer
from llm_gateway.validation_services import ValidationApiServices

app = create_resolver()
#: Built on the first request from this function's settings (``ValidationApiSettings``).
services = ServicesSlot(ValidationApiServices)


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


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, services())
