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
    api, key, fake = state["apiUrl"], state.get("apiKey"), state.get("fakeProviderUrl")
    lines = [
        f"LLM Gateway local stack is up in {state['startupSeconds']} s",
        f"  API:           {api}",
        f"  Lab:           {state['labUrl']}  (the web console; sign in with the demo API key)",
        f"  AWS (moto):    {state['awsEndpointUrl']}",
        f"  fake provider: {fake}  (key: fake-key)",
        f"  state file:    {state_file}",
    ]
    if key:
        from llm_gateway_cli.local.stack import default_state_file

        found = "" if state_file in (None, default_state_file()) else f" --state-file {state_file}"
        demo = state.get("llms") or {}
        lines += [f"  demo API key:  {key}"]
        lines += [f"  demo LLM ({name}): {llm_id}" for name, llm_id in demo.items()]
        lines += [
            "",
            "Try (the CLI is .venv/bin/llm-gateway):",
            f"  curl -s '{api}/v1/llms?includeDefaults=true' -H 'Authorization: Bearer {key}'",
            f"  curl -s -X POST {api}/v1/llms -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
            '    -d \'{"displayName": "My model", "llmFormat": "openai", "modelName": "fake-model",',
            f'         "urls": [{{"url": "{fake}/v1/chat/completions"}}], "secret": "fake-key"}}\'',
        ]
        if "openai" in demo:
            lines += [f"  llm-gateway chat --llm {demo['openai']} --message 'Hello'{found}"]
        lines += [
            "  llm-gateway check --format openai --url "
            + f"{fake}/v1 --model fake-model --api-key fake-key --allow-private",
            f"  llm-gateway accounts create --name second-team{found}",
        ]
    lines += ["", "Press Ctrl-C to stop."]
    print("\n".join(lines), flush=True)
