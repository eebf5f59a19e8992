"""The error vocabulary as clients meet it: the 501st LLM is a 409, a null or a bad enum value is a
400, a body that is not JSON is a 415, and every response names its request id (a 500 in its body)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.api_keys import handler as api_keys_handler
from functions.lab import handler as lab_handler
from llm_gateway.domain.registry import MAX_LLMS_PER_ACCOUNT
from llm_gateway.models.llm import EndpointUrl, LlmFormat, LlmStatus, StoredLlm, ValidationSummary
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import load_event
from tests.integration.conftest import AwsStack, Invoke


def _stored(account: str) -> StoredLlm:
    return StoredLlm(
        id=str(uuid.uuid4()), display_name="filler", llm_format=LlmFormat.OPENAI,
        urls=[EndpointUrl(url="https://api.openai.com/v1/chat/completions")], model_name="m",
        status=LlmStatus.VALID, validation=ValidationSummary(compatible=True), version=1,
        account_id=account, secret_ref="ref", created_at=datetime.now(UTC),
    )  # fmt: skip


def _public_body() -> dict[str, Any]:
    return {"displayName": "n", "llmFormat": "openai", "modelName": "m", "secret": "sk-test-0001",
            "urls": [{"url": "https://api.openai.com/v1/chat/completions"}]}  # fmt: skip


@pytest.fixture
def offline_dns(aws: AwsStack) -> None:
    from llm_gateway.adapters.guarded_http import registration_url_guard

    aws.provide(
        url_guard=registration_url_guard(allow_private=False, resolver=lambda host, port: ["104.18.6.192"])
    )


def test_the_501st_llm_is_a_409_that_says_why(
    aws: AwsStack, invoke_registry: Invoke, account: str, offline_dns: None
) -> None:
    for _ in range(MAX_LLMS_PER_ACCOUNT):
        aws.registry.llm_repository.create(_stored(account), limit=MAX_LLMS_PER_ACCOUNT)
    status, body, headers = invoke_registry("registry/create_openai", account, body=_public_body())
    assert status == 409, body
    assert body["error"]["code"] == "llm_limit_reached"
    assert headers["x-request-id"]


@pytest.mark.parametrize(
    "patch", [{"llmFormat": None}, {"llmFormat": "bard"}, {"urls": None}, {"displayName": None}]
)
def test_a_null_or_a_bad_enum_value_in_an_update_is_a_400_naming_the_field(
    aws: AwsStack, invoke_registry: Invoke, account: str, offline_dns: None, patch: dict[str, Any]
) -> None:
    status, created, _ = invoke_registry("registry/create_openai", account, body=_public_body())
    assert status == 201, created
    status, body, _ = invoke_registry("registry/update", account, llm_id=created["id"], body=patch)
    assert status == 400, body
    assert body["error"]["code"] == "validation_error"
    assert [d["field"] for d in body["error"]["details"]] == list(patch)


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain",
                     "application/x-www-form-urlencoded", "application/xml"],
)  # fmt: skip
def test_a_body_that_is_not_json_is_a_415(invoke_registry: Invoke, account: str, content_type: str) -> None:
    status, body, headers = invoke_registry(
        "registry/create_openai", account, body=_public_body(), headers={"Content-Type": content_type}
    )
    assert status == 415, body
    assert body["error"]["code"] == "unsupported_media_type"
    assert headers["x-request-id"]


def test_every_response_carries_the_request_id_and_a_500_names_it(
    aws: AwsStack, invoke_registry: Invoke, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, headers = invoke_registry("registry/list", account)
    assert (
        status == 200
        and headers["x-request-id"] == load_event("registry/list")["requestContext"]["requestId"]
    )

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(aws.registry.registry, "list", broken)
    status, body, headers = invoke_registry("registry/list", account)
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["details"]["requestId"] == headers["x-request-id"]


def test_the_other_functions_name_the_request_id_too(aws: AwsStack, account: str) -> None:
    event = load_event("api_keys/list")
    event["requestContext"]["authorizer"] = {"accountId": account}
    for handler, each in ((api_keys_handler, event), (lab_handler, load_event("lab/page"))):
        result = handler.lambda_handler(each, LambdaContext("f"))
        headers = {
            **{k: v[0] for k, v in (result.get("multiValueHeaders") or {}).items()},
            **(result.get("headers") or {}),
        }
        assert headers["x-request-id"] == each["requestContext"]["requestId"], handler.__name__
