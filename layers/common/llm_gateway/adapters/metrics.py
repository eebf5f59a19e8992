"""Stream metrics as CloudWatch EMF through Powertools: time to first token, overhead, errors by code."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from llm_gateway.observability import get_metrics

if TYPE_CHECKING:
    from llm_gateway.domain.streaming import OpenStream


class StreamMetrics:
    def failed(self, code: str) -> None:
        metrics = get_metrics()
        metrics.add_dimension(name="code", value=code)
        metrics.add_metric(name="StreamErrors", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()

    def finished(self, opened: OpenStream, started: float) -> None:
        """One EMF record per stream, written after the last byte (off the hot path)."""
        metrics = get_metrics()
        timings = opened.timings
        if timings.first_output is not None:
            metrics.add_metric(
                name="TimeToFirstToken",
                unit=MetricUnit.Milliseconds,
                value=(timings.first_output - started) * 1000,
            )
        if timings.upstream_sent is not None:
            metrics.add_metric(
                name="GatewayOverhead",
                unit=MetricUnit.Milliseconds,
                value=(timings.upstream_sent - started) * 1000,
            )
        metrics.add_metric(
            name="StreamDuration", unit=MetricUnit.Milliseconds, value=(time.monotonic() - started) * 1000
        )
        outcome = opened.outcome or "unknown"
        if outcome != "ok":
            metrics.add_metadata(key="outcome", value=outcome)
            metrics.add_metric(name="StreamErrors", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
