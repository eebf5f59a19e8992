"""CPU per relayed chunk of an OpenAI answer with and without the thought routing of issue 23
(``reasoningFormat`` hidden, the default): ``python -m bench.thought_routing``.

A 400-word answer is fed chunk by chunk through ``OpenAiPassThrough``; the routing is then replaced
by a plain pass-through to isolate its cost. Best of 40 runs each (a shared machine is noisy).
"""

from __future__ import annotations

import json
import time

from llm_gateway.providers.openai import thoughts
from llm_gateway.providers.openai.relay import OpenAiPassThrough


def _event(delta: dict[str, object], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


EVENTS = [_event({"role": "assistant", "content": ""}), *(_event({"content": " word"}) for _ in range(400)),
          _event({}, "stop"), b"data: [DONE]\n\n"]  # fmt: skip


def per_chunk_us(runs: int = 40) -> float:
    best = float("inf")
    for _ in range(runs):
        relay = OpenAiPassThrough(azure=False)
        started = time.perf_counter()
        for event in EVENTS:
            relay.feed(event)
        relay.finish()
        best = min(best, (time.perf_counter() - started) / len(EVENTS))
    return best * 1e6


def main() -> None:
    routed = per_chunk_us()
    original = thoughts.ChunkThoughts.route
    thoughts.ChunkThoughts.route = lambda self, chunk, data: None  # type: ignore[method-assign]  # as it came
    try:
        plain = per_chunk_us()
    finally:
        thoughts.ChunkThoughts.route = original  # type: ignore[method-assign]
    print(
        f"per chunk: {routed:.2f} µs with thought routing, {plain:.2f} µs without (+{routed - plain:.2f} µs)"
    )


if __name__ == "__main__":
    main()
