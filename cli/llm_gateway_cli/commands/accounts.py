"""``llm-gateway accounts create``: a new account and its API key, shown once.

Accounts are written straight to the gateway's table (there is no public "create account" route):
the local stack's (moto, found through its state file) or a deployed stack's (AWS credentials and
the stack's ``TableName`` output). Which one is always the caller's explicit choice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_gateway.adapters.aws import AwsClients

USAGE_ERROR = 2
FAILURE = 1

_DESCRIPTION = """\
Create an account and print its API key (shown once: store it). The key goes in
Authorization: Bearer <key> on every management route.

Where the account is created:
  the local stack     its state file: .local/state.json by default, or --state-file PATH
  a deployed stack    --stack-name NAME, with AWS credentials and a region in the usual AWS
                      settings (AWS_PROFILE or AWS_ACCESS_KEY_ID/..., AWS_REGION)
"""

_EPILOG = """\
examples:
  llm-gateway accounts create --name my-team                        # the running `llm-gateway dev`
  llm-gateway accounts create --name my-team --state-file /tmp/gw.json --json
  AWS_PROFILE=prod AWS_REGION=eu-west-1 llm-gateway accounts create --name my-team --stack-name llm-gateway
"""


def register(sub: Any) -> None:
    accounts = sub.add_parser(
        "accounts",
        help="manage accounts",
        description="Manage gateway accounts (each has its own LLMs and API keys).",
        epilog="examples:\n  llm-gateway accounts create --name my-team",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    create = accounts.add_parser(
        "create",
        help="create an account and print its API key (shown once)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("--name", required=True, help="a name for the account")
    create.add_argument(
        "--state-file",
        type=Path,
        metavar="PATH",
        help="local stack state file (default .local/state.json, or $LLM_GATEWAY_STATE_FILE)",
    )
    create.add_argument("--stack-name", metavar="NAME", help="a deployed stack (uses your AWS credentials)")
    create.add_argument("--json", action="store_true", help="print {accountId, apiKey} as JSON")
    create.set_defaults(run=lambda a: accounts_create(a.name, a.state_file, a.stack_name, as_json=a.json))


@dataclass(frozen=True)
class Target:
    """Where the account goes: a table (and the stage's usage plan), reached with these clients."""

    aws: AwsClients
    table_name: str
    usage_plan_id: str
    label: str


def accounts_create(name: str, state_file: Path | None, stack_name: str | None, *, as_json: bool) -> int:
    from llm_gateway_local.stack import default_state_file

    if state_file is not None and stack_name is not None:
        print("error: give --state-file (local stack) or --stack-name (deployed), not both", file=sys.stderr)
        return USAGE_ERROR
    if stack_name is not None:
        target = _deployed_target(stack_name)
    else:
        target = _local_target(state_file or default_state_file(), explicit=state_file is not None)
    if target is None:
        return FAILURE
    return _create(name, target, as_json=as_json)


def _local_target(path: Path, *, explicit: bool) -> Target | None:
    if not path.exists():
        if explicit:
            print(
                f"error: no local stack: no state file at {path}; is `llm-gateway dev` running?",
                file=sys.stderr,
            )
        else:
            print(
                f"error: no local stack to create the account in (no state file at {path}): start "
                "`llm-gateway dev` or pass --state-file PATH; for a deployed gateway pass --stack-name NAME, "
                "with AWS credentials and a region",
                file=sys.stderr,
            )
        return None
    from llm_gateway.adapters.aws import AwsClients

    try:
        state = json.loads(path.read_text("utf-8"))
        aws = AwsClients.local(str(state["awsEndpointUrl"]), str(state.get("region", "us-east-1")))
        return Target(aws, str(state["tableName"]), str(state.get("usagePlanId") or ""), "the local stack")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot read the state file {path} ({type(exc).__name__})", file=sys.stderr)
        return None


def _deployed_target(stack_name: str) -> Target | None:
    """The table of a deployed stack, from its ``TableName`` output; every AWS problem is one line.
    The AWS clients take the region and credentials from the user's usual AWS settings."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    from llm_gateway.adapters.aws import AwsClients

    where = f"the CloudFormation stack {stack_name!r}"
    # botocore reads AWS_DEFAULT_REGION and profiles but not AWS_REGION, which users (and the AWS
    # CLI v2) set: honour it first.
    aws = AwsClients(region=os.environ.get("AWS_REGION") or None)
    try:
        stacks = aws.cloudformation().describe_stacks(StackName=stack_name)["Stacks"]
    except NoRegionError:
        print(
            f"error: cannot reach {where}: no AWS region; set AWS_REGION (or a profile's region)",
            file=sys.stderr,
        )
        return None
    except NoCredentialsError:
        print(
            f"error: cannot reach {where}: no AWS credentials; set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or use --state-file for the local stack)",
            file=sys.stderr,
        )
        return None
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        print(f"error: cannot read {where}: {message or type(exc).__name__}", file=sys.stderr)
        return None
    except BotoCoreError as exc:
        print(f"error: cannot reach {where}: {exc}", file=sys.stderr)
        return None
    outputs = {
        o["OutputKey"]: str(o["OutputValue"]) for o in (stacks[0].get("Outputs", []) if stacks else [])
    }
    if "TableName" in outputs:
        return Target(aws, outputs["TableName"], outputs.get("UsagePlanId", ""), stack_name)
    print(f"error: {where} has no TableName output; is it an LLM Gateway stack?", file=sys.stderr)
    return None


def _create(name: str, target: Target, *, as_json: bool) -> int:
    """Only what an account needs: its table (the account and key records) and the usage plan."""
    from botocore.exceptions import BotoCoreError, ClientError

    from llm_gateway.adapters.dynamodb import DynamoAccountRepository
    from llm_gateway.domain.accounts import create_account
    from llm_gateway_local.usage_plan import enroll

    try:
        created = create_account(DynamoAccountRepository(target.aws.dynamodb(), target.table_name), name)
        if target.usage_plan_id:  # the account's own throttle: its key in the stage's usage plan
            enroll(target.aws, target.table_name, created.account_id, target.usage_plan_id)
    except (BotoCoreError, ClientError) as exc:
        print(
            f"error: cannot create the account in {target.label}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return FAILURE
    if as_json:
        print(json.dumps(created.to_json_dict()))
    else:
        print(f"Account {created.account_id} created for {name!r}.")
        print(f"API key (shown once, store it now): {created.api_key}")
    return 0
