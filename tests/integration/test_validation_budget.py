"""An endpoint that answers slowly on five URLs: validation still finishes inside its budget, with a
report that says which budget ran out. The budget is injected the way Lambda gives it: through the
context's remaining time (a short-lived context), for ``POST /v1/llms/test`` and for a queued run.

The only timing assertion is a generous ceiling derived from the budget: finished and reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from llm_gateway.domain.conformance.budget import CONFIG_TEST_MARGIN_S, VALIDATOR_MARGIN_S
from llm_gateway.domain.conformance.engine import JOIN_GRACE_S
from llm_gateway.models.llm import LlmCreate, LlmStatus
from llm_gateway_fake_provider.server import FakeProviderHandle, start_in_thread
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import LeakCollector
from tests.integration.conftest import AwsStack
from tests.integration.test_validator import api_event, sqs_event_for

BUDGET_S = 3.0
#: Finished and reported: the budget, the grace for probes to notice, and room for a slow machine.
CEILING_S = BUDGET_S + JOIN_GRACE_S + 6.0
#: 200 ms per byte: a full answer would take minutes, and no read ever times out on its own.
SLOW_MODEL = "fake-fault-drip-200"


@pytest.fixture
def fake() -> Iterator[FakeProviderHandle]:
    with start_in_thread() as handle:
        yield handle


@pytest.fixture
def private_ok(aws: Any, fake: FakeProviderHandle) -> None:
    aws.configure(PRIVATE_ENDPOINT_ORIGINS=fake.url)  # the fake provider lives on loopback


def slow_body(fake: FakeProviderHandle) -> dict[str, Any]:
    return {
        "displayName": "Slow on five URLs",
        "llmFormat": "openai",
        "modelName": SLOW_MODEL,
        "secret": "fake-key",
        "urls": [{"url": f"{fake.url}/v1/chat/completions?replica={n}"} for n in range(5)],
    }


def assert_cut_by_the_budget(report: dict[str, Any], budget_words: str) -> None:
    assert report["compatible"] is False
    assert report["errorCode"] == "upstream_timeout"
    assert len(report["details"]["urls"]) == 5
    for suffix in ("", "@2", "@3", "@4", "@5"):
        check = next(c for c in report["checks"] if c["id"] == f"stream_complete{suffix}")
        assert check["status"] == "fail", check
        assert budget_words in check["message"] and "ran out" in check["message"]
        assert "too slow" in check["hint"]


def test_llms_test_on_five_slow_urls_reports_inside_its_budget(
    account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    from functions.validator import api as handler

    event = api_event("validator/test_config", account, body=slow_body(fake))
    context = LambdaContext("validator", timeout_seconds=BUDGET_S + CONFIG_TEST_MARGIN_S)
    started = time.monotonic()
    result = handler.lambda_handler(event, context)
    elapsed = time.monotonic() - started
    leak_collector.add("test route result", result)
    assert result["statusCode"] == 200
    report = json.loads(result["body"])
    assert_cut_by_the_budget(report, "budget of POST /v1/llms/test")
    assert 0 < report["details"]["probe"]["budgetS"] <= BUDGET_S  # what the context had left
    assert elapsed < CEILING_S


def test_a_queued_run_on_five_slow_urls_stores_its_report_inside_its_budget(
    aws: AwsStack, account: str, private_ok: None, fake: FakeProviderHandle, leak_collector: LeakCollector
) -> None:
    from functions.validator import consumer as handler

    request = TypeAdapter(LlmCreate).validate_python(slow_body(fake))
    llm_id = aws.registry.registry.create(account, request).id
    context = LambdaContext("validator", timeout_seconds=BUDGET_S + VALIDATOR_MARGIN_S)
    started = time.monotonic()
    result = handler.lambda_handler(sqs_event_for(account, llm_id), context)
    elapsed = time.monotonic() - started
    assert result == {"batchItemFailures": []}  # the record succeeded: no retry, no DLQ
    stored = aws.registry.llm_repository.get(account, llm_id)
    assert stored is not None and stored.status is LlmStatus.INVALID
    report = aws.validator.report_repository.latest(account, llm_id)
    assert report is not None
    assert_cut_by_the_budget(report.to_json_dict(), "the validator's")
    assert elapsed < CEILING_S
