"""Side-by-side stream timings: the fake provider called directly and through the gateway."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Sample:
    ttft_ms: float
    total_ms: float
    ok: bool
    started: float = 0.0
    """``time.perf_counter()`` when the request went out (to find the worst second)."""


@dataclass
class Target:
    """One way to get a 100-chunk stream: a URL, headers and a body."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]


async def one_stream(session: aiohttp.ClientSession, target: Target) -> Sample:
    started = time.perf_counter()
    first: float | None = None
    ok = False
    async with session.post(target.url, json=target.body, headers=target.headers) as response:
        if response.status != 200:
            await response.read()
            return Sample(0.0, 0.0, False, started)
        async for chunk in response.content.iter_any():
            if first is None and b"data:" in chunk:
                first = time.perf_counter()
            if b"[DONE]" in chunk or b'"finishReason"' in chunk:
                ok = True
    end = time.perf_counter()
    return Sample(((first or end) - started) * 1000, (end - started) * 1000, ok, started)


async def batch(
    target: Target, concurrency: int, rounds: int, cpu: Callable[[], float] = lambda: 0.0
) -> tuple[list[Sample], float]:
    """Streams and the CPU seconds ``cpu()`` advanced while they ran (warm-up excluded)."""
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one_stream(session, target) for _ in range(concurrency)))  # warm the pools
        out: list[Sample] = []
        before = cpu()
        for _ in range(rounds):
            out.extend(await asyncio.gather(*(one_stream(session, target) for _ in range(concurrency))))
        return out, cpu() - before


async def waves(
    session: aiohttp.ClientSession, target: Target, concurrency: int, seconds: float
) -> tuple[list[Sample], float]:
    """Waves of ``concurrency`` streams started together, until ``seconds`` have passed."""
    out: list[Sample] = []
    started = time.perf_counter()
    while True:
        out.extend(await asyncio.gather(*(one_stream(session, target) for _ in range(concurrency))))
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return out, elapsed


async def compare(
    comparison: Comparison,
    direct: Target,
    proxied: Target,
    concurrency: int,
    *,
    seconds: float,
    round_s: float,
    cpu: Callable[[], float],
) -> Comparison:
    """Direct and proxied rounds of about ``round_s`` each, alternating, until the proxied rounds
    add up to ``seconds`` (every per-container cache expires many times over during that)."""

    def client() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2))

    async with client() as to_direct, client() as to_proxy:
        await waves(to_direct, direct, concurrency, 0)  # warm both pools
        await waves(to_proxy, proxied, concurrency, 0)
        while comparison.proxied_s < seconds:
            samples, _ = await waves(to_direct, direct, concurrency, round_s)
            comparison.direct += samples
            before = cpu()
            samples, elapsed = await waves(to_proxy, proxied, concurrency, round_s)
            comparison.gateway_cpu_s += cpu() - before
            comparison.proxied += samples
            comparison.proxied_s += elapsed
    return comparison


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def worst_second(samples: list[Sample], baseline_ms: float) -> float:
    """The highest mean TTFT over the requests started within one wall-clock second, minus the
    baseline: a cache that expires now and then shows up here even when the percentiles hide it."""
    ok = [s for s in samples if s.ok]
    if not ok:
        return float("nan")
    origin = min(s.started for s in ok)
    windows: dict[int, list[float]] = {}
    for sample in ok:
        windows.setdefault(int(sample.started - origin), []).append(sample.ttft_ms)
    return max(sum(v) / len(v) for v in windows.values()) - baseline_ms


@dataclass
class Comparison:
    scenario: str
    concurrency: int = 1
    interval_ms: int = 0
    direct: list[Sample] = field(default_factory=list)
    proxied: list[Sample] = field(default_factory=list)
    gateway_cpu_s: float = 0.0
    proxied_s: float = 0.0

    def row(self) -> dict[str, Any]:
        def p(samples: list[Sample], attr: str, q: float) -> float:
            return percentile([getattr(s, attr) for s in samples if s.ok], q)

        direct_p50 = p(self.direct, "ttft_ms", 50)
        return {
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "interval_ms": self.interval_ms,
            "streams": len(self.proxied),
            "proxied_seconds": round(self.proxied_s, 1),
            "failed": sum(not s.ok for s in self.direct + self.proxied),
            "ttft_direct_p50": direct_p50,
            "ttft_added_p50": p(self.proxied, "ttft_ms", 50) - direct_p50,
            "ttft_added_p95": p(self.proxied, "ttft_ms", 95) - p(self.direct, "ttft_ms", 95),
            "ttft_added_p99": p(self.proxied, "ttft_ms", 99) - p(self.direct, "ttft_ms", 99),
            "ttft_added_worst_second": worst_second(self.proxied, direct_p50),
            "total_direct_p50": p(self.direct, "total_ms", 50),
            "total_added_p50": p(self.proxied, "total_ms", 50) - p(self.direct, "total_ms", 50),
            "total_added_p95": p(self.proxied, "total_ms", 95) - p(self.direct, "total_ms", 95),
            "cpu_ms_per_stream": self.gateway_cpu_s * 1000 / max(1, len(self.proxied)),
        }


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
