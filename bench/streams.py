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
            return Sample(0.0, 0.0, False)
        async for chunk in response.content.iter_any():
            if first is None and b"data:" in chunk:
                first = time.perf_counter()
            if b"[DONE]" in chunk or b'"finishReason"' in chunk:
                ok = True
    end = time.perf_counter()
    return Sample(((first or end) - started) * 1000, (end - started) * 1000, ok)


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


@dataclass
class Comparison:
    scenario: str
    direct: list[Sample] = field(default_factory=list)
    proxied: list[Sample] = field(default_factory=list)
    gateway_cpu_s: float = 0.0

    def row(self) -> dict[str, Any]:
        def p(samples: list[Sample], attr: str, q: float) -> float:
            return percentile([getattr(s, attr) for s in samples if s.ok], q)

        return {
            "scenario": self.scenario,
            "streams": len(self.proxied),
            "failed": sum(not s.ok for s in self.direct + self.proxied),
            "ttft_direct_p50": p(self.direct, "ttft_ms", 50),
            "ttft_added_p50": p(self.proxied, "ttft_ms", 50) - p(self.direct, "ttft_ms", 50),
            "ttft_added_p95": p(self.proxied, "ttft_ms", 95) - p(self.direct, "ttft_ms", 95),
            "total_direct_p50": p(self.direct, "total_ms", 50),
            "total_added_p50": p(self.proxied, "total_ms", 50) - p(self.direct, "total_ms", 50),
            "total_added_p95": p(self.proxied, "total_ms", 95) - p(self.direct, "total_ms", 95),
            "cpu_ms_per_stream": self.gateway_cpu_s * 1000 / max(1, len(self.proxied)),
        }


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
