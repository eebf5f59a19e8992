"""REQUEST authorizer: ``Authorization: Bearer <account API key>`` -> the account id in the context."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway import composition
from llm_gateway.domain.accounts import authenticate
from llm_gateway.observability import get_logger


def _policy(principal: str, effect: str, method_arn: str, context: dict[str, str] | None) -> dict[str, Any]:
    # Allow every method of this stage: the decision depends on the key alone, and the result is cached.
    stage_arn = "/".join(method_arn.split("/", 2)[:2]) + "/*"
    policy: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": stage_arn}],
        },
    }
    if context:
        policy["context"] = context
    return policy


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = event.get("headers") or {}
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    account_id = authenticate(composition.account_repository(), authorization)
    if account_id is None:
        get_logger().info("rejected an API key")
        # API Gateway turns this exact message into a 401 (gateway response UNAUTHORIZED).
        raise Exception("Unauthorized")
    return _policy(account_id, "Allow", event["methodArn"], {"accountId": account_id})
