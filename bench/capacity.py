"""Capacity of one stream-app process (one Lambda Managed Instances execution environment).

`.venv/bin/python -m bench.capacity` starts the local stack in this process (moto and the fake
provider are its child processes), then the stream app exactly as run.sh starts it (uvicorn,
uvloop, httptools) in a process of its own, and sends it 64, 256 and 512 concurrent paced streams
(100 chunks, 20 ms apart), started together (burst) and spread over one second (staggered), each
wave next to the same wave sent directly to the fake provider. It reports the added time to first
token (p50, p99), the relay process's CPU per stream (/proc utime+stime) and resident memory per
stream (VmRSS sampled during the wave, minus the idle figure), and errors, for three relays side by
side: the stream app against the full local stack (its table read answered by moto), the same app
with the table read answered by a constant-time stand-in (``bench.table_stand_in``: the recorded
answer replayed, so moto's speed is not measured), and a bare aiohttp pass-through
(``bench.passthrough``), the floor of what any Python relay costs here. It also starts a cold app
process and times its init and its first request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.stream_memory import free_port, memory_mb, start_app
from bench.streams import Sample, Target, cpu_seconds, one_stream, percentile

SIZES = (64, 256, 512)
STAGGER_S = 1.0


async def wave(
    target: Target, n: int, stagger_s: float, pid: int | None
) -> tuple[list[Sample], float, float]:
    """n streams (started together, or evenly over ``stagger_s``); CPU seconds and peak RSS of ``pid``."""
    connector = aiohttp.TCPConnector(limit=0)
    peak = 0.0

    async def watch() -> None:
        nonlocal peak
        while pid is not None:
            peak = max(peak, memory_mb(pid)["VmRSS"])
            await asyncio.sleep(0.1)

    async def delayed(i: int, session: aiohttp.ClientSession) -> Sample:
        if stagger_s:
            await asyncio.sleep(stagger_s * i / n)
        try:
            return await one_stream(session, target)
        except (aiohttp.ClientError, TimeoutError):
            return Sample(0.0, 0.0, False)

    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        watcher = asyncio.create_task(watch())
        before = cpu_seconds(pid) if pid else 0.0
        samples = await asyncio.gather(*(delayed(i, session) for i in range(n)))
        cpu = (cpu_seconds(pid) if pid else 0.0) - before
        watcher.cancel()
    return list(samples), cpu, peak


def _row(
    n: int, mode: str, direct: list[Sample], proxied: list[Sample], cpu: float, rss: float, idle: float
) -> dict[str, Any]:
    def p(samples: list[Sample], q: float) -> float:
        return percentile([s.ttft_ms for s in samples if s.ok], q)

    return {
        "streams": n, "starts": mode,
        "ttft_direct_p50": p(direct, 50),
        "ttft_added_p50": p(proxied, 50) - p(direct, 50),
        "ttft_added_p99": p(proxied, 99) - p(direct, 99),
        "cpu_ms_per_stream": cpu * 1000 / n,
        "rss_kb_per_stream": max(0.0, rss - idle) * 1024 / n,
        "rss_peak_mb": rss,
        "errors": sum(not s.ok for s in proxied), "direct_errors": sum(not s.ok for s in direct),
    }  # fmt: skip


def render(rows: list[dict[str, Any]], cold: dict[str, Any] | None = None) -> str:
    lines = [
        "| relay | concurrent streams | starts | TTFT direct p50 | added TTFT p50 | added p99 | CPU / stream | "
        "RSS / stream | RSS peak | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['relay']} | {r['streams']} | {r['starts']} | {r['ttft_direct_p50']:.1f} ms | {r['ttft_added_p50']:+.1f} ms | "
            f"{r['ttft_added_p99']:+.1f} ms | {r['cpu_ms_per_stream']:.2f} ms | {r['rss_kb_per_stream']:.0f} KB | "
            f"{r['rss_peak_mb']:.0f} MB | {r['errors']} (direct {r['direct_errors']}) |"
        )
    if cold:
        lines += [
            "",
            "| cold stream-app process (this machine, Python 3.11) | figure |",
            "|---|---|",
            f"| init: process start to readiness (imports, warm-up, `/healthz` answers) | {cold['init_ms']:.0f} ms |",
            f"| its first request: added time to first token | {cold['first_ttft_added_ms']:+.1f} ms"
            f"{'' if cold['first_request_ok'] else ' (failed)'} |",
            f"| end to end: init + first token added | {cold['init_ms'] + cold['first_ttft_added_ms']:.0f} ms |",
        ]
    return "\n".join(lines)


def _serve(module: str, port: int, upstream: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--upstream", upstream],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


def direct_target(fake: str, pacing: dict[str, str], body: dict[str, Any]) -> Target:
    return Target(f"{fake}/v1/chat/completions", {"Authorization": "Bearer fake-key", **pacing}, body)


def _app(stack_env: dict[str, str], aws_url: str) -> tuple[subprocess.Popen[bytes], int]:
    """The stream app as run.sh starts it, with the stack's stream-function environment; its AWS
    calls go to ``aws_url`` (moto, or the stand-in in front of it)."""
    port = free_port()
    return start_app(port, stack_env, aws_url), port


def run(sizes: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every row (for each size and start pattern, direct, then each relay in turn), and the cold
    container: process start to readiness (init), then its first request's added time to first token."""
    from llm_gateway_local.stack import LocalStack

    stack = LocalStack(port=0, state_file=None, demo=True, log=lambda _: None)
    state = stack.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        api = httpx.Client(base_url=state["apiUrl"], headers={"Authorization": f"Bearer {state['apiKey']}"})
        fake = state["fakeProviderUrl"]
        pacing = {"x-fake-chunks": "100", "x-fake-interval-ms": "20"}
        created = api.post(
            "/v1/llms",
            json={"displayName": "capacity bench", "llmFormat": "openai", "modelName": "fake-model",
                  "urls": [{"url": f"{fake}/v1/chat/completions"}], "secret": "fake-key", "headers": pacing},
        ).json()  # fmt: skip
        while api.get(f"/v1/llms/{created['id']}").json()["status"] == "pending":
            time.sleep(0.2)
        token = api.post(
            "/v1/auth/session-token", json={"personaConfig": {"name": "bench", "llmId": created["id"]}}
        ).json()["sessionToken"]
        body = {
            "model": "fake-model",
            "stream": True,
            # As the gateway asks every upstream (the request log): the same upstream stream either way.
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Tell me a story."}],
        }
        bearer = {"Authorization": f"Bearer {token}"}
        stack_env = stack.environments["StreamProxyFunction"]
        started = time.perf_counter()
        full, full_port = _app(stack_env, state["awsEndpointUrl"])
        cold = {"init_ms": (time.perf_counter() - started) * 1000}
        cold_target = Target(f"http://127.0.0.1:{full_port}/v1/chat/completions", bearer, body)
        first, _, _ = asyncio.run(wave(cold_target, 1, 0, None))
        baseline, _, _ = asyncio.run(wave(direct_target(fake, pacing, body), 1, 0, None))
        cold["first_ttft_added_ms"] = first[0].ttft_ms - baseline[0].ttft_ms
        cold["first_request_ok"] = first[0].ok
        print(json.dumps({"cold": cold}), flush=True)
        stand_in_port = free_port()
        procs += [full, _serve("bench.table_stand_in", stand_in_port, state["awsEndpointUrl"])]
        quick, quick_port = _app(stack_env, f"http://127.0.0.1:{stand_in_port}")
        floor_port = free_port()
        floor = _serve("bench.passthrough", floor_port, fake)
        procs += [quick, floor]
        relays = [
            ("gateway, full local stack", full, Target(f"http://127.0.0.1:{full_port}/v1/chat/completions", bearer, body)),
            ("gateway, table read stand-in", quick,
             Target(f"http://127.0.0.1:{quick_port}/v1/chat/completions", bearer, body)),
            ("bare aiohttp pass-through", floor,
             Target(f"http://127.0.0.1:{floor_port}/v1/chat/completions", {"Authorization": "Bearer fake-key", **pacing}, body)),
        ]  # fmt: skip
        direct = direct_target(fake, pacing, body)
        idle = {}
        for _, proc, target in relays:
            asyncio.run(wave(target, 8, 0, None))  # warm each relay's pools and caches
            idle[proc.pid] = memory_mb(proc.pid)["VmRSS"]
        rows = []
        for n in sizes:
            for mode, stagger in (("burst", 0.0), ("staggered over 1 s", STAGGER_S)):
                d, _, _ = asyncio.run(wave(direct, n, stagger, None))
                for name, proc, target in relays:
                    p, cpu, rss = asyncio.run(wave(target, n, stagger, proc.pid))
                    rows.append({"relay": name, **_row(n, mode, d, p, cpu, rss, idle[proc.pid])})
                    print(json.dumps(rows[-1]), flush=True)
        return rows, cold
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rows, cold = run(args.sizes)
    print(render(rows, cold))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cold": cold}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
