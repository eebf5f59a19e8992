"""Secrets in request models are pydantic ``SecretStr``: no repr, str or JSON dump shows the key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from llm_gateway.models.llm import LlmCreate, LlmUpdate
from tests.conftest import CANARY

BODY = {
    "displayName": "m",
    "llmFormat": "openai",
    "modelName": "gpt-4o",
    "urls": [{"url": "https://api.example.com/v1"}],
    "secret": CANARY,
}


def shown(model: Any) -> str:
    return " ".join([repr(model), str(model), model.model_dump_json(), str(model.model_dump(mode="json"))])


def test_a_create_body_never_shows_its_key() -> None:
    created: Any = TypeAdapter(LlmCreate).validate_python(BODY)
    assert CANARY not in shown(created)
    assert created.secret.get_secret_value() == CANARY


def test_an_update_never_shows_its_key() -> None:
    patch = LlmUpdate.model_validate({"secret": CANARY})
    assert CANARY not in shown(patch)
    assert patch.secret is not None and patch.secret.get_secret_value() == CANARY


@pytest.mark.parametrize("secret", ["", " leading", "with space", "tab\tinside", "nul\x00", "x" * 4097])
def test_bad_keys_are_refused_without_echoing_them(secret: str) -> None:
    with pytest.raises(ValidationError) as error:
        TypeAdapter(LlmCreate).validate_python(BODY | {"secret": secret})
    details = error.value.errors(include_input=False)
    assert [e["loc"][-1] for e in details] == ["secret"]
    assert all(secret not in str(e["msg"]) for e in details if secret.strip())
