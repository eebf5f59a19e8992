"""Stream metrics as CloudWatch EMF through Powertools: time to first token, overhead, errors by code.

EMF is for CloudWatch: with ``POWERTOOLS_METRICS_DISABLED`` (or ``POWERTOOLS_DEV``) set, as the local
stack does, nothing is written. Powertools' own ``flush_metrics`` honours that switch; its
``single_metric`` and its 100-values auto-flush do not, so this adapter checks it first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from llm_gateway.domain.streaming import OUTCOME_OK
from llm_gateway.observability import get_metrics

if TYPE_CHECKING:
    from llm_gateway.domain.streaming import OpenStream


class StreamMetrics:
    def __init__(self, *, enabled: bool = True, namespace: str = "LlmGateway") -> None:
        #: False where settings say so (the local stack, the tests): no EMF at all.
        self.enabled = enabled
        self.namespace = namespace

    def failed(self, code: str) -> None:
        """Errors by code (an ``ErrorCode``, or a ``GatewayError``'s code before the stream opened):
        one EMF record with its own ``code`` dimension (nothing left behind)."""
        if not self.enabled or is_metrics_disabled():
            return
        with single_metric(
            name="StreamErrors", unit=MetricUnit.Count, value=1, namespace=self.namespace
        ) as metric:
            metric.add_dimension(name="code", value=code)

    def finished(self, opened: OpenStream, started: float) -> None:
        """One EMF record per stream, written after the last byte (off the hot path)."""
        if not self.enabled or is_metrics_disabled():
            return
        metrics = get_metrics()
        metrics.namespace = self.namespace
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
        metrics.flush_metrics()
        outcome = opened.outcome or "unknown"
        if outcome != OUTCOME_OK:
            self.failed(outcome)
