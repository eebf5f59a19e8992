"""The time a validation run may take, as a whole and per check, and how each caller's is derived.

A run has a hard budget: ``POST /v1/llms/test`` answers inside API Gateway's 29 s integration
limit, and the validator function stores its report before Lambda's ``Timeout``. Every check has
its own bound too (``exchange.Budget``); a check never waits past the run's deadline, and what the
deadline cut short is reported (``fail``/``skip`` naming the budget), never lost.

Pure arithmetic: the clock is injected, so unit tests drive it with fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: ``POST /v1/llms/test`` stays synchronous behind API Gateway's 29 s integration timeout.
CONFIG_TEST_BUDGET_S = 25.0
API_GATEWAY_LIMIT_S = 29.0
#: What the test route keeps of the function's remaining time for answering (locally the context
#: says 29 s; deployed the function has more, and API Gateway's 29 s is what binds).
CONFIG_TEST_MARGIN_S = 3.0
#: The validator's budget when no Lambda context says how long is left; template.yaml's
#: ``ValidatorFunction.Timeout`` must be at least this plus ``VALIDATOR_MARGIN_S`` (tests/infra).
VALIDATOR_BUDGET_S = 75.0
#: The budget of an endpoint whose last validation timed out: a healthy endpoint streams a short
#: answer in a few seconds, so this still passes a slow but working one.
TIMED_OUT_BUDGET_S = 20.0
#: Kept back from the validator's remaining time: store the report, update the LLM, emit the event.
VALIDATOR_MARGIN_S = 10.0
#: A budget is never below this: a run that has (almost) no time still produces its report quickly.
MIN_BUDGET_S = 0.5
#: A check is not started with less than this left of the run: it is reported as cut by the budget.
MIN_CHECK_S = 0.25


@dataclass(frozen=True, slots=True)
class RunBudget:
    """How long a whole run may take, and a name for messages ("the 25 s budget of POST …")."""

    seconds: float
    label: str

    def start(self, monotonic: Callable[[], float]) -> RunClock:
        return RunClock(self, monotonic() + self.seconds, monotonic)

    def part(self, fraction: float, what: str) -> RunBudget:
        """A share of this budget for one of several runs in a row (a staged key's probe)."""
        seconds = max(MIN_BUDGET_S, self.seconds * fraction)
        return RunBudget(seconds, f"{_s(seconds)} of {self.label}, kept for {what}")


@dataclass(frozen=True, slots=True)
class RunClock:
    """A started budget: its deadline on the injected monotonic clock."""

    budget: RunBudget
    deadline: float
    monotonic: Callable[[], float]

    @property
    def label(self) -> str:
        return self.budget.label

    def remaining(self) -> float:
        return self.deadline - self.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def allows(self, seconds: float = MIN_CHECK_S) -> bool:
        """Whether a check that needs at least ``seconds`` may still start."""
        return self.remaining() >= seconds


def config_test_budget(remaining_ms: int | None = None) -> RunBudget:
    """``POST /v1/llms/test``: 25 s, less when the function itself has less time left."""
    seconds = _within(CONFIG_TEST_BUDGET_S, remaining_ms, CONFIG_TEST_MARGIN_S)
    return RunBudget(
        seconds,
        f"the {_s(seconds)} budget of POST /v1/llms/test (it answers within API Gateway's "
        f"{API_GATEWAY_LIMIT_S:g} s limit)",
    )


def validator_budget(remaining_ms: int | None = None, *, timed_out_before: bool = False) -> RunBudget:
    """A queued validation: the function's remaining time less a margin to store the report,
    at most ``VALIDATOR_BUDGET_S`` (which is what applies without a Lambda context); at most
    ``TIMED_OUT_BUDGET_S`` for an endpoint whose last validation timed out (it holds a validator,
    and its account's slot, for less while it keeps not answering)."""
    limit = TIMED_OUT_BUDGET_S if timed_out_before else VALIDATOR_BUDGET_S
    seconds = _within(limit, remaining_ms, VALIDATOR_MARGIN_S)
    why = ", shortened: the last validation timed out" if timed_out_before else ""
    return RunBudget(
        seconds,
        f"the validator's {_s(seconds)} budget (its Lambda time left, less {VALIDATOR_MARGIN_S:g} s "
        f"to store the report{why})",
    )


def _within(limit_s: float, remaining_ms: int | None, margin_s: float) -> float:
    """At most ``limit_s``; less when the function has less time left (keeping ``margin_s``), but
    never under ``MIN_BUDGET_S``."""
    seconds = limit_s if remaining_ms is None else min(limit_s, remaining_ms / 1000 - margin_s)
    return max(MIN_BUDGET_S, seconds)


def _s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"
