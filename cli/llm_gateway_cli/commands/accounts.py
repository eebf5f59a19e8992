"""``llm-gateway accounts create``: a new account and its API key, shown once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

USAGE_ERROR = 2


def register(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="manage accounts").add_subparsers(dest="action", required=True)
    create = accounts.add_parser("create", help="create an account and print its API key (shown once)")
    create.add_argument("--name", required=True, help="a name for the account")
    create.add_argument("--state-file", type=Path, help="local stack state file (default: .local/state.json)")
    create.add_argument(
        "--stack-name", default="llm-gateway", help="deployed stack to use when no local stack runs"
    )
    create.add_argument("--json", action="store_true", help="print {accountId, apiKey} as JSON")
    create.set_defaults(run=lambda a: accounts_create(a.name, a.state_file, a.stack_name, as_json=a.json))


def accounts_create(name: str, state_file: Path | None, stack_name: str, *, as_json: bool) -> int:
    import os

    from llm_gateway_cli.local.stack import default_state_file

    path = state_file or default_state_file()
    if path.exists():
        state = json.loads(path.read_text("utf-8"))
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": state["awsEndpointUrl"],
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": state.get("region", "us-east-1"),
                "TABLE_NAME": state["tableName"],
            }
        )
        usage_plan_id = state.get("usagePlanId")
    elif state_file is not None:
        print(f"error: no state file at {state_file}; is `llm-gateway dev` running?", file=sys.stderr)
        return USAGE_ERROR
    else:
        os.environ["TABLE_NAME"] = _stack_output(stack_name, "TableName")
        usage_plan_id = _stack_output(stack_name, "UsagePlanId")

    from llm_gateway import composition
    from llm_gateway.domain.accounts import create_account
    from llm_gateway.domain.usage_plans import enroll_account

    composition.reset()
    created = create_account(composition.account_repository(), name)
    if usage_plan_id:  # the account's own throttle: its key in the stage's usage plan
        enroll_account(
            composition.usage_plans(), composition.usage_key_repository(), created.account_id, usage_plan_id
        )
    if as_json:
        print(json.dumps(created.to_json_dict()))
    else:
        print(f"Account {created.account_id} created for {name!r}.")
        print(f"API key (shown once, store it now): {created.api_key}")
    return 0


def _stack_output(stack_name: str, key: str) -> str:
    import boto3

    stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise SystemExit(f"error: stack {stack_name} has no output {key}")
