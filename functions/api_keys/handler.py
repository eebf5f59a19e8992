"""API keys function: /v1/api-keys routes. Thin: parse and validate, one domain call, a response model.

A function of its own rather than more routes on the registry: it mints account credentials, so
its role holds table rights only (no Secrets Manager, KMS or EventBridge), and the registry's
role, which handles customers' LLM secrets, never gains the power to mint account keys.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api import account_id, create_resolver, model_response, resolve
from llm_gateway.composition import ApiKeysServices, ServicesSlot
from llm_gateway.domain import accounts
from llm_gateway.models.account import ApiKeyCreate, ApiKeyList, NewApiKey
from llm_gateway.models.common import ErrorResponse
from llm_gateway.observability import get_logger, get_tracer

app = create_resolver()
#: Built on the first request from this function's settings (``ApiKeysSettings``).
services = ServicesSlot(ApiKeysServices)
KeyId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
#: Key material and key lists are never cached by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def _errors(*statuses: int) -> dict[int, Any]:
    return {
        s: {"description": "Error", "content": {"application/json": {"model": ErrorResponse}}}
        for s in statuses
    }


@app.get(
    "/v1/api-keys",
    summary="List the account's API keys (name, last 4 characters, created and last used)",
    responses={200: {"description": "OK", "content": {"application/json": {"model": ApiKeyList}}}}
    | _errors(401),
)
def list_api_keys() -> Response[ApiKeyList]:
    keys = accounts.list_api_keys(services().account_repository, account_id(app))
    return model_response(keys, headers=NO_STORE)


@app.post(
    "/v1/api-keys",
    summary="Create an API key (at most 10 per account). The key is in this answer only.",
    responses={201: {"description": "Created", "content": {"application/json": {"model": NewApiKey}}}}
    | _errors(400, 401, 409, 413),
)
def create_api_key(request: Annotated[ApiKeyCreate, Body()]) -> Response[NewApiKey]:
    created = accounts.create_api_key(services().account_repository, account_id(app), request.name)
    return model_response(created, 201, headers=NO_STORE)


@app.delete(
    "/v1/api-keys/<key_id>",
    summary="Revoke an API key: it stops working within the authorizer cache TTL (10 s)",
    responses={204: {"description": "Revoked"}} | _errors(401, 404, 409),
)
def revoke_api_key(key_id: KeyId) -> Response[Any]:
    accounts.revoke_api_key(services().account_repository, account_id(app), key_id)
    return Response(status_code=204, body="", headers=NO_STORE)


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, services())
