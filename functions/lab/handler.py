"""Lab function: the web console's page and static files at /lab/ (no authorizer: the page signs in
with an account API key itself, in the browser, and calls the API on this same origin)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway import lab
from llm_gateway.observability import get_logger
from llm_gateway.request_ids import with_request_id

app = APIGatewayRestResolver()


def _response(status: int, body: str, content_type: str, cache: str, **extra: str) -> Response[str]:
    headers = lab.SECURITY_HEADERS | {"Cache-Control": cache} | extra
    return Response(status_code=status, content_type=content_type, body=body, headers=headers)


@app.get("/lab")
def page() -> Response[str]:
    """``/lab/`` is the page. ``/lab`` redirects there, so relative asset and API URLs resolve
    under the stage prefix API Gateway adds (``/<stage>/lab/``)."""
    if not app.current_event.path.endswith("/"):
        return _response(308, "", "text/plain", lab.PAGE_CACHE_CONTROL, Location="lab/")
    return _response(200, lab.bundle().page, lab.CONTENT_TYPES[".html"], lab.PAGE_CACHE_CONTROL)


@app.get("/lab/assets/<version>/<name>")
def asset(version: str, name: str) -> Response[str]:
    found = lab.bundle().asset(version, name)
    if found is None:
        raise NotFoundError()
    return _response(200, found.body, found.content_type, lab.ASSET_CACHE_CONTROL)


@app.not_found
def not_found(exc: NotFoundError) -> Response[str]:
    return _response(404, "Not found\n", "text/plain; charset=utf-8", "no-store")


@get_logger().inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return with_request_id(app.resolve(event, context), event)
