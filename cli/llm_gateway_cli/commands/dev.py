"""``llm-gateway dev``: run the local stack until interrupted."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run the local stack (moto, API, fake provider, demo data) on loopback")
    dev.add_argument("--port", type=int, default=8787, help="API port (0 picks a free one; default 8787)")
    dev.add_argument("--state-file", type=Path, help="where to write the JSON state once ready")
    dev.add_argument("--no-demo", action="store_true", help="start without the demo account and LLMs")
    dev.set_defaults(run=lambda a: run_dev(a.port, a.state_file, demo=not a.no_demo))


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
