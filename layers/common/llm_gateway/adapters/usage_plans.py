"""API Gateway API keys and usage plans (the per-account throttles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient


class ApiGatewayUsagePlans:
    def __init__(self, client: APIGatewayClient) -> None:
        self._client = client

    def create_key(self, name: str, value: str, account_id: str) -> str:
        created = self._client.create_api_key(
            name=name,
            value=value,
            enabled=True,
            description="LLM Gateway account usage key (returned by the authorizer, never sent by clients).",
            tags={"llm-gateway:account": account_id},
        )
        return created["id"]

    def add_to_plan(self, usage_plan_id: str, key_id: str) -> None:
        self._client.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id, keyType="API_KEY")
