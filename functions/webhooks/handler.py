"""Webhooks function: /v1/webhooks routes. Thin: parse and validate, one domain call, a response model.

A function of its own: it writes webhook signing secrets (Secrets Manager, ``webhooks/`` folder
only), so no other role gains that, and its own role cannot read an LLM key.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api import (
    account_id,
    create_resolver,
    error_responses,
    model_response,
    ok_response,
    request_origins,
    resolve,
)
from llm_gateway.composition import ServicesSlot, WebhooksServices
from llm_gateway.domain import webhooks
from llm_gateway.models.webhook import NewWebhook, WebhookCreate, WebhookList
from llm_gateway.observability import get_logger, get_tracer

app = create_resolver()
#: Built on the first request from this function's settings (``WebhooksSettings``).
services = ServicesSlot(WebhooksServices)
WebhookId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
#: The signing secret and the list are never cached by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


@app.get(
    "/v1/webhooks",
    summary="List the account's webhooks (never their secrets)",
    responses=ok_response(WebhookList) | error_responses(401),
)
def list_webhooks() -> Response[WebhookList]:
    found = webhooks.list_webhooks(services().webhook_repository, account_id(app))
    return model_response(found, headers=NO_STORE)


@app.post(
    "/v1/webhooks",
    summary="Add a webhook for llm.health_changed (at most 10). The signing secret is in this answer only.",
    responses=ok_response(NewWebhook, "Created", 201) | error_responses(400, 401, 409, 413),
)
def create_webhook(request: Annotated[WebhookCreate, Body()]) -> Response[NewWebhook]:
    s = services()
    created = webhooks.create_webhook(
        s.webhook_repository,
        s.webhook_secrets,
        s.url_guard,
        account_id(app),
        request,
        request_origins(app, s.own_origins),
    )
    return model_response(created, 201, headers=NO_STORE)


@app.delete(
    "/v1/webhooks/<webhook_id>",
    summary="Delete a webhook and its signing secret",
    responses=ok_response(None, "Deleted", 204) | error_responses(401, 404),
)
def delete_webhook(webhook_id: WebhookId) -> Response[Any]:
    s = services()
    webhooks.delete_webhook(s.webhook_repository, s.webhook_secrets, account_id(app), webhook_id)
    return Response(status_code=204, body="", headers=NO_STORE)


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, services())
