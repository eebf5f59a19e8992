"""Registry function: /v1/llms routes. Thin: parse and validate, one domain call, a response model."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api import (
    LlmId,
    account_id,
    create_resolver,
    error_responses,
    header,
    json_response,
    model_response,
    ok_response,
    request_origins,
    resolve,
)
from llm_gateway.composition import RegistryServices, ServicesSlot
from llm_gateway.domain.request_log import RequestLogService
from llm_gateway.errors import BadRequest, Conflict, NotFound
from llm_gateway.models.health import LlmHealthHistory
from llm_gateway.models.llm import Llm, LlmCreate, LlmList, LlmUpdate
from llm_gateway.models.request_log import LlmUsage, RequestPage
from llm_gateway.observability import get_logger, get_tracer
from llm_gateway.request_log_wiring import request_log_service

app = create_resolver()
#: Built on the first request from this function's settings (``RegistrySettings``).
services = ServicesSlot(RegistryServices)
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def own_origins(app: Any) -> Any:
    return request_origins(app, services().own_origins)


@lru_cache(maxsize=1)
def _idempotent_create(s: RegistryServices) -> tuple[IdempotencyConfig, Any]:
    """Powertools Idempotency keyed by (account, key): two accounts never share a cached response,
    and the same key with another body is refused. Built once per services object (container)."""
    config = IdempotencyConfig(
        event_key_jmespath="[accountId, idempotencyKey]",
        payload_validation_jmespath="bodyDigest",
        expires_after_seconds=s.settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
        response_hook=replayed,
    )
    decorate = idempotent_function(
        data_keyword_argument="scope",
        persistence_store=s.idempotency_store,
        config=config,
        output_serializer=PydanticSerializer(model=Llm),
    )
    return config, decorate(create_once)


def create_once(scope: dict[str, str], request: LlmCreate) -> Llm:
    """Runs once per (account, key); a repeat is answered from the stored record by ``replayed``."""
    return services().registry.create(scope["accountId"], request, own=own_origins(app))


def replayed(response: Any, idempotent_data: DataRecord) -> Llm:
    """Powertools calls this on a replay only: never hand back the id of an LLM deleted since."""
    llm = Llm.model_validate(response)
    services().registry.check_replay(account_id(app), llm.id)
    return llm


@app.post(
    "/v1/llms",
    summary="Register an LLM endpoint",
    responses=ok_response(Llm, "Created", 201) | error_responses(400, 401, 409, 413),
)
def create_llm(request: Annotated[LlmCreate, Body()]) -> Response[Llm]:
    account = account_id(app)
    key = header(app, "Idempotency-Key")
    if key is None:
        return model_response(services().registry.create(account, request, own=own_origins(app)), 201)
    if not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters.", code="invalid_idempotency_key"
        )
    raw_body = app.current_event.get("body") or ""
    scope = {
        "accountId": account,
        "idempotencyKey": key,
        "bodyDigest": hashlib.sha256(raw_body.encode("utf-8", "surrogatepass")).hexdigest(),
    }
    try:
        config, once = _idempotent_create(services())
        if app.lambda_context is not None:
            config.register_lambda_context(app.lambda_context)
        return model_response(once(scope=scope, request=request), 201)
    except IdempotencyAlreadyInProgressError:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.", code="idempotency_in_progress"
        ) from None
    except IdempotencyValidationError:
        raise Conflict(
            "This Idempotency-Key was already used with a different body.", code="idempotency_key_reused"
        ) from None


@app.get(
    "/v1/llms",
    summary="List your LLMs (and the built-ins with includeDefaults=true)",
    responses=ok_response(LlmList) | error_responses(400, 401),
)
def list_llms(
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=100)] = 20,
    search: Annotated[str, Query(max_length=200)] = "",
    include_defaults: Annotated[bool, Query(alias="includeDefaults")] = False,
) -> LlmList:
    return services().registry.list(
        account_id(app),
        page=page,
        per_page=per_page,
        search=search or None,
        include_defaults=include_defaults,
    )


@app.get(
    "/v1/llms/<llm_id>",
    summary="Get one LLM",
    responses=ok_response(Llm) | error_responses(401, 404),
)
def get_llm(llm_id: LlmId) -> Llm:
    account = account_id(app)
    llm = services().registry.get(account, llm_id)
    if not llm.is_default:  # built-ins are the platform's to watch
        llm.health = services().health_service.summary(account, llm_id)
    return llm


@app.get(
    "/v1/llms/<llm_id>/health",
    summary="An LLM's health and its real traffic in 5-minute buckets over the last hours",
    responses=ok_response(LlmHealthHistory) | error_responses(400, 401, 404),
)
def get_llm_health(llm_id: LlmId, hours: Annotated[int, Query(ge=1, le=48)] = 24) -> LlmHealthHistory:
    account = account_id(app)
    if services().registry.get(account, llm_id).is_default:
        raise NotFound("Built-in LLMs have no health record of yours.", code="health_not_tracked")
    return services().health_service.history(account, llm_id, hours)


SessionId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
Outcome = Annotated[str, Query(max_length=64, pattern=r"^[a-z_]+$")]
Since = Annotated[datetime | None, Query(description="Only requests at or after this time (ISO 8601).")]
Until = Annotated[datetime | None, Query(description="Only requests at or before this time (ISO 8601).")]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str, Query(max_length=200, description="`nextCursor` of the previous page.")]


@app.get(
    "/v1/llms/<llm_id>/requests",
    summary="An LLM's request log, newest first (one record per stream request; never content)",
    responses=ok_response(RequestPage) | error_responses(400, 401, 404),
)
def list_llm_requests(
    llm_id: LlmId,
    since: Since = None,
    until: Until = None,
    outcome: Outcome = "",
    session_id: Annotated[str, Query(alias="sessionId", max_length=100, pattern=r"^[A-Za-z0-9_-]*$")] = "",
    limit: Limit = 50,
    cursor: Cursor = "",
) -> RequestPage:
    account = account_id(app)
    services().registry.get(account, llm_id)  # another account's LLM is a 404
    service = _request_logs(services())
    query = service.query(
        since=since,
        until=until,
        outcome=outcome or None,
        session_id=session_id or None,
        limit=limit,
        cursor=cursor or None,
    )
    return service.llm_requests(account, llm_id, query)


@app.get(
    "/v1/sessions/<session_id>/requests",
    summary="A session's requests, newest first",
    responses=ok_response(RequestPage) | error_responses(400, 401, 404),
)
def list_session_requests(
    session_id: SessionId,
    since: Since = None,
    until: Until = None,
    outcome: Outcome = "",
    limit: Limit = 50,
    cursor: Cursor = "",
) -> RequestPage:
    service = _request_logs(services())
    query = service.query(
        since=since, until=until, outcome=outcome or None, limit=limit, cursor=cursor or None
    )
    return service.session_requests(account_id(app), session_id, query)


@app.get(
    "/v1/llms/<llm_id>/usage",
    summary="An LLM's requests, errors, tokens and TTFT per UTC day",
    responses=ok_response(LlmUsage) | error_responses(400, 401, 404),
)
def get_llm_usage(llm_id: LlmId, days: Annotated[int, Query(ge=1, le=90)] = 7) -> LlmUsage:
    account = account_id(app)
    services().registry.get(account, llm_id)
    return _request_logs(services()).usage(account, llm_id, days)


@lru_cache(maxsize=1)
def _request_logs(built: RegistryServices) -> RequestLogService:
    """The request log's reads, for these services (rebuilt when the slot holds new ones)."""
    return request_log_service(built.settings, built.aws, built.session_repository.get)


