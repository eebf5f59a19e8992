"""`make bench`: stream overhead (direct vs through `llm-gateway dev`), first token under faults,
token costs, the request log's write batching, cold starts.

Everything runs on loopback: two fake providers (0 ms and 20 ms between chunks, 100 chunks each)
in their own processes, the local stack in another, and this client. Direct and proxied batches
are interleaved round by round so both see the same machine state. Results go to BENCHMARKS.md
between the generated markers; the prose around them is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.faults import BEGIN as FAULTS_BEGIN
from bench.faults import END as FAULTS_END
from bench.faults import bookkeeping_us, fault_table, render_faults
from bench.streams import Comparison, Target, cpu_seconds, percentile

REPO = Path(__file__).resolve().parents[1]
CHUNKS = 100
PROMPT = [{"role": "user", "content": "Tell me a story."}]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake(interval_ms: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_gateway_fake_provider", "--port", str(port),
         "--chunks", str(CHUNKS), "--interval-ms", str(interval_ms)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_http(f"{url}/_fake/health")
    return proc, url


def _wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_stack(state_file: Path, upstreams: list[str]) -> subprocess.Popen[bytes]:
    """``upstreams``: the bench's own fake providers, on loopback origins the stack must allow."""
    allowed = [arg for url in upstreams for arg in ("--allow-endpoint", url)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_gateway_cli.main", "dev", "--port", "0", "--state-file", str(state_file),
         *allowed],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("llm-gateway dev did not start")
        time.sleep(0.1)
    return proc


def register(api: httpx.Client, name: str, body: dict[str, Any]) -> str:
    created = api.post("/v1/llms", json={"displayName": name, "secret": "fake-key", **body})
    created.raise_for_status()
    llm_id = str(created.json()["id"])
    deadline = time.monotonic() + 30
    while api.get(f"/v1/llms/{llm_id}").json()["status"] == "pending":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not validated")
        time.sleep(0.1)
    return llm_id


def mint(api: httpx.Client, llm_id: str) -> str:
    response = api.post("/v1/auth/session-token", json={"personaConfig": {"name": "bench", "llmId": llm_id}})
    response.raise_for_status()
    return str(response.json()["sessionToken"])


#: (spec, ms between chunks, concurrent streams). Each runs >= SCENARIO_SECONDS of proxied traffic
#: plus as much direct traffic, interleaved: ~1 min per scenario (~11 min, then ~4 min of capacity).
#: Chosen for the goals (OpenAI pass-through paced at 1 and 8 streams, each next to the bare
#: aiohttp pass-through that is their floor), the burst CPU next to the paced one for each spec
#: (8 streams, 0 ms), the translated path paced, and one wider fan-out.
SCENARIOS = [
    ("openai", 20, 1),
    ("passthrough", 20, 1),
    ("openai", 20, 8),
    ("passthrough", 20, 8),
    ("openai", 0, 8),
    ("gemini", 20, 8),
    ("gemini", 0, 8),
    ("openai", 20, 32),
]
SCENARIO_SECONDS = 30.0
ROUND_SECONDS = 3.0


#: The floor (``bench.passthrough``): a bare aiohttp relay, measured like the gateway, interleaved.
FLOOR = "passthrough"


