"""``llm-gateway accounts create`` from a plain shell (``env -i PATH="$PATH" HOME="$HOME"``), as the
``make dev`` banner tells a new user to run it: against the running stack, the state file of a
``--no-demo`` stack, and a deployed stack by name (here a CloudFormation stack in moto)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LeakCollector, plain_env
from tests.local_stack import RunningStack, launch_stack

CLI = str(Path(sys.executable).with_name("llm-gateway"))


def create(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "accounts", "create", *args],
        capture_output=True, text=True, timeout=60, env=plain_env(**(env or {})),
    )  # fmt: skip


def assert_key_works(api_url: str, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["apiKey"]
    listed = httpx.get(f"{api_url}/v1/llms", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert listed.status_code == 200, listed.text


def test_the_running_stack_from_a_plain_shell(stack: RunningStack) -> None:
    """The default state file (``LLM_GATEWAY_STATE_FILE`` moves it, so a developer's stack is safe)."""
    done = create("--name", "plain-shell", "--json", env={"LLM_GATEWAY_STATE_FILE": str(stack.state_file)})
    assert_key_works(stack.api_url, done)


def test_the_state_file_of_the_running_stack_from_a_plain_shell(stack: RunningStack) -> None:
    done = create("--name", "plain-shell-2", "--state-file", str(stack.state_file), "--json")
    assert_key_works(stack.api_url, done)


@pytest.fixture(scope="module")
def empty_stack(
    tmp_path_factory: pytest.TempPathFactory, leak_collector: LeakCollector
) -> Iterator[RunningStack]:
    with launch_stack(
        tmp_path_factory.mktemp("no-demo"), leak_collector, "--no-demo", "--revalidate-every", "off"
    ) as running:
        yield running


def test_a_no_demo_stack_then_its_first_account_from_a_plain_shell(empty_stack: RunningStack) -> None:
    done = create("--name", "first", "--state-file", str(empty_stack.state_file), "--json")
    assert_key_works(empty_stack.api_url, done)
    text = create("--name", "second", "--state-file", str(empty_stack.state_file))
    assert text.returncode == 0, text.stderr
    assert "API key (shown once, store it now): llmgw_" in text.stdout


_DEPLOYED = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "SK", "KeyType": "RANGE"},
                ],
            },
        }
    },
    "Outputs": {"TableName": {"Value": {"Ref": "Table"}}},
}


def test_a_deployed_stack_by_name_with_only_the_users_aws_settings(stack: RunningStack) -> None:
    """``--stack-name`` reads the table from the stack's outputs; the user's AWS settings (here: moto's
    endpoint and its fake credentials) are all it needs."""
    cloudformation = stack.aws("cloudformation")
    cloudformation.create_stack(StackName="deployed-gateway", TemplateBody=json.dumps(_DEPLOYED))
    aws = {
        "AWS_ENDPOINT_URL": stack.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
    }
    done = create("--name", "deployed", "--stack-name", "deployed-gateway", "--json", env=aws)
    assert done.returncode == 0, done.stderr
    account = json.loads(done.stdout)["accountId"]
    outputs = cloudformation.describe_stacks(StackName="deployed-gateway")["Stacks"][0]["Outputs"]
    table = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName")
    items = stack.aws("dynamodb").scan(TableName=table)["Items"]
    assert any(account in json.dumps(item) for item in items), "the account is in the deployed stack's table"