@app.put(
    "/v1/llms/<llm_id>",
    summary="Update an LLM (partial). A new secret is staged and validated before it replaces the old one.",
    responses=ok_response(Llm) | error_responses(400, 401, 403, 404, 412, 413),
)
def update_llm(llm_id: LlmId, patch: Annotated[LlmUpdate, Body()]) -> Response[Llm]:
    updated = services().registry.update(
        account_id(app), llm_id, patch, _if_match(header(app, "If-Match")), own=own_origins(app)
    )
    return model_response(updated, headers={"ETag": f'"{updated.version}"'})


@app.delete(
    "/v1/llms/<llm_id>",
    summary="Delete an LLM and its stored secret",
    responses=ok_response(None, "Deleted", 204) | error_responses(401, 403, 404),
)
def delete_llm(llm_id: LlmId) -> Response[Any]:
    services().registry.delete(account_id(app), llm_id)
    return Response(status_code=204, body="")


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    """The whole management API (every REST function), generated by `make openapi`."""
    return json_response(200, _openapi_text())


@lru_cache(maxsize=1)
def _openapi_text() -> str:
    return resources.files("llm_gateway").joinpath("openapi.json").read_text("utf-8")


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":  # RFC 9110: "*" matches any current version
        return None
    cleaned = value.strip().removeprefix("W/").strip('"')
    if not cleaned.isdigit() or len(cleaned) > 12:
        raise BadRequest("If-Match must be the LLM's version number.", code="invalid_if_match")
    return int(cleaned)


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, services())
