"""The conformance report: the same JSON in the API, the store and ``llm-gateway check --json``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from llm_gateway.models.common import ApiModel


class CheckCategory(StrEnum):
    NETWORK = "network"  # DNS, connect, TLS, timeout, blocked address
    AUTH = "auth"
    ENDPOINT = "endpoint"  # wrong path, 404/405
    MODEL = "model"  # unknown model or deployment
    REQUEST = "request"  # 400 for a well-formed request
    STREAMING = "streaming"  # no SSE: content type, framing, not incremental
    FORMAT = "format"  # payload schema, terminator, finish reason
    LATENCY = "latency"  # warn only


class CheckStatus(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Check(ApiModel):
    """One finding. Every ``fail`` carries a ``hint`` a customer can act on."""

    id: str
    category: CheckCategory
    status: CheckStatus
    message: str
    hint: str | None = None
    evidence: str | None = None
    duration_ms: float | None = None


class Timings(ApiModel):
    ttfb_ms: float | None = None
    ttft_ms: float | None = None  # to the first answer token, never to a thought
    total_ms: float | None = None
    first_thought_ms: float | None = Field(default=None, exclude_if=lambda v: v is None)


class Report(ApiModel):
    """``validationId`` names the run that produced a stored report (null from ``check`` and ``llms/test``)."""

    compatible: bool
    llm_format: str
    endpoint: str
    checked_at: datetime
    error_code: str | None = None
    timings: Timings = Field(default_factory=Timings)
    checks: list[Check]
    details: dict[str, Any] | None = None
    validation_id: str | None = None


class ValidationRunStatus(StrEnum):
    QUEUED = "queued"  # accepted, on its way through the bus and the queue
    RUNNING = "running"  # the validator is probing the endpoint
    DONE = "done"  # its report is stored


class ValidationRun(ApiModel):
    """One requested validation: the 202 answer of ``POST /validate``, ``pending`` on ``GET /validation``."""

    validation_id: str
    status: ValidationRunStatus
    requested_at: datetime


class LatestReport(Report):
    """``GET /validation``: the latest report, and the run still in progress (``pending``), if any.

    A client waiting for its run polls until ``pending`` no longer names it; the report is then
    that run's (``validationId``) or a newer one."""

    pending: ValidationRun | None = None
