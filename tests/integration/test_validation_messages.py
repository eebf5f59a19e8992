"""Validation errors as a person reads them: through the registry function, on events/ files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import CANARY
from tests.integration.conftest import AwsStack, Invoke
from tests.integration.test_registry_api import openai_body

#: pydantic's own words, which must never reach a client.
INTERNALS = ("Value error,", "Input tag", "discriminator", "LlmFormat.", "Unable to extract", "union_tag")


def _error(invoke_registry: Invoke, account: str, body: Any) -> dict[str, Any]:
    status, answer, _ = invoke_registry("registry/create_openai", account, body=body)
    assert status == 400, answer
    error = answer["error"]
    text = json.dumps(error)
    for word in INTERNALS:
        assert word not in text, f"{word!r} leaked into {text}"
    assert CANARY not in text
    return dict(error)


def _fields(error: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["message"] for d in error["details"]}


def test_an_unknown_llm_format_lists_the_allowed_values(invoke_registry: Invoke, account: str) -> None:
    error = _error(invoke_registry, account, openai_body(llmFormat="cohere"))
    message = _fields(error)["llmFormat"]
    assert "openai, azure_openai, gemini, anthropic, groq_openai" in message and "cohere" in message
    assert "llmFormat must be one of openai, azure_openai, gemini, anthropic, groq_openai" in error["message"]


def test_a_body_without_llm_format_lists_every_missing_field(invoke_registry: Invoke, account: str) -> None:
    error = _error(invoke_registry, account, {"displayName": "x"})
    fields = _fields(error)
    assert fields["llmFormat"] == "is required: one of openai, azure_openai, gemini, anthropic, groq_openai"
    assert {"urls", "modelName", "secret"} <= {f for f, m in fields.items() if m == "is required"}
    assert "displayName" not in fields


def test_an_empty_object_names_every_required_field(invoke_registry: Invoke, account: str) -> None:
    fields = _fields(_error(invoke_registry, account, {}))
    assert set(fields) == {"llmFormat", "displayName", "urls", "modelName", "secret"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"secret": "sk with space"}, "secret", "secret must not contain whitespace"),
        ({"urls": [{"url": "ftp://x"}]}, "urls[0].url", "must be at least 8 characters"),
        ({"urls": [{"url": "ftp://api.example.com/v1"}]}, "urls[0].url", "url must start with https://"),
        ({"urls": []}, "urls", "needs at least 1 item"),
        ({"temperature": 7}, "temperature", "must be at most 2"),
        ({"maxTokens": "many"}, "maxTokens", "must be a whole number"),
        ({"displayName": ""}, "displayName", "must not be empty"),
        ({"deploymentName": "d"}, "deploymentName", "does not apply to this llmFormat; leave it out"),
        ({"colour": "blue"}, "colour", "is not a known field"),
        ({"reasoningEffort": "max"}, "reasoningEffort", "must be one of default, low, medium, high"),
        ({"reasoningFormat": "shown"}, "reasoningFormat", "must be one of hidden, parsed, raw"),
        ({"headers": {"Authorization": "x"}}, "headers", "header 'Authorization' cannot be set"),
    ],
)
def test_field_errors_name_the_json_field_in_plain_words(
    invoke_registry: Invoke, account: str, overrides: dict[str, Any], field: str, message: str
) -> None:
    error = _error(invoke_registry, account, openai_body(**overrides))
    fields = _fields(error)
    assert field in fields, fields
    assert fields[field].startswith(message), fields[field]
    assert error["message"].startswith("The request is not valid: ")


@pytest.mark.parametrize(("raw", "message"), [("[]", "the body must be a JSON object")])
def test_a_body_that_is_not_an_object_says_so(
    invoke_registry: Invoke, account: str, raw: str, message: str
) -> None:
    error = _error(invoke_registry, account, json.loads(raw))
    assert _fields(error) == {"": message}


def test_an_update_reports_in_the_same_words(aws: AwsStack, invoke_registry: Invoke, account: str) -> None:
    status, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    assert status == 201
    status, answer, _ = invoke_registry(
        "registry/update", account, llm_id=created["id"], body={"deploymentName": "d"}
    )
    assert status == 400, answer
    assert _fields(answer["error"]) == {"deploymentName": "does not apply to this llmFormat; leave it out"}
    assert answer["error"]["message"].startswith("The updated LLM config is not valid: deploymentName")
    assert aws.registry.llm_repository.get(account, created["id"]) is not None
