"""``llm-gateway dev``: run the local stack until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

_DESCRIPTION = """\
Run the whole gateway on loopback, no Docker and no AWS account: moto (DynamoDB, KMS, Secrets
Manager, EventBridge, SQS) with the resources of template.yaml, the REST API with its authorizer,
the streaming chat endpoint, the validator fed from its queue, and a fake OpenAI + Azure + Gemini
provider. With the demo (the default) it creates an account and one validated LLM per format.

Once ready it writes a state file (JSON: apiUrl, apiKey, awsEndpointUrl, fakeProviderUrl, llms)
that the other commands read. Everything lives in memory: a restart starts empty, with a new demo
key. LLM endpoints must be public https URLs, except the fake provider and any origin listed with
--allow-endpoint (the stack's own API and moto are refused even then). Each request prints one line (method, path, status, account, duration; time to first token
and outcome for streams); --quiet turns that off. Ctrl-C stops everything it started.

The re-validation schedule runs as a local timer (every 15 minutes, each LLM once per 6 hours, as
deployed); --revalidate-every re-validates every LLM that often instead, to watch health change.
"""

_EPILOG = """\
examples:
  llm-gateway dev                          # port 8787, state file .local/state.json
  llm-gateway dev --port 0 --state-file /tmp/gw.json   # any free port, own state file
  llm-gateway dev --no-demo --quiet        # empty stack; then: llm-gateway accounts create --name me
  llm-gateway dev --allow-endpoint http://127.0.0.1:8000   # LLMs may also use a server of yours
  llm-gateway dev --revalidate-every 30s   # re-validate every LLM every 30 s (health, webhooks)
"""


def register(sub: Any) -> None:
    dev = sub.add_parser(
        "dev",
        help="run the local stack (moto, API, fake provider, demo data) on loopback",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dev.add_argument("--port", type=int, default=8787, help="API port (0 picks a free one; default 8787)")
    dev.add_argument(
        "--state-file",
        type=Path,
        metavar="PATH",
        help="where to write the JSON state once ready (default .local/state.json, or $LLM_GATEWAY_STATE_FILE)",
    )
    dev.add_argument("--no-demo", action="store_true", help="start without the demo account and LLMs")
    dev.add_argument("--quiet", action="store_true", help="no per-request log lines")
    dev.add_argument(
        "--allow-endpoint",
        action="append",
        default=[],
        type=_origin,
        metavar="ORIGIN",
        help="let LLMs use this private origin (http://127.0.0.1:8000), besides the fake provider; "
        "repeatable. The stack's own API and AWS ports stay refused",
    )
    dev.add_argument(
        "--revalidate-every",
        metavar="DURATION",
        help="re-validate every LLM this often (30s, 5m, 1h; default: the template's 6 h; off: never)",
    )
    dev.add_argument(
        "--flush-traffic-every",
        metavar="DURATION",
        help="how often the stream app writes its traffic counters to health (default 10s)",
    )
    dev.set_defaults(
        run=lambda a: run_dev(
            a.port,
            a.state_file,
            demo=not a.no_demo,
            quiet=a.quiet,
            allowed_endpoints=a.allow_endpoint,
            revalidate_every=a.revalidate_every,
            flush_traffic_every=a.flush_traffic_every,
        )
    )


def _origin(value: str) -> str:
    from llm_gateway.origins import parse_origin

    try:
        scheme, host, port = parse_origin(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. http://127.0.0.1:8000)") from None
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _periods(
    revalidate_every: str | None, flush_traffic_every: str | None
) -> tuple[float | None, float | None] | None:
    """(re-validation period, traffic flush period) from the flags; None (said on stderr) when one
    does not parse."""
    from llm_gateway_local.schedules import parse_duration

    try:
        every = (
            None
            if revalidate_every is None
            else 0.0
            if revalidate_every == "off"
            else parse_duration(revalidate_every)
        )
    except ValueError as exc:
        print(f"error: --revalidate-every: {exc}", file=sys.stderr)
        return None
    try:
        flush = None if flush_traffic_every is None else parse_duration(flush_traffic_every)
    except ValueError as exc:
        print(f"error: --flush-traffic-every: {exc}", file=sys.stderr)
        return None
    return every, flush


def run_dev(
    port: int,
    state_file: Path | None,
    *,
    demo: bool,
    quiet: bool = False,
    allowed_endpoints: list[str] | None = None,
    revalidate_every: str | None = None,
    flush_traffic_every: str | None = None,
) -> int:
    from llm_gateway_local.servers import StackStartError
    from llm_gateway_local.stack import LocalStack, default_state_file

    if not 0 <= port <= 65535:
        print(f"error: --port {port} is not a port number (0-65535)", file=sys.stderr)
        return 2
    periods = _periods(revalidate_every, flush_traffic_every)
    if periods is None:
        return 2
    every, flush = periods
    request_log = None if quiet else (lambda line: print(line, flush=True))
    stack = LocalStack(
        port=port,
        state_file=state_file or default_state_file(),
        demo=demo,
        request_log=request_log,
        allowed_endpoints=list(allowed_endpoints or []),
        revalidate_every=every,
        flush_traffic_every=flush,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("Starting the local stack…", flush=True)
    try:
        state = stack.start()
    except StackStartError as exc:
        stack.stop()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        stack.stop()
        print(f"error: the local stack did not start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _print_banner(state, stack.state_file)
    try:
        stop.wait()
    finally:
        print("\nStopping…", flush=True)
        stack.stop()
    return 0


def _print_banner(state: dict[str, Any], state_file: Path | None) -> None:
    from llm_gateway_cli.invocation import cli_command
    from llm_gateway_local.stack import default_state_file

    cli = cli_command()
    api, key, fake = state["apiUrl"], state.get("apiKey"), state.get("fakeProviderUrl")
    found = "" if state_file in (None, default_state_file()) else f" --state-file {state_file}"
    lines = [
        f"LLM Gateway local stack is up in {state['startupSeconds']} s",
        f"  API:           {api}",
        f"  Lab:           {state.get('labUrl') or api + '/lab/'}  (the web console; sign in with an API key)",
        f"  AWS (moto):    {state['awsEndpointUrl']}",
        f"  fake provider: {fake}  (key: fake-key)",
        f"  state file:    {state_file}",
    ]
    if key:
        demo = state.get("llms") or {}
        lines += [f"  demo API key:  {key}  (new on every start: data lives in memory)"]
        lines += [f"  demo LLM ({name}): {llm_id}" for name, llm_id in demo.items()]
        lines += [
            "",
            "Try:",
            f"  curl -s '{api}/v1/llms?includeDefaults=true' -H 'Authorization: Bearer {key}'",
            f"  curl -s -X POST {api}/v1/llms -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
            '    -d \'{"displayName": "My model", "llmFormat": "openai", "modelName": "fake-model",',
            f'         "urls": [{{"url": "{fake}/v1/chat/completions"}}], "secret": "fake-key"}}\'',
        ]
        if "openai" in demo:
            lines += [f"  {cli} chat --llm {demo['openai']} --message 'Hello'{found}"]
        lines += [
            f"  {cli} check --format openai --url {fake}/v1 --model fake-model --api-key fake-key --allow-private",
            f"  {cli} accounts create --name second-team{found}",
        ]
    else:
        lines += [
            "",
            "No demo data (--no-demo). Next, create an account and keep its API key:",
            f"  {cli} accounts create --name my-team --state-file {state_file}",
            "then register an LLM with that key (README: The API, with curl).",
        ]
    lines += ["", "Press Ctrl-C to stop."]
    print("\n".join(lines), flush=True)
