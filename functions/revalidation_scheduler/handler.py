"""Re-validation scheduler: the EventBridge Scheduler schedule invokes it once per window.

Its input is ``{"scheduledTime": "<aws.scheduler.scheduled-time>", "windowSeconds": 900}``: it
enqueues the LLMs due in ``[scheduledTime, scheduledTime + windowSeconds)`` on the validation
queue, each delayed to its due time (``domain.revalidation`` says how they are spread).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from llm_gateway.composition import RevalidationSchedulerServices, ServicesSlot
from llm_gateway.domain.revalidation import MAX_WINDOW_SECONDS
from llm_gateway.observability import get_logger, get_tracer

#: Built on the first tick from this function's settings (``RevalidationSchedulerSettings``).
services = ServicesSlot(RevalidationSchedulerServices)


class ScheduleTick(BaseModel):
    """What the schedule's target input holds once Scheduler filled in its context attributes."""

    scheduledTime: datetime
    windowSeconds: int = Field(MAX_WINDOW_SECONDS, ge=1, le=MAX_WINDOW_SECONDS)


@get_logger().inject_lambda_context(clear_state=True)
@get_tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tick = parse(event=event, model=ScheduleTick)
    enqueued = services().revalidation_scheduler.enqueue_due(tick.scheduledTime, tick.windowSeconds)
    get_logger().info("re-validations enqueued", extra={"enqueued": enqueued})
    return {"enqueued": enqueued}
