"""Validator function: validates LLMs from the SQS queue (fed by the bus), and on demand over REST.

It is the only management function allowed to decrypt customer keys.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json

from llm_gateway import composition
from llm_gateway.api import (
    LlmId,
    account_id,
    create_resolver,
    error_responses,
    json_response,
    ok_response,
    resolve,
)
from llm_gateway.domain.registry import check_endpoint_urls
from llm_gateway.domain.revalidation import REVALIDATION_DUE
from llm_gateway.errors import Forbidden, NotFound
from llm_gateway.models.llm import LlmCreate
from llm_gateway.models.report import Report
from llm_gateway.observability import get_logger, get_tracer

composition.require_settings()
app = create_resolver("LLM Gateway validation API")


class LlmChanged(BaseModel):
    accountId: str
    llmId: str
    version: int


class LlmChangedEvent(BaseModel):
    """The EventBridge envelope, reduced to what validation reads (moto omits ``account``)."""

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: LlmChanged


class LlmChangedRecord(SqsRecordModel):
    body: Json[LlmChangedEvent]


def _report_response(report: Report) -> Response[Any]:
    return json_response(200, report.to_json_dict())


_REPORT = ok_response(Report, "The conformance report")


def _own_llm(account: str, llm_id: str) -> None:
    """404 for anything not this account's (same as missing); built-ins are not ours to validate."""
    llm = composition.registry().get(account, llm_id)
    if llm.is_default or llm.id in _builtin_ids():
        raise Forbidden("Built-in LLMs are validated by the platform.", code="builtin_read_only")


def _builtin_ids() -> set[str]:
    from llm_gateway.catalog import builtin_llms

    return set(builtin_llms())


@app.post(
    "/v1/llms/<llm_id>/validate",
    summary="Run the conformance suite now",
    responses=_REPORT | error_responses(401, 403, 404),
)
def validate_now(llm_id: LlmId) -> Response[Any]:
    account = account_id(app)
    _own_llm(account, llm_id)
    report = composition.validator().validate(account, llm_id)
    if report is None:
        raise NotFound(f"No LLM with id {llm_id!r}.", code="llm_not_found")
    return _report_response(report)


@app.get(
    "/v1/llms/<llm_id>/validation",
    summary="The latest conformance report",
    responses=_REPORT | error_responses(401, 404),
)
def latest_report(llm_id: LlmId) -> Response[Any]:
    account = account_id(app)
    _own_llm(account, llm_id)
    report = composition.report_repository().latest(account, llm_id)
    if report is None:
        raise NotFound("This LLM has not been validated yet.", code="validation_not_found")
    return _report_response(report)


@app.post(
    "/v1/llms/test",
    summary="Run the conformance suite on an unsaved config (nothing is stored)",
    responses=_REPORT | error_responses(400, 401, 413),
)
def test_config(request: Annotated[LlmCreate, Body()]) -> Response[Any]:
    account_id(app)
    check_endpoint_urls(composition.url_guard(), request.urls)
    return _report_response(composition.config_probe()(request, request.secret.get_secret_value()))


def record_handler(record: LlmChangedRecord) -> None:
    detail = record.body.detail
    if record.body.detail_type == REVALIDATION_DUE:  # from the re-validation schedule
        composition.revalidator().revalidate(detail.accountId, detail.llmId)
        return
    report = composition.validator().validate(detail.accountId, detail.llmId)
    composition.revalidator().after_validation(detail.accountId, detail.llmId, report)


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        processor = BatchProcessor(event_type=EventType.SQS, model=LlmChangedRecord)
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    return resolve(app, event, context)
