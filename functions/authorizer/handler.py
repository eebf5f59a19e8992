"""REQUEST authorizer: ``Authorization: Bearer <account API key>`` -> the account id in the context.

It also returns the account's usage-plan key as ``usageIdentifierKey`` (the API reads keys from
the authorizer), so API Gateway applies the account's own throttle to every request it allows.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.composition import AuthorizerServices, ServicesSlot
from llm_gateway.domain.accounts import authenticate
from llm_gateway.domain.authorization import AUTHORIZATION, AmbiguousCredentials, single_header
from llm_gateway.domain.usage_plans import usage_key_value
from llm_gateway.observability import get_logger

logger = get_logger()
#: Built on the first request from this function's settings (``AuthorizerSettings``).
services = ServicesSlot(AuthorizerServices)


def _unauthorized(reason: str) -> Exception:
    # Never the key itself: only why it was refused.
    logger.info("refused", extra={"reason": reason})
    # API Gateway turns this exact message into a 401 (gateway response UNAUTHORIZED).
    return Exception("Unauthorized")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = APIGatewayAuthorizerRequestEvent(event)
    try:
        authorization = single_header(AUTHORIZATION, event.get("headers"), event.get("multiValueHeaders"))
    except AmbiguousCredentials:
        raise _unauthorized("more than one Authorization header") from None
    account_id = authenticate(services().account_repository, authorization)
    if account_id is None:
        raise _unauthorized("missing or unknown API key")
    # Allow every method of this stage: the decision depends on the key alone, and it is cached.
    response = APIGatewayAuthorizerResponse.from_route_arn(
        request.method_arn,
        principal_id=account_id,
        context={"accountId": account_id},
        usage_identifier_key=usage_key_value(account_id),
    )
    response.allow_all_routes()
    logger.append_keys(account_id=account_id)
    logger.debug("allowed")
    return response.asdict()
