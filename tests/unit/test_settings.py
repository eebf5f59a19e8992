"""Each function declares exactly the variables it reads; a missing one fails its first use (its
init), naming the variable; nothing is read at import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llm_gateway.settings import (
    FUNCTION_SETTINGS,
    RegistrySettings,
    RevalidationSchedulerSettings,
    SettingsError,
    StreamSettings,
    WebhookDeliverySettings,
)
from llm_gateway_local.template import load_template
from tests.conftest import REPO, TEST_SETTINGS, plain_env


def test_each_function_requires_its_own_resources_only() -> None:
    assert FUNCTION_SETTINGS["AuthorizerFunction"].required_variables() == {"TABLE_NAME"}
    assert FUNCTION_SETTINGS["ApiKeysFunction"].required_variables() == {"TABLE_NAME", "STAGE", "HOP_MARKER"}
    assert RevalidationSchedulerSettings.required_variables() == {"TABLE_NAME", "REVALIDATION_QUEUE_URL"}
    assert "WEBHOOK_QUEUE_URL" in WebhookDeliverySettings.required_variables()
    assert "TOKEN_SIGNING_KEY_ID" not in RegistrySettings.variables(), "the registry never signs"
    assert "CREDENTIALS_KEY_ID" not in FUNCTION_SETTINGS["SessionTokensFunction"].variables()


def test_the_template_gives_every_function_what_its_settings_require() -> None:
    """What each function's model requires, the template sets for that function (Globals + its own)."""
    template = load_template()
    common = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for logical, model in FUNCTION_SETTINGS.items():
        own = template["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
        missing = model.required_variables() - common - set(own)
        assert not missing, f"{logical} needs {sorted(missing)} from template.yaml"


def test_a_missing_one_is_named_and_an_invalid_one_too_but_never_its_value() -> None:
    environ = {k: v for k, v in TEST_SETTINGS.items() if k != "TABLE_NAME"}
    with pytest.raises(SettingsError) as error:
        StreamSettings.from_environ(environ | {"PRIVATE_ENDPOINT_ORIGINS": "ftp://sometimes"})
    assert "missing required environment variable(s): TABLE_NAME" in str(error.value)
    assert "invalid environment variable(s): PRIVATE_ENDPOINT_ORIGINS" in str(error.value)
    assert "sometimes" not in str(error.value), "values are never echoed (one could be a secret)"


def test_the_scheduler_fails_on_its_own_queue_not_late() -> None:
    with pytest.raises(SettingsError, match="REVALIDATION_QUEUE_URL"):
        RevalidationSchedulerSettings.from_environ({"TABLE_NAME": "t"})


def test_settings_come_from_the_values_given_not_the_process() -> None:
    assert RegistrySettings.from_environ(TEST_SETTINGS).table_name == TEST_SETTINGS["TABLE_NAME"]


HANDLERS = {
    "functions.registry.handler": "lambda_handler",
    "functions.validator.api": "lambda_handler",
    "functions.validator.consumer": "lambda_handler",
    "functions.session_tokens.handler": "lambda_handler",
    "functions.revalidation_scheduler.handler": "lambda_handler",
}


@pytest.mark.parametrize("module", [*HANDLERS, "functions.stream_proxy.app"])
def test_a_function_imports_with_no_settings_at_all(module: str) -> None:
    """Nothing is read or built at import: the module loads in an empty environment."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=plain_env(), cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", list(HANDLERS))
def test_a_function_without_its_table_fails_its_first_use_naming_it(module: str) -> None:
    code = (
        f"import {module} as m\n"
        "try:\n    m.services()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    environ = {k: v for k, v in TEST_SETTINGS.items() if k != "TABLE_NAME"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=plain_env(**environ), cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout.startswith("SettingsError") and "TABLE_NAME" in result.stdout, (
        result.stdout + result.stderr
    )


def test_the_stream_app_fails_its_start_up_naming_the_missing_variable() -> None:
    code = (
        "import asyncio\nfrom functions.stream_proxy.app import create_app\n"
        "try:\n    asyncio.run(create_app().state.runtime.warm_up())\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    environ = {k: v for k, v in TEST_SETTINGS.items() if k != "TOKEN_SIGNING_KEY_ID"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=plain_env(**environ), cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout.startswith("SettingsError") and "TOKEN_SIGNING_KEY_ID" in result.stdout, (
        result.stdout
    )
