"""Registration under attack (issue 9, items 2, 3 and 6), through the registry and validator handlers
on events/ files against moto: credentials never live in URLs, the gateway's own origins are refused,
a looping request is 508, text fields take no control characters and header values are wire-safe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_gateway.adapters.guarded_http import registration_url_guard
from llm_gateway.domain.loops import HOP_HEADER
from llm_gateway.models.llm import EndpointUrl
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import CANARY, LeakCollector, load_event
from tests.integration.conftest import AwsStack, Invoke
from tests.integration.test_registry_api import fake_resolver, openai_body

CREDENTIAL_PARAMS = [
    "key", "api_key", "api-key", "apikey", "token", "access_token", "sig", "signature", "code", "auth",
    "x-api-key", "subscription-key",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _offline_dns(monkeypatch: pytest.MonkeyPatch, aws: AwsStack) -> None:
    offline = registration_url_guard(allow_private=False, resolver=fake_resolver)
    aws.provide(url_guard=offline)


def invoke_validator(event: dict[str, Any], account: str, body: Any, leaks: LeakCollector) -> tuple[int, Any]:
    from functions.validator import api as handler

    event["requestContext"]["authorizer"] = {"accountId": account, "principalId": account}
    event["body"] = json.dumps(body)
    result = handler.lambda_handler(event, LambdaContext("validator"))
    leaks.add("validator response", result)
    return int(result["statusCode"]), json.loads(result["body"])


def casings(name: str) -> list[str]:
    return [name, name.upper(), name.title()]


@pytest.mark.parametrize("param", [c for name in CREDENTIAL_PARAMS for c in casings(name)])
def test_a_credential_named_query_parameter_is_refused_and_nothing_is_stored(
    invoke_registry: Invoke, aws: AwsStack, account: str, param: str
) -> None:
    url = f"https://api.openai.com/v1/chat/completions?alt=1&{param}={CANARY}"
    status, body, _ = invoke_registry(
        "registry/create_openai", account, body=openai_body(urls=[{"url": url}])
    )
    assert status == 400, body
    assert body["error"]["code"] == "credential_in_url"
    assert "`secret`" in body["error"]["message"]
    assert body["error"]["details"][0]["field"] == "urls[0].url"
    assert CANARY not in json.dumps(body)
    assert aws.registry.llm_repository.list(account) == []
    assert CANARY not in json.dumps(aws.scan_table())


def test_userinfo_is_a_credential_too(invoke_registry: Invoke, account: str) -> None:
    body = openai_body(urls=[{"url": "https://user:pw@api.openai.com/v1"}])
    status, answer, _ = invoke_registry("registry/create_openai", account, body=body)
    assert (status, answer["error"]["code"]) == (400, "credential_in_url")


def test_update_and_dry_run_refuse_a_credential_in_a_url_too(
    invoke_registry: Invoke, account: str, leak_collector: LeakCollector
) -> None:
    status, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    assert status == 201
    keyed = [{"url": f"https://api.openai.com/v1/chat/completions?Subscription-Key={CANARY}"}]
    status, body, _ = invoke_registry(
        "registry/update", account, llm_id=created["id"], body={"urls": keyed}, headers={"If-Match": "1"}
    )
    assert (status, body["error"]["code"]) == (400, "credential_in_url")
    status, body = invoke_validator(
        load_event("validator/test_config"), account, openai_body(urls=keyed), leak_collector
    )
    assert (status, body["error"]["code"]) == (400, "credential_in_url")


def test_a_url_stored_before_the_rule_is_shown_redacted(
    aws: AwsStack, invoke_registry: Invoke, account: str
) -> None:
    _status, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    stored = aws.registry.llm_repository.get(account, created["id"])
    assert stored is not None
    legacy = "https://api.openai.com/v1/chat/completions?key=legacy-key-0123456789&code=abc123def"
    stored.urls = [EndpointUrl.model_construct(url=legacy)]
    aws.registry.llm_repository.replace(stored, expected_version=stored.version)
    _, fetched, _ = invoke_registry("registry/get", account, llm_id=created["id"])
    _, listed, _ = invoke_registry("registry/list", account)
    for shown in (fetched["urls"][0]["url"], listed["data"][0]["urls"][0]["url"]):
        assert shown == "https://api.openai.com/v1/chat/completions?key=[REDACTED]&code=[REDACTED]"


@pytest.mark.parametrize(
    "url",
    [
        "https://abc123.execute-api.us-east-1.amazonaws.com/dev/v1/chat/completions",  # the event's own API
        "https://gateway.example.com/v1/chat/completions",  # the request arrived on this host
        "https://api.gateway-custom.example/v1/chat/completions",  # CustomDomainName
    ],
)
def test_the_gateways_own_origins_are_refused_on_create_update_and_test(
    aws: AwsStack,
    invoke_registry: Invoke,
    account: str,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    leak_collector: LeakCollector,
) -> None:
    aws.configure(GATEWAY_ORIGINS="api.gateway-custom.example")
    aws.provide(url_guard=registration_url_guard(allow_private=False, resolver=fake_resolver))
    event = load_event("registry/create_openai")
    event["requestContext"]["domainName"] = "gateway.example.com"
    event["requestContext"]["authorizer"] = {"accountId": account, "principalId": account}
    event["body"] = json.dumps(openai_body(urls=[{"url": url}]))
    from functions.registry import handler

    result = handler.lambda_handler(event, LambdaContext("registry"))
    error = json.loads(result["body"])["error"]
    assert (result["statusCode"], error["code"], error["details"]) == (
        400, "endpoint_blocked", {"reason": "gateway_origin"},
    )  # fmt: skip
    status, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    assert status == 201
    status, body, _ = invoke_registry(
        "registry/update",
        account,
        llm_id=created["id"],
        body={"urls": [{"url": url}]},
        headers={"If-Match": "1"},
    )
    if "gateway.example.com" not in url:  # the helper's events name the API id, not that domain
        assert (status, body["error"]["code"]) == (400, "endpoint_blocked")
    dry = load_event("validator/test_config")
    dry["requestContext"]["domainName"] = "gateway.example.com"
    status, body = invoke_validator(dry, account, openai_body(urls=[{"url": url}]), leak_collector)
    assert (status, body["error"]["code"]) == (400, "endpoint_blocked")


def test_a_management_request_carrying_our_hop_marker_is_508(
    aws: AwsStack, invoke_registry: Invoke, account: str
) -> None:
    marker = aws.registry.hop_marker.headers[HOP_HEADER]
    status, body, _ = invoke_registry(
        "registry/create_openai", account, body=openai_body(), headers={HOP_HEADER: marker}
    )
    assert (status, body["error"]["code"]) == (508, "loop_detected")
    assert aws.registry.llm_repository.list(account) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("displayName", "bot\u0000"),
        ("displayName", "line\nbreak"),
        ("displayName", "c1\u0085control"),
        ("displayName", "lone \ud800 surrogate"),
        ("description", "nul \u0000 inside"),
        ("description", "esc \u001b[31m red"),
        ("metadata", {"team\u0000": "a"}),
        ("metadata", {"team": "a\u0007b"}),
        ("headers", {"X-Trace": "caf\u00e9"}),
        ("headers", {"X-Trace": " leading"}),
        ("headers", {"X-Trace": "trailing "}),
        ("headers", {"X-Trace": "tab\there"}),
        ("headers", {"Via": "1.1 spoofed"}),
        ("headers", {"X-LLM-Gateway-Hop": "spoofed"}),
        ("secret", "sk-\ud800-lone"),
    ],
)
def test_text_fields_and_header_values_refuse_what_cannot_be_stored_or_sent(
    aws: AwsStack, invoke_registry: Invoke, account: str, field: str, value: Any
) -> None:
    # json.dumps writes control characters as \u0000-style escapes: the "escaped spelling".
    status, body, _ = invoke_registry("registry/create_openai", account, body=openai_body(**{field: value}))
    assert status == 400, body
    assert body["error"]["code"] == "validation_error"
    assert aws.registry.llm_repository.list(account) == []


def test_ordinary_unicode_text_and_inner_spaces_are_fine(invoke_registry: Invoke, account: str) -> None:
    body = openai_body(
        displayName="Café bot ✓", description="Ünïcode — fine", metadata={"équipe": "日本"},
        headers={"X-Trace": "a b c"},
    )  # fmt: skip
    status, created, _ = invoke_registry("registry/create_openai", account, body=body)
    assert status == 201, created
