"""Item 5: a deployed function without one of its required settings fails its init, naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llm_gateway.settings import REQUIRED_VARIABLES, Settings, SettingsError, get_settings
from tests.conftest import REPO, TEST_SETTINGS


def test_the_resource_names_are_required() -> None:
    assert set(REQUIRED_VARIABLES) == {
        "STAGE", "TABLE_NAME", "EVENT_BUS_NAME", "CREDENTIALS_KEY_ID", "TOKEN_SIGNING_KEY_ID", "TOKEN_ISSUER",
    }  # fmt: skip


def test_a_missing_one_is_named_and_nothing_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    monkeypatch.setenv("PRIVATE_ENDPOINT_ORIGINS", "ftp://sometimes")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as error:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "missing required environment variable(s): TABLE_NAME" in str(error.value)
    assert "invalid environment variable(s): PRIVATE_ENDPOINT_ORIGINS" in str(error.value)
    assert "sometimes" not in str(error.value), "values are never echoed (one could be a secret)"


def test_the_test_environment_sets_every_one_explicitly() -> None:
    settings = Settings.model_validate(TEST_SETTINGS)
    assert settings.table_name == TEST_SETTINGS["TABLE_NAME"]


@pytest.mark.parametrize(
    "module", ["functions.registry.handler", "functions.validator.handler", "functions.session_tokens.handler",
               "functions.stream_proxy.app"],
)  # fmt: skip
def test_a_function_without_its_table_fails_at_init(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TABLE_NAME"}
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SettingsError" in result.stderr and "TABLE_NAME" in result.stderr
