"""``llm-gateway``: the local stack, the conformance check, the fake provider and client commands.

Each command group lives in ``commands/<name>.py`` and registers itself here.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from llm_gateway_cli.commands import accounts, api_keys, chat, check, dev, llms, tokens, webhooks

DEBUG_ENV = "LLM_GATEWAY_DEBUG"

#: Command modules, in the order ``--help`` lists them.
COMMANDS: list[Any] = [dev, accounts, api_keys, webhooks, check, llms, tokens, chat]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-gateway",
        description="LLM Gateway: bring your own LLM to a real-time persona platform.",
        epilog="Start with `llm-gateway dev`, then follow the commands it prints. Each command has --help.\n\n"
        "examples:\n"
        "  llm-gateway dev                                  # the local stack, with demo data\n"
        "  llm-gateway llms list --include-defaults         # against it, from another terminal\n"
        "  llm-gateway check --format openai --url https://api.openai.com/v1 --model gpt-4o-mini\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    fake = sub.add_parser("fake-provider", help="a local OpenAI + Azure + Gemini upstream with faults")
    fake.set_defaults(run=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 success, 1 failure, 2 usage error (argparse's own), 130 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["fake-provider"]:
            from llm_gateway_fake_provider.cli import main as fake_main

            return fake_main(argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Whatever the machine lacks, the user gets one line, not a traceback.
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
