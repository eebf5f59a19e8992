"""Session tokens function: mint, revoke, and publish the verification keys. Thin: one domain call each."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api import (
    account_id,
    create_resolver,
    error_responses,
    json_response,
    model_response,
    ok_response,
    resolve,
)
from llm_gateway.composition import ServicesSlot, SessionTokensServices
from llm_gateway.domain.tokens import jwks_document
from llm_gateway.models.session import SessionTokenRequest, SessionTokenResponse
from llm_gateway.observability import get_logger, get_tracer

app = create_resolver()
#: Built on the first request from this function's settings (``SessionTokensSettings``).
services = ServicesSlot(SessionTokensServices)
SessionId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
JWKS_CACHE_CONTROL = "public, max-age=300"
_MINT_RESPONSES = ok_response(SessionTokenResponse) | error_responses(400, 401, 404, 409, 413, 429)
_REVOKE_RESPONSES = ok_response(None, "Revoked", 204) | error_responses(401, 404)


def _mint(request: SessionTokenRequest) -> Response[SessionTokenResponse]:
    result = services().session_service.mint(account_id(app), request)
    # A token is a credential: never cache the response anywhere.
    headers = {"Cache-Control": "no-store"}
    if result.deprecated_alias_used:
        headers["Deprecation"] = "true"
    return model_response(result.response, headers=headers)


@app.post(
    "/v1/auth/session-token",
    summary="Mint a session token for a persona and its LLM",
    responses=_MINT_RESPONSES,
)
def mint_session_token(request: Annotated[SessionTokenRequest, Body()]) -> Response[SessionTokenResponse]:
    return _mint(request)


@app.post(
    "/v1/session-token",
    summary="Mint a session token (alias of /v1/auth/session-token)",
    responses=_MINT_RESPONSES,
)
def mint_session_token_alias(
    request: Annotated[SessionTokenRequest, Body()],
) -> Response[SessionTokenResponse]:
    return _mint(request)


@app.delete(
    "/v1/sessions/<session_id>",
    summary="Revoke a session: its token stops working within seconds",
    responses=_REVOKE_RESPONSES,
)
def revoke_session(session_id: SessionId) -> Response[Any]:
    services().session_service.revoke(account_id(app), session_id)
    return Response(status_code=204, body="")


@app.get("/.well-known/jwks.json", summary="The public keys that verify session tokens", security=[])
def jwks() -> Response[dict[str, list[dict[str, str]]]]:
    document = jwks_document([services().token_signer.public_jwk()])
    return json_response(200, document, {"Cache-Control": JWKS_CACHE_CONTROL})


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, services())
