"""``llm-gateway``: the local stack, the conformance check, the fake provider and client commands.

Each command group lives in ``commands/<name>.py`` and registers itself here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llm_gateway_cli.commands import accounts, api_keys, chat, check, dev, llms, tokens

#: Command modules, in the order ``--help`` lists them.
COMMANDS: list[Any] = [dev, accounts, api_keys, check, llms, tokens, chat]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-gateway",
        description="LLM Gateway: bring your own LLM to a real-time persona platform.",
        epilog="Start with `llm-gateway dev`, then follow the commands it prints.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    fake = sub.add_parser("fake-provider", help="a local OpenAI + Azure + Gemini upstream with faults")
    fake.set_defaults(run=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 success, 1 failure, 2 usage error (argparse's own)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fake-provider"]:
        from llm_gateway_cli.fake_provider.cli import main as fake_main

        return fake_main(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
