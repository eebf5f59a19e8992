"""AWS clients, created once per services object (once per container), from explicit values.

They are botocore clients (what boto3 hands out too) made from a botocore session: importing boto3
also imports s3transfer (~60 ms of cold start) for resources and transfers no function uses.
Deployed, nothing is given: botocore takes the region and the credentials from the Lambda
runtime. The local stack, the CLI and the tests pass moto's endpoint, a region and fake
credentials explicitly, so no process environment has to be edited for them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


@dataclass
class AwsClients:
    """One client per service, built on first use with these values (None: botocore's default)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    #: Seconds to wait for an answer; a long poll (the local stack's SQS pollers) needs more.
    read_timeout: float = 10
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def local(cls, endpoint_url: str, region: str = "us-east-1", *, read_timeout: float = 10) -> AwsClients:
        """moto's: its endpoint, a region and the fake credentials it accepts."""
        return cls(endpoint_url, region, "local", "local", read_timeout)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._create(service)
            return self._clients[service]

    def _create(self, service: str) -> Any:
        import botocore.session  # imported here so that pure modules never pay for it
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=self.read_timeout
        )
        return botocore.session.get_session().create_client(
            service,
            config=config,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def dynamodb(self) -> DynamoDBClient:
        return self.client("dynamodb")  # type: ignore[no-any-return]

    def secretsmanager(self) -> SecretsManagerClient:
        return self.client("secretsmanager")  # type: ignore[no-any-return]

    def kms(self) -> KMSClient:
        return self.client("kms")  # type: ignore[no-any-return]

    def events(self) -> EventBridgeClient:
        return self.client("events")  # type: ignore[no-any-return]

    def sqs(self) -> SQSClient:
        return self.client("sqs")  # type: ignore[no-any-return]

    def apigateway(self) -> APIGatewayClient:
        return self.client("apigateway")  # type: ignore[no-any-return]

    def cloudformation(self) -> CloudFormationClient:
        return self.client("cloudformation")  # type: ignore[no-any-return]
