"""AWS clients, created once per container. ``AWS_ENDPOINT_URL`` points them at moto locally.

They are botocore clients (what boto3 hands out too) made from a botocore session: importing boto3
also imports s3transfer (~60 ms of cold start) for resources and transfers no function uses.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


@cache
def client(service: str) -> Any:
    import botocore.session  # imported here so that pure modules never pay for it
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)
    return botocore.session.get_session().create_client(service, config=config)


def dynamodb() -> DynamoDBClient:
    return client("dynamodb")  # type: ignore[no-any-return]


def secretsmanager() -> SecretsManagerClient:
    return client("secretsmanager")  # type: ignore[no-any-return]


def kms() -> KMSClient:
    return client("kms")  # type: ignore[no-any-return]


def events() -> EventBridgeClient:
    return client("events")  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return client("sqs")  # type: ignore[no-any-return]


def apigateway() -> APIGatewayClient:
    return client("apigateway")  # type: ignore[no-any-return]
