"""Integration tier: handlers run in-process on events/ files, AWS is moto in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llm_gateway import composition
from llm_gateway.adapters.session_state import DynamoSessionStateStore
from llm_gateway.domain.accounts import create_account
from llm_gateway_cli.local.front_door import LambdaContext
from llm_gateway_cli.local.provision import provision
from llm_gateway_cli.local.template import Resolver, function_environment, load_template, parameter_defaults
from tests.conftest import LeakCollector, load_event


@dataclass
class AwsStack:
    env: dict[str, str]
    client: Callable[[str], Any]

    def scan_table(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client("dynamodb").scan(TableName=self.env["TABLE_NAME"])["Items"]
        return items


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, leak_collector: LeakCollector) -> Iterator[AwsStack]:
    """A fresh moto world with the template's resources, and settings pointing at it."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with mock_aws():
        template = load_template()
        resolver = Resolver(parameter_defaults(template, {"Stage": "test"}))
        provision(template, resolver, lambda service: boto3.client(service))
        env = function_environment(template, resolver)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("PRIVATE_ENDPOINT_ORIGINS", raising=False)
        monkeypatch.setattr(composition, "session_state_store", in_process_session_state_store)
        composition.reset()
        stack = AwsStack(env=env, client=lambda service: boto3.client(service))
        yield stack
        leak_collector.add("dynamodb items", stack.scan_table())
    composition.reset()


@lru_cache(maxsize=1)
def in_process_session_state_store() -> DynamoSessionStateStore:
    """The stream's table reads, with its per-request check sent by botocore in a worker thread:
    mock_aws intercepts botocore only, not the aiohttp path the check takes in a deployment (that
    path runs against a real moto server in tests/e2e and tests/integration/test_aws_async.py)."""
    from llm_gateway.adapters import aws
    from llm_gateway.settings import get_settings

    client = aws.dynamodb()

    async def batch_get(request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = await asyncio.to_thread(lambda: client.batch_get_item(**request))
        return response

    return DynamoSessionStateStore(client, get_settings().table_name, batch_get=batch_get)


@pytest.fixture
def account(aws: AwsStack) -> str:
    return create_account(composition.account_repository(), "team-a").account_id


@pytest.fixture
def other_account(aws: AwsStack) -> str:
    return create_account(composition.account_repository(), "team-b").account_id


Invoke = Callable[..., tuple[int, Any, dict[str, str]]]


@pytest.fixture
def invoke_registry(leak_collector: LeakCollector) -> Invoke:
    """Run the registry handler on an events/ file, with the account and overrides applied."""
    from functions.registry import handler

    def invoke(
        event_name: str,
        account_id: str,
        *,
        body: Any = None,
        llm_id: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        event = load_event(event_name)
        event["requestContext"]["authorizer"] = {"accountId": account_id, "principalId": account_id}
        if body is not None:
            event["body"] = body if isinstance(body, str) else json.dumps(body)
        if llm_id is not None:
            event["path"] = event["path"].rsplit("/", 1)[0] + "/" + llm_id
            event["pathParameters"] = {"id": llm_id}
        if headers:
            event["headers"] = {**event["headers"], **headers}
        if query is not None:
            event["queryStringParameters"] = query or None
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
        result = handler.lambda_handler(event, LambdaContext("registry"))
        leak_collector.add(f"registry response {event_name}", result)
        body_text = result.get("body") or ""
        parsed = json.loads(body_text) if body_text else None
        headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
        headers.update(result.get("headers") or {})
        return int(result["statusCode"]), parsed, headers

    return invoke
