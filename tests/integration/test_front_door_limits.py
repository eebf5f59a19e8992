"""The local front door applies the template's usage plan per account, and trusts one Authorization.

Real sockets: the front door under uvicorn on loopback, the handlers in-process, moto in-process.
The plan's limits come from template.yaml with its parameters overridden (as a deploy would), so a
third request in a row is throttled without any timing in the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from llm_gateway.adapters.guarded_http import registration_url_guard
from llm_gateway.domain.accounts import create_account
from llm_gateway_local.front_door import FrontDoor, LocalFunction
from llm_gateway_local.servers import ServerThread
from llm_gateway_local.template import (
    Resolver,
    api_routes,
    authorizer_function,
    gateway_response_headers,
    gateway_responses,
    load_template,
    parameter_defaults,
    usage_plan_limits,
)
from llm_gateway_local.usage_plan import enroll, usage_plan_gate
from tests.conftest import CANARY, LeakCollector
from tests.integration.conftest import AwsStack

BURST = 3


@dataclass
class Door:
    url: str
    keys: dict[str, str]
    leaks: LeakCollector

    def get(self, path: str, *keys: str) -> httpx.Response:
        headers = [("Authorization", f"Bearer {self.keys[k]}") for k in keys]
        response = httpx.get(self.url + path, headers=headers, timeout=10)
        self.leaks.add(f"front door GET {path}", response.text)
        return response


@pytest.fixture
def door(aws: AwsStack, leak_collector: LeakCollector) -> Iterator[Door]:
    answers = {"api.openai.com": ["104.18.6.192"]}
    aws.provide(
        url_guard=registration_url_guard(allow_private=False, resolver=lambda host, port: answers[host])
    )
    template = load_template()
    resolver = Resolver(
        parameter_defaults(
            template,
            {"Stage": "test", "AccountThrottleRateLimit": "0.001", "AccountThrottleBurstLimit": str(BURST)},
        )
    )
    limits = usage_plan_limits(template, resolver)
    assert limits is not None and limits.default.burst == BURST
    (plan,) = aws.client("apigateway").get_usage_plans()["items"]
    resolver.refs[limits.logical_id] = plan["id"]
    keys = {}
    for name in ("a", "b", "c", "unenrolled"):
        created = create_account(aws.registry.account_repository, name)
        keys[name] = created.api_key
        if name != "unenrolled":
            enroll(aws.clients, aws.env["TABLE_NAME"], created.account_id, plan["id"])
    auth = authorizer_function(template)
    assert auth is not None
    front = FrontDoor(
        api_routes(template),
        LocalFunction("authorizer", *auth),
        gateway_responses(template),
        "test",
        usage_plan=usage_plan_gate(template, resolver, aws.clients),
        response_headers=gateway_response_headers(template),
    )
    server = ServerThread(front, 0)
    port = server.start()
    try:
        yield Door(f"http://127.0.0.1:{port}", keys, leak_collector)
    finally:
        server.stop()


def test_an_account_past_its_burst_gets_429_with_retry_after_and_others_do_not(door: Door) -> None:
    assert [door.get("/v1/llms", "a").status_code for _ in range(BURST)] == [200] * BURST
    throttled = door.get("/v1/llms", "a")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert door.get("/v1/llms", "b").status_code == 200, "account b has its own bucket"


def test_an_account_outside_the_usage_plan_is_403(door: Door) -> None:
    refused = door.get("/v1/llms", "unenrolled")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_not_enrolled"


def test_two_authorization_headers_are_401_and_never_lend_one_account_to_the_other(door: Door) -> None:
    created = httpx.post(
        door.url + "/v1/llms",
        headers={"Authorization": f"Bearer {door.keys['a']}"},
        json={
            "displayName": "a's model",
            "llmFormat": "openai",
            "modelName": "gpt-4o-mini",
            "urls": [{"url": "https://api.openai.com/v1/chat/completions"}],
            "secret": CANARY,
        },
        timeout=10,
    )
    door.leaks.add("front door POST /v1/llms", created.text)
    assert created.status_code == 201, created.text
    llm = f"/v1/llms/{created.json()['id']}"
    for pair in (("c", "a"), ("a", "c")):
        refused = door.get(llm, *pair)
        assert refused.status_code == 401, pair
        assert refused.json()["error"]["code"] == "unauthorized"
    assert door.get(llm, "c").status_code == 404, "key c alone is account c, never a"
    assert door.get(llm, "a").status_code == 200
