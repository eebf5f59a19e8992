"""The REST edge shared by every management function: resolver, body limits and error mapping.

Errors are mapped to responses here and nowhere else.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_type_hints

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Param, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from llm_gateway import validation_messages
from llm_gateway.composition import EdgeServices
from llm_gateway.domain.loops import HopMarker, OwnOrigins
from llm_gateway.errors import (
    BadRequest,
    GatewayError,
    InternalError,
    LoopDetected,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from llm_gateway.models.common import ErrorResponse
from llm_gateway.observability import get_logger
from llm_gateway.origins import host_and_port
from llm_gateway.request_ids import request_id, with_request_id

BEARER_SCHEME = "accountApiKey"
SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
MAX_JSON_DEPTH = 32


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response[Any]:
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        headers = (headers or {}) | {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
        headers=headers,
    )


def _json_depth_ok(text: str) -> bool:
    """Reject absurd nesting before the JSON parser recurses into it."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def body_problem(event: dict[str, Any], limit: int) -> GatewayError | None:
    """Size, encoding and shape limits on the raw body, checked before anything parses it."""
    raw = event.get("body")
    if not raw:
        return None
    try:
        data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogatepass")
    except ValueError:
        return BadRequest("The body is not valid base64.", code="invalid_encoding")
    if len(data) > limit:
        return PayloadTooLarge(f"The body is larger than {limit} bytes.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return BadRequest("The body is not valid UTF-8.", code="invalid_encoding")
    if "\x00" in text:
        return BadRequest("The body must not contain NUL characters.", code="invalid_body")
    if not _json_depth_ok(text):
        return BadRequest(f"JSON nesting deeper than {MAX_JSON_DEPTH} levels.", code="invalid_body")
    try:
        json.loads(text)
    except ValueError:
        return BadRequest("The body is not valid JSON.", code="invalid_json")
    event["body"], event["isBase64Encoded"] = text, False
    return None


def media_type_problem(event: dict[str, Any]) -> GatewayError | None:
    """A body of any media type but JSON (a form, multipart with or without its boundary, text)
    is a 415, before a parser sees it."""
    if str(event.get("httpMethod") or "").upper() not in ("POST", "PUT", "PATCH"):
        return None
    values = [v for k, v in (event.get("headers") or {}).items() if str(k).lower() == "content-type"]
    values += [
        v
        for k, vs in (event.get("multiValueHeaders") or {}).items()
        if str(k).lower() == "content-type"
        for v in vs or ()
    ]
    if all(str(v).partition(";")[0].strip().lower() in ("application/json", "") for v in values):
        return None
    return UnsupportedMediaType("Send JSON (Content-Type: application/json).")


def path_problem(event: dict[str, Any]) -> GatewayError | None:
    """A path with control characters (``/v1/llms/%0D``) is refused: the router would otherwise
    strip it and answer a different route."""
    path = str(event.get("path") or "")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return BadRequest("The path contains control characters.", code="invalid_path")
    return None


def loop_problem(event: dict[str, Any], marker: HopMarker) -> GatewayError | None:
    """A request carrying this deployment's hop marker is the gateway calling itself: 508."""
    headers = [(k, v) for k, vs in (event.get("multiValueHeaders") or {}).items() for v in vs or ()]
    headers += list((event.get("headers") or {}).items())
    return LoopDetected() if marker.seen_in_text(headers) else None


def request_origins(app: APIGatewayRestResolver, configured: OwnOrigins) -> OwnOrigins:
    """The gateway's own origins: those settings name, the host this request arrived on, and its
    API's execute-api host names (API Gateway names both in the request context)."""
    context = app.current_event.raw_event.get("requestContext") or {}
    domain, api_id = context.get("domainName"), context.get("apiId")
    place = host_and_port(f"https://{domain}") if isinstance(domain, str) and domain else None
    arrived = OwnOrigins(
        frozenset({place} if place else ()), frozenset({api_id} if isinstance(api_id, str) and api_id else ())
    )
    return configured | arrived


def resolve(
    app: APIGatewayRestResolver, event: dict[str, Any], context: Any, services: EdgeServices
) -> dict[str, Any]:
    """Check for a loop and the raw body, then route. Every management handler enters here, with
    its function's services (built on its first request)."""
    problem = (
        loop_problem(event, services.hop_marker)
        or path_problem(event)
        or media_type_problem(event)
        or body_problem(event, services.settings.max_body_bytes)
    )
    if problem is not None:
        answer = {
            "statusCode": problem.status,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": json.dumps(problem.to_body()),
            "isBase64Encoded": False,
        }
        return with_request_id(answer, event)
    return with_request_id(app.resolve(event, context), event)


class GatewayResolver(APIGatewayRestResolver):
    """Powertools' REST resolver, remembering the query parameters each route's handler declares
    (``Annotated[..., Query()]``), so a request carrying any other is refused (a typo, not noise)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: (METHOD, path shape with "{}" for each path parameter) -> declared query parameter names
        self.declared_query: dict[tuple[str, str], frozenset[str]] = {}

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Callable[[Handler], Handler]:
        register = super().route(rule, method, *args, **kwargs)
        methods = (method,) if isinstance(method, str) else tuple(method)

        def record(handler: Handler) -> Handler:
            names = declared_query_names(handler, rule)
            for each in methods:
                self.declared_query[(each.upper(), _shape(rule))] = names
            return register(handler)

        return record


Handler = TypeVar("Handler", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def _shape(path: str) -> str:
    """``/v1/llms/<llm_id>`` (Powertools) and ``/v1/llms/{id}`` (API Gateway) are both ``/v1/llms/{}``."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path.rstrip("/") or "/")


def declared_query_names(handler: Callable[..., Any], rule: str) -> frozenset[str]:
    """The query parameter names ``handler`` accepts: its parameters that are neither path
    parameters of ``rule`` nor bodies/headers, by their ``Query(alias=...)`` when they have one."""
    path_names = set(re.findall(r"<(\w+)>", rule))
    hints = get_type_hints(handler, include_extras=True)
    names = set()
    for name in inspect.signature(handler).parameters:
        metadata = getattr(hints.get(name), "__metadata__", ())
        query = next((m for m in metadata if isinstance(m, Query)), None)
        if name in path_names or (query is None and any(isinstance(m, Param | Body) for m in metadata)):
            continue
        names.add(query.alias if query is not None and query.alias else name)
    return frozenset(names)


def reject_unknown_query(app: GatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not declare is a client mistake (a typo), not noise: 400."""
    event = app.current_event
    given = set(event.query_string_parameters or {})
    declared = app.declared_query.get((event.http_method.upper(), _shape(event.resource or "")))
    unknown = sorted(given - declared) if given and declared is not None else []
    if unknown:
        return error_response(
            BadRequest(
                "Unknown query parameter(s).",
                code="unknown_parameter",
                details=[
                    {"field": name, "message": "not a parameter of this route"} for name in unknown[:10]
                ],
            )
        )
    return next_middleware(app)


def account_id(app: APIGatewayRestResolver) -> str:
    """The account the authorizer resolved; a route without one is a wiring bug, so refuse."""
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    value = context.get("accountId")
    if not value:
        raise Unauthorized("Missing or invalid API key. Send Authorization: Bearer <account API key>.")
    return str(value)


def header(app: APIGatewayRestResolver, name: str) -> str | None:
    """A request header, whatever its casing (Powertools v3 headers are case-insensitive; its
    ``get_header_value`` is deprecated in favour of this)."""
    value = app.current_event.headers.get(name)
    return None if value is None else str(value)


#: An LLM id in a path: ours are UUIDs, built-ins are catalog ids.
LlmId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


def error_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` entries for the error statuses a route can answer (one error shape)."""
    return {
        s: {"description": "Error", "content": {"application/json": {"model": ErrorResponse}}}
        for s in statuses
    }


def ok_response(
    model: type[Any] | None, description: str = "OK", status: int = 200
) -> dict[int, OpenAPIResponse]:
    """The OpenAPI ``responses`` entry of a success: a JSON ``model``, or no body when it is None."""
    if model is None:
        return {status: {"description": description}}
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


def model_response(model: M, status: int = 200, headers: dict[str, str] | None = None) -> Response[M]:
    """A model with a status or headers: Powertools checks it against the route's ``Response[Model]``
    annotation and serialises it by alias, as it does a model a route returns bare."""
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=model, headers=headers
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def describe_for_openapi(app: GatewayResolver, title: str) -> None:
    """The document's title and security scheme. Only the exporter needs them: Powertools' OpenAPI
    models cost ~70 ms of import, which no request of a function needs (validation does not)."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    app.configure_openapi(
        title=title,
        version="1.0.0",
        security_schemes={BEARER_SCHEME: HTTPBearer(description="Account API key: `Bearer llmgw_...`")},
        security=SECURITY,
    )


def create_resolver() -> GatewayResolver:
    app = GatewayResolver(enable_validation=True)
    app.use(middlewares=[reject_unknown_query])
    # No OpenAPI description here: the document is written offline (``describe_for_openapi``).

    @app.exception_handler(GatewayError)
    def _gateway_error(exc: GatewayError) -> Response[Any]:
        if exc.status >= 500:
            get_logger().exception("request failed", extra={"error_code": exc.code})
            if exc.details is None:  # the id to quote
                exc.details = {"requestId": request_id(app.current_event.raw_event)}
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response[Any]:
        details = validation_messages.describe(exc.errors())
        return error_response(validation_messages.bad_request(details))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response[Any]:
        return error_response(UnsupportedMediaType("Send JSON (Content-Type: application/json)."))

    @app.not_found
    def _route_not_found(exc: NotFoundError) -> Response[Any]:
        return error_response(NotFound("No such route.", code="route_not_found"))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        # Our bug: log the type only (the message could quote a secret), answer a plain 500.
        get_logger().error("unhandled error", extra={"error_type": type(exc).__name__})
        return error_response(InternalError(request_id(app.current_event.raw_event)))

    return app
