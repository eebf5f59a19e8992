"""Fault selection: a request misbehaves when a header or its model/deployment name asks for it.

Header: ``x-fake-fault: <name>[:arg]``. Model or deployment: ``fake-fault-<name>[-<arg>]`` (e.g.
``fake-fault-stall-3``), so a registered LLM config can misbehave without custom headers.
``x-fake-fault-times: N`` applies the fault to the first N requests of the ``x-fake-scenario`` id
(default: the fault spec itself) and serves the rest normally, for "fail twice then succeed".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FAULT_HEADER = "x-fake-fault"
FAULT_TIMES_HEADER = "x-fake-fault-times"
SCENARIO_HEADER = "x-fake-scenario"
MODEL_FAULT_PREFIX = "fake-fault-"

FAULT_NAMES: tuple[str, ...] = (
    "wrong-content-type",
    "no-content-type",
    "ndjson",
    "no-done",
    "invalid-json",
    "mid-stream-error",
    "stall",
    "reset",
    "drip",
    "buffered",
    "delay-first-byte",
    "accept-any-key",
    "redirect",
    "echo-key-in-error",
    "context-length",
    "content-filter",
    "no-prefill",
)
#: What each fault does, for ``llm-gateway fake-provider --help`` and the README.
FAULT_HELP: dict[str, str] = {
    "wrong-content-type": "stream with Content-Type application/json instead of text/event-stream",
    "no-content-type": "stream without a Content-Type header",
    "ndjson": "newline-delimited JSON lines instead of SSE data: events",
    "no-done": "OpenAI/Azure stream without the final data: [DONE]",
    "invalid-json": "one event in the middle carries truncated JSON",
    "mid-stream-error": "an error event halfway through the stream",
    "stall[:N]": "N events (default 1), then silence until the connection is dropped",
    "reset[:N]": "N events (default 1), then a connection reset (reset:0 resets before any answer)",
    "drip[:MS]": "the whole answer one byte at a time, MS ms apart (default 1000)",
    "buffered[:MS]": "hold the whole answer MS ms (default 2500), then send it in one piece (a buffering proxy)",
    "delay-first-byte[:MS]": "wait MS ms (default 1000) before answering",
    "accept-any-key": "accept any API key (the wrong-key check then warns)",
    "redirect[:URL]": "302 to another origin (or to URL)",
    "echo-key-in-error": "a 401 whose body quotes the presented key (a leak to catch)",
    "context-length": "a 400 saying the prompt is longer than the model's context, in the provider's words",
    "content-filter": "the provider's content-filter refusal of the prompt (Gemini: a blocked-prompt stream)",
    "no-prefill": "a 400 for a request whose last message is a prefilled assistant turn (otherwise the fake "
    "continues it)",
    "status-NNN[:S]": "answer HTTP NNN (e.g. status-429, status-500) with the provider's error body "
    "and Retry-After: S (429 defaults to 1; none: no header)",
}
_STATUS_RE = re.compile(r"status-([1-5]\d\d)")
# Longest first so a name that prefixes another can never shadow it.
_BY_LENGTH = sorted(FAULT_NAMES, key=len, reverse=True)


class UnknownFaultError(ValueError):
    """A typo in a fault header should fail loudly rather than silently serve a happy stream."""


@dataclass(frozen=True)
class Fault:
    name: str
    arg: str | None = None

    @property
    def status(self) -> int | None:
        """The HTTP status of a ``status-NNN`` fault, else None."""
        match = _STATUS_RE.fullmatch(self.name)
        return int(match.group(1)) if match else None

    def int_arg(self, default: int) -> int:
        try:
            return max(0, int(self.arg)) if self.arg else default
        except ValueError:
            return default

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.arg}" if self.arg else self.name


def parse_fault_header(value: str) -> Fault:
    """Parse ``name[:arg]``; raises UnknownFaultError for names this fake does not implement."""
    name, _, arg = value.strip().partition(":")
    name = name.strip().lower()
    if name in FAULT_NAMES or _STATUS_RE.fullmatch(name):
        return Fault(name, arg.strip() or None)
    raise UnknownFaultError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}, status-NNN")


def fault_from_model(model: str) -> Fault | None:
    """``fake-fault-stall-3`` → Fault("stall", "3"); names that are not faults select nothing."""
    if not model.startswith(MODEL_FAULT_PREFIX):
        return None
    rest = model[len(MODEL_FAULT_PREFIX) :].lower()
    if _STATUS_RE.fullmatch(rest):
        return Fault(rest)
    for name in _BY_LENGTH:
        if rest == name:
            return Fault(name)
        if rest.startswith((name + "-", name + ":")):
            return Fault(name, rest[len(name) + 1 :] or None)
    return None
