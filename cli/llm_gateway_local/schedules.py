"""The template's EventBridge Scheduler schedules as local timers.

Each ``AWS::Scheduler::Schedule`` names a function (``Target.Arn``) and an input with Scheduler's
context attributes; locally a thread invokes that function in-process every period with the
input filled in as Scheduler would (``<aws.scheduler.scheduled-time>`` is the tick's time). The
period is the schedule's ``rate(...)``, or a shorter one for ``llm-gateway dev --revalidate-every``,
in which case ``windowSeconds`` in the input is the period too (each tick covers its own window).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_RATE = re.compile(r"^rate\((\d+) (second|seconds|minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$")


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``500ms`` or plain seconds; raises ValueError otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (try 30s, 5m or 1h)")
    value = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    if value < 1:
        raise ValueError("the shortest interval is 1s")
    return value


def rate_seconds(expression: str) -> float | None:
    match = _RATE.match(expression.strip())
    return float(int(match.group(1)) * _UNITS[match.group(2).rstrip("s")]) if match else None


@dataclass(frozen=True)
class ScheduleTarget:
    """One schedule: the function it invokes (module and handler, as the template names them)."""

    name: str
    function: str
    module: str
    attribute: str
    input: str
    period_s: float


def schedule_targets(template: dict[str, Any]) -> list[ScheduleTarget]:
    resources = template["Resources"]
    out = []
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::Scheduler::Schedule":
            continue
        props = resource["Properties"]
        target = props["Target"]
        arn = target["Arn"].get("Fn::GetAtt")
        function = arn[0] if isinstance(arn, list) else str(arn).split(".")[0]
        fn = resources[function]["Properties"]
        module_file, _, attribute = str(fn.get("Handler", "handler.lambda_handler")).rpartition(".")
        module = ".".join([*str(fn["CodeUri"]).strip("/").split("/"), module_file])
        period = rate_seconds(str(props.get("ScheduleExpression", ""))) or 900.0
        out.append(
            ScheduleTarget(logical, function, module, attribute, str(target.get("Input", "{}")), period)
        )
    return out


def fill_input(raw: str, scheduled: datetime, window_s: float | None) -> dict[str, Any]:
    """The target input as Scheduler delivers it; ``window_s`` replaces ``windowSeconds`` when set."""
    text = raw.replace("<aws.scheduler.scheduled-time>", scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"))
    event: dict[str, Any] = json.loads(text)
    if window_s is not None and "windowSeconds" in event:
        event["windowSeconds"] = max(1, round(window_s))
    return event


class LocalSchedule:
    """Invokes ``invoke`` every ``period_s`` on the period's boundaries, until stopped."""

    def __init__(
        self,
        target: ScheduleTarget,
        invoke: Callable[[dict[str, Any]], Any],
        period_s: float | None = None,
        on_error: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.target = target
        self.period_s = period_s or target.period_s
        self._invoke = invoke
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule:{target.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def tick(self, scheduled: datetime) -> Any:
        window = self.period_s if self.period_s != self.target.period_s else None
        return self._invoke(fill_input(self.target.input, scheduled, window))

    def _run(self) -> None:
        period = max(1, round(self.period_s))
        next_at = (int(time.time()) // period + 1) * period
        while not self._stop.wait(max(0.0, next_at - time.time())):
            try:
                self.tick(datetime.fromtimestamp(next_at, UTC))
            except Exception as exc:  # a failed run is retried by the next tick, as in AWS
                self._on_error(f"schedule {self.target.name} failed: {type(exc).__name__}")
            next_at += period
