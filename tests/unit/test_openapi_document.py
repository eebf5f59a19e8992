"""The served OpenAPI document is exactly what the handlers generate (run `make openapi` if not)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from llm_gateway_cli.openapi_export import packaged_path, render


@pytest.fixture(autouse=True)
def forget_the_handlers() -> Iterator[None]:
    """``render`` imports the handlers here, outside any moto: Powertools' idempotency store keeps
    the client it built then. Forgotten afterwards, the integration tier imports them afresh."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("functions."):
            del sys.modules[name]


def test_packaged_document_matches_the_handlers() -> None:
    assert packaged_path().read_text("utf-8") == render(), "the OpenAPI document is stale: run `make openapi`"


def test_every_management_route_is_documented_with_bearer_auth() -> None:
    document = json.loads(render())
    assert set(document["paths"]) >= {
        "/v1/llms", "/v1/llms/{llm_id}", "/v1/llms/test", "/v1/llms/{llm_id}/validate",
        "/v1/llms/{llm_id}/validation", "/v1/auth/session-token", "/v1/session-token", "/v1/sessions/{session_id}",
    }  # fmt: skip
    assert document["security"] == [{"accountApiKey": []}]
    assert document["paths"]["/.well-known/jwks.json"]["get"]["security"] == []
    responses = [op["responses"] for ops in document["paths"].values() for op in ops.values()]
    assert not [r for r in responses if "422" in r], "validation errors are documented as 400"


def test_the_error_codes_a_client_can_meet_are_documented() -> None:
    document = json.loads(render())
    code = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    for name in (
        "invalid_request",
        "credential_in_url",
        "loop_detected",
        "endpoint_blocked",
        "internal_error",
    ):
        assert f"`{name}`" in code["description"], name


def test_the_document_says_what_the_server_answers_and_refuses() -> None:
    """Issue 20's drift: 204s have no body, every id in a path can be a 400 (its pattern, its
    length), a built-in's /validation is a 403, and the schemas refuse what the server refuses."""
    document = json.loads(packaged_path().read_text("utf-8"))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if "204" in responses:
                assert "content" not in responses["204"], (method, path)
            if "{" in path:
                assert "400" in responses, (method, path)
    assert "403" in document["paths"]["/v1/llms/{llm_id}/validation"]["get"]["responses"]
    schemas = document["components"]["schemas"]
    assert {"anyOf": [{"required": ["llmId"]}, {"required": ["brainType"]}]}.items() <= schemas[
        "PersonaConfig"
    ].items()
    text = json.dumps(schemas)
    assert '"propertyNames"' in text, "header names are tokens"
    assert "\\\\u0000-\\\\u001f" in text, "a secret has no control characters"
