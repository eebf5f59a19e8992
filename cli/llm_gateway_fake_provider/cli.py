"""``llm-gateway fake-provider``: run the fake upstream in the foreground and show how to call it."""

from __future__ import annotations

import argparse
import sys

from .config import DEFAULT_KEY, FakeProviderConfig
from .faults import FAULT_HELP
from .server import serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-gateway fake-provider",
        description="A local OpenAI + Azure OpenAI + Gemini compatible upstream with scriptable faults.\n"
        "It answers every spec's chat route (OpenAI /v1/chat/completions, Azure classic and /openai/v1,\n"
        "Gemini streamGenerateContent) with a short streamed reply; `llm-gateway dev` runs one for its\n"
        "demo LLMs and the built-ins.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8788, help="port to bind; 0 picks a free one (default 8788)"
    )
    parser.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help=f"accepted API key, repeatable (default {DEFAULT_KEY})",
    )
    parser.add_argument(
        "--chunks", type=int, default=5, help="content chunks per reply unless x-fake-chunks says"
    )
    parser.add_argument(
        "--interval-ms", type=float, default=0.0, help="pause between chunks unless x-fake-interval-ms says"
    )
    return parser


def _epilog() -> str:
    width = max(len(name) for name in FAULT_HELP)
    faults = "\n".join(f"  {name:{width}}  {text}" for name, text in FAULT_HELP.items())
    return f"""\
faults: send the header 'x-fake-fault: NAME[:ARG]', or register the LLM with the model (or Azure
deployment) 'fake-fault-NAME[-ARG]' so every call misbehaves; 'x-fake-fault-times: N' limits a
fault to the first N requests of an 'x-fake-scenario' id.
{faults}
pacing: 'x-fake-chunks: N' and 'x-fake-interval-ms: MS' (defaults --chunks, --interval-ms).

examples:
  llm-gateway fake-provider --port 8788
  curl -N http://127.0.0.1:8788/v1/chat/completions -H 'Authorization: Bearer {DEFAULT_KEY}' \\
       -H 'x-fake-fault: stall:2' -H 'Content-Type: application/json' \\
       -d '{{"model": "m", "stream": true, "messages": [{{"role": "user", "content": "hi"}}]}}'
  llm-gateway check --format openai --url http://127.0.0.1:8788/v1 --model fake-fault-no-done \\
       --api-key {DEFAULT_KEY} --allow-private
"""


def usage_text(base_url: str, key: str) -> str:
    body = '{"model":"fake-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    gemini_body = '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
    return f"""Fake provider listening on {base_url}  (key: {key})

OpenAI:
  curl -N {base_url}/v1/chat/completions -H 'Authorization: Bearer {key}' \\
       -H 'Content-Type: application/json' -d '{body}'
Azure OpenAI (classic and v1):
  curl -N '{base_url}/openai/deployments/fake-deployment/chat/completions?api-version=2024-10-21' \\
       -H 'api-key: {key}' -H 'Content-Type: application/json' -d '{body}'
  curl -N {base_url}/openai/v1/chat/completions -H 'api-key: {key}' \\
       -H 'Content-Type: application/json' -d '{body}'
Gemini:
  curl -N '{base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse' \\
       -H 'x-goog-api-key: {key}' -H 'Content-Type: application/json' -d '{gemini_body}'

Faults: header 'x-fake-fault: <name>[:arg]' or model/deployment 'fake-fault-<name>[-arg]', e.g.
  -H 'x-fake-fault: stall:2', model 'fake-fault-no-done'.
Pacing: -H 'x-fake-chunks: 100' -H 'x-fake-interval-ms: 20'.
Observe: GET {base_url}/_fake/requests, GET {base_url}/_fake/connections, POST {base_url}/_fake/reset
Press Ctrl-C to stop."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.chunks < 1 or args.interval_ms < 0:
        print("--chunks must be >= 1 and --interval-ms >= 0", file=sys.stderr)
        return 2
    keys = tuple(args.keys or [DEFAULT_KEY])
    config = FakeProviderConfig(keys=keys, default_chunks=args.chunks, default_interval_ms=args.interval_ms)
    try:
        serve(args.host, args.port, config, on_ready=lambda url: print(usage_text(url, keys[0]), flush=True))
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
            "pick another port with --port N (0 picks a free one)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0
