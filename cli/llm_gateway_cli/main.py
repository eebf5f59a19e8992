"""``llm-gateway``: the local stack, the conformance check, the fake provider and client commands."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors, which is what DESIGN.md §5 asks for."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llm-gateway",
        description="LLM Gateway: bring your own LLM to a real-time persona platform.",
        epilog="Start with `llm-gateway dev`, then follow the commands it prints.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run the local stack (moto, API, demo data) on loopback")
    dev.add_argument("--port", type=int, default=8787, help="API port (0 picks a free one; default 8787)")
    dev.add_argument("--state-file", type=Path, help="where to write the JSON state once ready")
    dev.add_argument("--no-demo", action="store_true", help="start without the demo account and LLMs")

    accounts = sub.add_parser("accounts", help="manage accounts").add_subparsers(dest="action", required=True)
    create = accounts.add_parser("create", help="create an account and print its API key (shown once)")
    create.add_argument("--name", required=True, help="a name for the account")
    create.add_argument("--state-file", type=Path, help="local stack state file (default: .local/state.json)")
    create.add_argument(
        "--stack-name", default="llm-gateway", help="deployed stack to use when no local stack runs"
    )
    create.add_argument("--json", action="store_true", help="print {accountId, apiKey} as JSON")

    fake = sub.add_parser(
        "fake-provider", help="a local OpenAI + Azure + Gemini upstream with faults", add_help=False
    )
    fake.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fake-provider"]:
        from llm_gateway_cli.fake_provider.cli import main as fake_main

        return fake_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "dev":
        return run_dev(args.port, args.state_file, demo=not args.no_demo)
    if args.command == "accounts" and args.action == "create":
        return accounts_create(args.name, args.state_file, args.stack_name, as_json=args.json)
    return USAGE_ERROR


def run_dev(port: int, state_file: Path | None, *, demo: bool) -> int:
    from llm_gateway_cli.local.stack import LocalStack, default_state_file

    stack = LocalStack(port=port, state_file=state_file or default_state_file(), demo=demo)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("Starting the local stack…", flush=True)
    try:
        state = stack.start()
    except Exception as exc:
        stack.stop()
        print(f"error: the local stack did not start: {exc}", file=sys.stderr)
        return 1
    _print_banner(state, stack.state_file)
    try:
        stop.wait()
    finally:
        print("\nStopping…", flush=True)
        stack.stop()
    return 0


def _print_banner(state: dict[str, Any], state_file: Path | None) -> None:
    api, key = state["apiUrl"], state.get("apiKey")
    lines = [
        f"LLM Gateway local stack is up in {state['startupSeconds']} s",
        f"  API:         {api}",
        f"  AWS (moto):  {state['awsEndpointUrl']}",
        f"  state file:  {state_file}",
    ]
    if key:
        lines += [
            f"  demo API key: {key}",
            "",
            "Try:",
            f"  curl -s {api}/v1/llms?includeDefaults=true -H 'Authorization: Bearer {key}'",
            f"  curl -s -X POST {api}/v1/llms -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
            '    -d \'{"displayName": "My model", "llmFormat": "openai", "modelName": "gpt-4o-mini",',
            '         "urls": [{"url": "https://api.openai.com/v1/chat/completions"}], "secret": "sk-..."}\'',
            "  llm-gateway accounts create --name second-team",
        ]
    lines += ["", "Press Ctrl-C to stop."]
    print("\n".join(lines), flush=True)


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
    elif state_file is not None:
        print(f"error: no state file at {state_file}; is `llm-gateway dev` running?", file=sys.stderr)
        return USAGE_ERROR
    else:
        os.environ["TABLE_NAME"] = _stack_output(stack_name, "TableName")

    from llm_gateway import composition
    from llm_gateway.domain.accounts import create_account

    composition.reset()
    created = create_account(composition.account_repository(), name)
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


if __name__ == "__main__":
    raise SystemExit(main())
