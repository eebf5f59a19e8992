"""An LLM's health beside its ``status``: the public shapes (``health`` on the LLM object, the
``/health`` history) and the record the table keeps per LLM."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from llm_gateway.models.common import ApiModel


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @staticmethod
    def worst(*states: HealthState) -> HealthState:
        return max(states, key=lambda s: s.severity)


_SEVERITY = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.FAILING: 2}


class UrlWindow(ApiModel):
    """One URL of the LLM over the window: its attempts (failed ones too, even when another URL
    then answered) and the streams it served."""

    #: The URL's position in the LLM's ``urls``.
    index: int
    attempts: int = 0
    failed: int = 0
    served: int = 0


class HealthWindow(ApiModel):
    """Real traffic over the evaluation window (the last 15 minutes)."""

    requests: int = 0
    #: Upstream errors / requests; ``None`` without requests.
    error_rate: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    errors_by_code: dict[str, int] = Field(default_factory=dict)
    #: Per URL, when it had attempts: a URL that fails while another rescues shows here (left out
    #: when there is nothing to show).
    urls: list[UrlWindow] = Field(default_factory=list, exclude_if=lambda v: not v)


class LlmHealth(ApiModel):
    """``health`` on the LLM object: the state, since when, the last check and the traffic window."""

    state: HealthState = HealthState.HEALTHY
    since: datetime | None = None
    #: The last time a re-validation (or validation) probed the endpoint.
    last_checked_at: datetime | None = None
    window: HealthWindow = Field(default_factory=HealthWindow)
    #: How often the schedule re-validates this LLM now: the base interval, doubled for each failed
    #: check in a row after the first (at most 16 times the base); a passing check resets it.
    revalidation_interval_seconds: int | None = None


class HealthBucket(HealthWindow):
    """One 5-minute bucket of real traffic."""

    start: datetime


class LlmHealthHistory(LlmHealth):
    """``GET /v1/llms/{id}/health``: the state plus every bucket that saw traffic in the range."""

    hours: int
    bucket_seconds: int
    #: Oldest first; 5-minute buckets without traffic are left out.
    buckets: list[HealthBucket] = Field(default_factory=list)


class FailedCheck(ApiModel):
    """What a failed probe says (never evidence: it stays in the report, for the owner)."""

    id: str
    message: str
    hint: str | None = None


class CheckOutcome(ApiModel):
    """The last conformance run against the stored config, as the health record keeps it."""

    checked_at: datetime
    compatible: bool
    error_code: str | None = None
    failed_checks: list[FailedCheck] = Field(default_factory=list)


class HealthRecord(ApiModel):
    """What the table keeps per LLM (``HEALTH#<account>#<llm>`` / ``STATE``); ``revision`` guards
    every write, so containers that evaluate at once never overwrite each other's change."""

    state: HealthState = HealthState.HEALTHY
    since: datetime | None = None
    last_checked_at: datetime | None = None
    consecutive_failures: int = 0
    last_check: CheckOutcome | None = None
    traffic_state: HealthState = HealthState.HEALTHY
    traffic_evaluated_at: datetime | None = None
    window: HealthWindow = Field(default_factory=HealthWindow)
    revision: int = 0
