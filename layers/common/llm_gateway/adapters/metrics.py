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
    from llm_gateway.domain.streaming import AttemptSummary, OpenStream


class StreamMetrics:
    def __init__(self, *, enabled: bool = True, namespace: str = "LlmGateway") -> None:
        #: False where settings say so (the local stack, the tests): no EMF at all.
        self.enabled = enabled
        self.namespace = namespace

    def failed(self, code: str, summary: AttemptSummary | None = None) -> None:
        """Errors by code (an ``ErrorCode``, or a ``GatewayError``'s code before the stream opened):
        one EMF record with its own ``code`` dimension (nothing left behind)."""
        if not self.enabled or is_metrics_disabled():
            return
        with single_metric(
            name="StreamErrors", unit=MetricUnit.Count, value=1, namespace=self.namespace
        ) as metric:
            metric.add_dimension(name="code", value=code)
        if summary is not None:
            metrics = get_metrics()
            metrics.namespace = self.namespace
            self._attempts(summary)
            metrics.flush_metrics()

    def _attempts(self, summary: AttemptSummary) -> None:
        """What rescuing the stream took: failed attempts (retries and failovers), hedges, continuations."""
        metrics = get_metrics()
        metrics.add_metric(name="UpstreamAttempts", unit=MetricUnit.Count, value=len(summary.attempts))
        metrics.add_metric(name="FailedAttempts", unit=MetricUnit.Count, value=len(summary.failed))
        metrics.add_metric(name="HedgedStreams", unit=MetricUnit.Count, value=int(summary.hedged))
        metrics.add_metric(name="Continuations", unit=MetricUnit.Count, value=summary.continued)

    def finished(self, opened: OpenStream, started: float) -> None:
        """One EMF record per stream, written after the last byte (off the hot path)."""
        if not self.enabled or is_metrics_disabled():
            return
        metrics = get_metrics()
        metrics.namespace = self.namespace
        timings = opened.timings
        if timings.first_answer is not None:  # the first answer token, never a thought
            metrics.add_metric(
                name="TimeToFirstToken",
                unit=MetricUnit.Milliseconds,
                value=(timings.first_answer - started) * 1000,
            )
        if timings.first_thought is not None:
            metrics.add_metric(
                name="TimeToFirstThought",
                unit=MetricUnit.Milliseconds,
                value=(timings.first_thought - started) * 1000,
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
        self._attempts(timings.summary)
        metrics.flush_metrics()
        outcome = opened.outcome or "unknown"
        if outcome != OUTCOME_OK:
            self.failed(outcome)

    def concurrent_streams(self, peak: int) -> None:
        """One EMF record of an interval's peak of concurrent streams (nothing for an idle one)."""
        if peak == 0 or not self.enabled or is_metrics_disabled():
            return
        with single_metric(
            name="ConcurrentStreams", unit=MetricUnit.Count, value=peak, namespace=self.namespace
        ):
            pass