def start_floor(upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.passthrough", "--port", str(port), "--upstream", upstream],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_http(f"{url}/healthz")
    return proc, url


def stream_scenarios(
    api_url: str,
    api: httpx.Client,
    fakes: dict[int, str],
    pids: dict[str, int],
    quick: bool,
    floor_url: str,
    only: list[str] | None = None,
) -> list[dict[str, Any]]:
    """``pids``: the process whose CPU counts, per spec (the stack's; the floor's own)."""
    from bench.streams import compare

    rows: list[dict[str, Any]] = []
    targets: dict[tuple[str, int], tuple[Target, Target]] = {}
    for spec, interval, concurrency in SCENARIOS:
        if only and f"{spec}/{interval}/{concurrency}" not in only:
            continue
        if (spec, interval) not in targets:
            if spec == FLOOR:
                direct = _targets(api_url, api, "openai", interval, fakes[interval], register_llm=False)[0]
                targets[spec, interval] = (
                    direct,
                    Target(f"{floor_url}/v1/chat/completions", direct.headers, direct.body),
                )
            else:
                targets[spec, interval] = _targets(api_url, api, spec, interval, fakes[interval])
        direct, proxied = targets[spec, interval]
        kind = {"openai": "openai pass-through", FLOOR: "bare aiohttp pass-through (floor)"}.get(
            spec, f"{spec} translated"
        )
        comparison = Comparison(f"{kind}, {concurrency} stream(s), {interval} ms", concurrency, interval)
        pid = pids.get(spec, pids["gateway"])
        asyncio.run(
            compare(
                comparison, direct, proxied, concurrency,
                seconds=4.0 if quick else SCENARIO_SECONDS, round_s=1.0 if quick else ROUND_SECONDS,
                cpu=functools.partial(cpu_seconds, pid),
            )
        )  # fmt: skip
        rows.append(comparison.row())
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _targets(
    api_url: str, api: httpx.Client, spec: str, interval: int, fake: str, *, register_llm: bool = True
) -> tuple[Target, Target]:
    if spec == "openai":
        # The gateway asks every upstream for usage (the request log): so does the direct call, so
        # both read the same upstream stream (the fake paces its usage chunk like any other).
        direct = Target(f"{fake}/v1/chat/completions", {"Authorization": "Bearer fake-key"},
                        {"model": "fake-model", "messages": PROMPT, "stream": True,
                         "stream_options": {"include_usage": True}})  # fmt: skip
        if not register_llm:
            return direct, direct
        llm = register(api, f"bench openai {interval}ms", {"llmFormat": "openai", "modelName": "fake-model",
                                                            "urls": [{"url": f"{fake}/v1/chat/completions"}]})  # fmt: skip
    else:
        llm = register(api, f"bench gemini {interval}ms", {"llmFormat": "gemini", "modelName": "gemini-2.5-flash",
                                                            "urls": [{"url": fake}]})  # fmt: skip
        direct = Target(f"{fake}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                        {"x-goog-api-key": "fake-key"},
                        {"contents": [{"role": "user", "parts": [{"text": "Tell me a story."}]}]})  # fmt: skip
    proxied = Target(f"{api_url}/v1/chat/completions", {"Authorization": f"Bearer {mint(api, llm)}"},
                     {"model": "ignored", "messages": PROMPT, "stream": True})  # fmt: skip
    return direct, proxied


def token_figures(api: httpx.Client, llm_id: str, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        mint(api, llm_id)
        times.append((time.perf_counter() - started) * 1000)
    return {"mint_p50_ms": percentile(times, 50), "mint_p95_ms": percentile(times, 95)}


def verify_micros(n: int = 5000) -> float:
    """Offline ES256 verify of a session token (no KMS, no session lookup), in-process."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from llm_gateway.domain.tokens import (
        PublicKeySet,
        TokenMinter,
        TokenPolicy,
        TokenVerifier,
        jwk_thumbprint,
    )

    key = ec.generate_private_key(ec.SECP256R1())
    kid = jwk_thumbprint(key.public_key())

    class LocalSigner:
        key_id = kid

        def sign(self, message: bytes) -> bytes:
            r, s = utils.decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    policy = TokenPolicy(issuer="https://bench", audience="llm-gateway-stream")
    token = TokenMinter(LocalSigner(), policy).mint(account_id="a", session_id="s", llm_id="l").token
    verifier = TokenVerifier(PublicKeySet({kid: key.public_key()}), policy)
    for _ in range(200):
        verifier.verify(token)
    started = time.perf_counter()
    for _ in range(n):
        verifier.verify(token)
    return (time.perf_counter() - started) / n * 1e6


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def render(
    rows: list[dict[str, Any]],
    tokens: dict[str, float],
    verify_us: float,
    cold: list[dict[str, Any]],
    request_log: dict[str, Any] | None = None,
    capacity: tuple[list[dict[str, Any]], dict[str, Any]] | None = None,
) -> str:
    lines = [BEGIN, "", f"Generated by `make bench` on {time.strftime('%Y-%m-%d')}: {machine()}.", ""]
    lines += [
        "| scenario | proxied streams (s) | TTFT direct p50 | added TTFT p50 | p95 | p99 | worst 1 s | "
        "total direct p50 | added total p50 | gateway CPU / stream |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['streams']} ({r['proxied_seconds']:.0f} s) | {r['ttft_direct_p50']:.2f} ms | "
            f"{r['ttft_added_p50']:+.2f} ms | {r['ttft_added_p95']:+.2f} ms | {r['ttft_added_p99']:+.2f} ms | "
            f"{r['ttft_added_worst_second']:+.2f} ms | {r['total_direct_p50']:.1f} ms | "
            f"{r['total_added_p50']:+.2f} ms | {r['cpu_ms_per_stream']:.2f} ms |"
        )
    cpu = {
        (r["scenario"].split(",")[0], r["concurrency"], r["interval_ms"]): r["cpu_ms_per_stream"]
        for r in rows
    }
    pairs = sorted({(name, c) for name, c, i in cpu if (name, c, 0) in cpu and (name, c, 20) in cpu})
    if pairs:
        lines += ["", "| gateway CPU per 100-chunk stream | paced (20 ms) | burst (0 ms) |", "|---|---|---|"]
        lines += [
            f"| {name}, {c} streams | {cpu[name, c, 20]:.2f} ms | {cpu[name, c, 0]:.2f} ms |"
            for name, c in pairs
        ]
    lines += ["", "| token | figure |", "|---|---|",
              f"| mint through the local stack (HTTP, moto KMS Sign), p50 | {tokens['mint_p50_ms']:.1f} ms |",
              f"| mint, p95 | {tokens['mint_p95_ms']:.1f} ms |",
              f"| verify (offline ES256, in-process) | {verify_us:.0f} µs |"]  # fmt: skip
    if capacity:
        from bench.capacity import render as render_capacity

        lines += [
            "",
            "Capacity: one stream-app process (one managed-instances environment), 100 chunks 20 ms apart:",
            "",
        ]
        lines += [render_capacity(*capacity)]
    if request_log:
        from bench.request_log import render as render_request_log

        lines += render_request_log(request_log)
    if cold:
        lines += ["", "| function | cold init (import + services, median of 7) |", "|---|---|"]
        lines += [f"| {c['function']} | {c['median_ms']:.0f} ms |" for c in cold]
    lines += ["", END]
    return "\n".join(lines)


def write_benchmarks(section: str, begin: str = BEGIN, end: str = END) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text("utf-8") if path.exists() else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    else:
        text += "\n" + section + "\n"
    path.write_text(text, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (fewer rounds); not for BENCHMARKS.md"
    )
    parser.add_argument(
        "--no-cold-start", action="store_true", help="skip the cold-start measurement (needs sam build)"
    )
    parser.add_argument(
        "--no-capacity", action="store_true", help="skip the capacity scenario (bench.capacity)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    parser.add_argument(
        "--faults-only", action="store_true", help='only the "first token under faults" table'
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="SPEC/MS/N",
        help="only these stream scenarios (e.g. openai/20/1); not for BENCHMARKS.md",
    )
    parser.add_argument(
        "--no-request-log", action="store_true", help="skip the request log's batching figures"
    )
    args = parser.parse_args(argv)

    procs: list[subprocess.Popen[bytes]] = []
    try:
        fakes = {}
        for interval in (0, 20):
            proc, url = start_fake(interval)
            procs.append(proc)
            fakes[interval] = url
        floor, floor_url = start_floor(fakes[20])
        procs.append(floor)
        broken, broken_url = start_fake(20)  # A of the fault table: its faults touch nothing else
        procs.append(broken)
        state_file = Path(tempfile.mkdtemp()) / "state.json"
        stack = start_stack(state_file, [*fakes.values(), broken_url])
        procs.append(stack)
        state = json.loads(state_file.read_text())
        with httpx.Client(
            base_url=state["apiUrl"], headers={"Authorization": f"Bearer {state['apiKey']}"}, timeout=60
        ) as api:
            faults = fault_table(
                state["apiUrl"], api, broken_url, fakes[20], register, mint, 4 if args.quick else 10
            )
            if args.faults_only:
                section = render_faults(faults, machine(), bookkeeping_us())
                print(section)
                if not args.quick:
                    write_benchmarks(section, FAULTS_BEGIN, FAULTS_END)
                return 0
            pids = {"gateway": stack.pid, FLOOR: floor.pid}
            rows = stream_scenarios(state["apiUrl"], api, fakes, pids, args.quick, floor_url, args.scenario)
            tokens = token_figures(api, state["llms"]["openai"], 30 if args.quick else 200)
        verify_us = verify_micros()
        request_log: dict[str, Any] | None = None
        if not args.no_request_log:
            from bench.request_log import figures as request_log_figures

            request_log = request_log_figures()
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    capacity: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
    if not args.no_capacity and not args.scenario:
        from bench.capacity import run as capacity_run

        capacity = capacity_run([64, 256] if args.quick else [64, 256, 512])
    cold: list[dict[str, Any]] = []
    if not args.no_cold_start:
        from bench.cold_start import measure_all

        cold = measure_all()
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "streams": rows,
                    "tokens": tokens,
                    "verify_us": verify_us,
                    "cold": cold,
                    "requestLog": request_log,
                    "capacity": capacity,
                },
                indent=2,
            )
        )
    section = render(rows, tokens, verify_us, cold, request_log, capacity)
    print(section)
    faults_section = render_faults(faults, machine(), bookkeeping_us())
    print(faults_section)
    if not args.quick and not args.scenario:
        write_benchmarks(section)
        write_benchmarks(faults_section, FAULTS_BEGIN, FAULTS_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
