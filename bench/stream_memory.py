"""Resident memory of the stream app under load: the figure behind the StreamMemorySize default.

`.venv/bin/python -m bench.stream_memory` starts the local stack in this process (moto, fake
provider, demo account), then the stream app exactly as run.sh starts it in Lambda (uvicorn, uvloop,
httptools, `app:create_app --factory`) in its own process with the functions' environment, and streams through it:
first one stream (a cold container), then many in a row (what one Lambda execution environment
does: one stream at a time), then many at once (far beyond one stream per environment). It prints
the app process's VmRSS after each phase and its peak (VmHWM), from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.streams import Target, batch

REPO = Path(__file__).resolve().parents[1]


def memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(port: int, function_env: dict[str, str], aws_url: str) -> subprocess.Popen[bytes]:
    """run.sh's command line, with the stream function's environment in the local stack (and
    moto's fake credentials, as a Lambda role's would be there)."""
    env = dict(os.environ) | function_env | {
        "AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_METRICS_DISABLED": "true",
    }  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "layers" / "common"), str(REPO / "functions" / "stream_proxy")]
    )
    command = [sys.executable, "-m", "uvicorn", "app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
               "--timeout-keep-alive", "75"]  # fmt: skip
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=REPO / "functions" / "stream_proxy",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the stream app did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_memory", description=__doc__)
    parser.add_argument("--sequential", type=int, default=300, help="streams one after another")
    parser.add_argument("--concurrency", type=int, default=50, help="streams at once in the last phase")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of concurrent streams")
    parser.add_argument("--chunks", type=int, default=300, help="chunks per answer")
    args = parser.parse_args(argv)

    from llm_gateway_local.stack import LocalStack

    stack = LocalStack(port=0, state_file=None, demo=True, log=lambda _: None)
    state = stack.start()
    app: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        app = start_app(port, stack.environments["StreamProxyFunction"], state["awsEndpointUrl"])
        rows: list[tuple[str, dict[str, float]]] = [("started (readiness check passed)", memory_mb(app.pid))]
        api = httpx.Client(base_url=state["apiUrl"], headers={"Authorization": f"Bearer {state['apiKey']}"})
        fake = state["fakeProviderUrl"]
        created = api.post(
            "/v1/llms",
            json={"displayName": "memory bench", "llmFormat": "openai", "modelName": "fake-model",
                  "urls": [{"url": f"{fake}/v1/chat/completions"}], "secret": "fake-key",
                  "headers": {"x-fake-chunks": str(args.chunks), "x-fake-interval-ms": "1"}},
        ).json()  # fmt: skip
        while api.get(f"/v1/llms/{created['id']}").json()["status"] == "pending":
            time.sleep(0.2)
        token = api.post(
            "/v1/auth/session-token", json={"personaConfig": {"name": "bench", "llmId": created["id"]}}
        ).json()["sessionToken"]
        target = Target(
            url=f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            body={
                "model": "x",
                "stream": True,
                "messages": [{"role": "user", "content": "Tell me a story."}],
            },
        )
        phases: list[tuple[str, Any]] = [
            ("after 1 stream (cold container)", lambda: batch(target, 1, 1)),
            (f"after {args.sequential} streams, one at a time", lambda: batch(target, 1, args.sequential)),
            (
                f"after {args.rounds} x {args.concurrency} concurrent streams",
                lambda: batch(target, args.concurrency, args.rounds),
            ),
        ]
        for label, run in phases:
            samples, _ = asyncio.run(run())
            failed = sum(not s.ok for s in samples)
            rows.append((label + (f" ({failed} failed)" if failed else ""), memory_mb(app.pid)))
        print(
            f"stream app memory, {args.chunks}-chunk answers, Python {sys.version.split()[0]} on {os.uname().machine}"
        )
        for label, fields in rows:
            print(f"  {label:<48} RSS {fields['VmRSS']:6.1f} MB   peak {fields['VmHWM']:6.1f} MB")
        return 0
    finally:
        if app is not None:
            app.terminate()
            app.wait(10)
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
