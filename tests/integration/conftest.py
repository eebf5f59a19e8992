"""Integration tier: handlers run in-process on events/ files, AWS is moto in-process."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from moto import mock_aws

from llm_gateway.adapters.aws import AwsClients
from llm_gateway.adapters.session_state import DynamoSessionStateStore
from llm_gateway.composition import (
    ApiKeysServices,
    AuthorizerServices,
    RegistryServices,
    RevalidationSchedulerServices,
    Services,
    SessionTokensServices,
    StreamServices,
    ValidationApiServices,
    ValidatorServices,
    WebhookDeliveryServices,
    WebhooksServices,
)
from llm_gateway.domain.accounts import create_account
from llm_gateway_local.front_door import LambdaContext
from llm_gateway_local.provision import provision
from llm_gateway_local.template import Resolver, function_environments, load_template, parameter_defaults
from tests.conftest import LeakCollector, load_event

#: Each function's services class, and the handler module whose slot holds them.
FUNCTIONS: dict[str, tuple[type[Services], str]] = {
    "AuthorizerFunction": (AuthorizerServices, "functions.authorizer.handler"),
    "ApiKeysFunction": (ApiKeysServices, "functions.api_keys.handler"),
    "RegistryFunction": (RegistryServices, "functions.registry.handler"),
    "ValidatorFunction": (ValidatorServices, "functions.validator.consumer"),
    "ValidatorApiFunction": (ValidationApiServices, "functions.validator.api"),
    "SessionTokensFunction": (SessionTokensServices, "functions.session_tokens.handler"),
    "WebhooksFunction": (WebhooksServices, "functions.webhooks.handler"),
    "WebhookDeliveryFunction": (WebhookDeliveryServices, "functions.webhook_delivery.handler"),
    "RevalidationSchedulerFunction": (
        RevalidationSchedulerServices,
        "functions.revalidation_scheduler.handler",
    ),
    "StreamProxyFunction": (StreamServices, ""),
}
#: What the tests add to every function's environment: no EMF on stdout.
TEST_OVERRIDES = {"POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class AwsStack:
    """moto with the template's resources, and each function's services built from its own
    environment (the template's variables for it); the handler modules' slots hold them."""

    environments: dict[str, dict[str, str]]
    clients: AwsClients
    overrides: dict[str, str] = field(default_factory=lambda: dict(TEST_OVERRIDES))
    built: dict[str, Services] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Every function's variables in one mapping (resource names: the same in each)."""
        merged: dict[str, str] = {}
        for env in self.environments.values():
            merged |= env
        return merged | self.overrides

    def client(self, service: str) -> Any:
        return self.clients.client(service)

    def scan_table(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client("dynamodb").scan(TableName=self.env["TABLE_NAME"])["Items"]
        return items

    def configure(self, **overrides: str) -> None:
        """Rebuild every function's services with these variables changed (a redeploy, in effect)."""
        self.overrides |= overrides
        self.install()

    def provide(self, **built: Any) -> None:
        """These adapters instead of the ones the REST functions would build (a fake DNS guard)."""
        for services in self.built.values():
            for name, value in built.items():
                if hasattr(type(services), name):
                    services.__dict__[name] = value

    def install(self) -> None:
        self.uninstall()
        for logical, (kind, module) in FUNCTIONS.items():
            services = kind.from_environ(self.environments[logical] | self.overrides, self.clients)
            self.built[logical] = services
            if module:
                importlib.import_module(module).services.use(services)
        self.stream.__dict__["session_state_store"] = in_process_session_state_store(self.stream)

    def uninstall(self) -> None:
        for logical, services in self.built.items():
            services.close()
            module = FUNCTIONS[logical][1]
            if module:
                importlib.import_module(module).services.use(None)
        self.built.clear()

    @property
    def authorizer(self) -> AuthorizerServices:
        return cast(AuthorizerServices, self.built["AuthorizerFunction"])

    @property
    def api_keys(self) -> ApiKeysServices:
        return cast(ApiKeysServices, self.built["ApiKeysFunction"])

    @property
    def registry(self) -> RegistryServices:
        return cast(RegistryServices, self.built["RegistryFunction"])

    @property
    def validator(self) -> ValidatorServices:
        return cast(ValidatorServices, self.built["ValidatorFunction"])

    @property
    def tokens(self) -> SessionTokensServices:
        return cast(SessionTokensServices, self.built["SessionTokensFunction"])

    @property
    def webhooks(self) -> WebhooksServices:
        return cast(WebhooksServices, self.built["WebhooksFunction"])

    @property
    def delivery(self) -> WebhookDeliveryServices:
        return cast(WebhookDeliveryServices, self.built["WebhookDeliveryFunction"])

    @property
    def scheduler(self) -> RevalidationSchedulerServices:
        return cast(RevalidationSchedulerServices, self.built["RevalidationSchedulerFunction"])

    @property
    def stream(self) -> StreamServices:
        return cast(StreamServices, self.built["StreamProxyFunction"])


@pytest.fixture
def aws(leak_collector: LeakCollector) -> Iterator[AwsStack]:
    """A fresh moto world with the template's resources, and every function's services on it."""
    with mock_aws():
        clients = AwsClients(region="us-east-1", access_key_id="testing", secret_access_key="testing")
        template = load_template()
        resolver = Resolver(parameter_defaults(template, {"Stage": "test"}))
        provision(template, resolver, clients.client)
        stack = AwsStack(function_environments(template, resolver), clients)
        stack.install()
        try:
            yield stack
            leak_collector.add("dynamodb items", stack.scan_table())
        finally:
            stack.uninstall()


def in_process_session_state_store(stream: StreamServices) -> DynamoSessionStateStore:
    """The stream's table reads, with its per-request check sent by botocore in a worker thread:
    mock_aws intercepts botocore only, not the aiohttp path the check takes in a deployment (that
    path runs against a real moto server in tests/e2e and tests/integration/test_aws_async.py)."""
    client = stream.aws.dynamodb()

    async def batch_get(request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = await asyncio.to_thread(lambda: client.batch_get_item(**request))
        return response

    return DynamoSessionStateStore(client, stream.settings.table_name, batch_get=batch_get)


@pytest.fixture
def account(aws: AwsStack) -> str:
    return create_account(aws.registry.account_repository, "team-a").account_id


@pytest.fixture
def other_account(aws: AwsStack) -> str:
    return create_account(aws.registry.account_repository, "team-b").account_id


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
