"""The local front door's functions: the first invocation imports the handler, as a container's
init does, and what that built is frozen out of the collector's full passes."""

from __future__ import annotations

import gc
import json
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from llm_gateway_local.front_door import LocalFunction


@pytest.fixture
def handler_module() -> Iterator[str]:
    name = "tests_unit_local_function_handler"
    module = types.ModuleType(name)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"echo": event["n"], "function": context.function_name}

    module.handler = handler  # type: ignore[attr-defined]
    sys.modules[name] = module
    gc.unfreeze()
    yield name
    del sys.modules[name]
    gc.unfreeze()


def test_the_first_invocation_is_the_init_and_freezes_what_it_built(handler_module: str) -> None:
    function = LocalFunction("probe", handler_module, "handler")
    assert gc.get_freeze_count() == 0
    assert function.invoke({"n": 1}) == {"echo": 1, "function": "probe"}
    frozen = gc.get_freeze_count()
    assert frozen > 0, "a full collection would walk the handler's init again and again"
    assert function.invoke({"n": 2}) == {"echo": 2, "function": "probe"}


def test_invocations_overlap_and_each_logs_its_own_function_and_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two functions in one process, invoked at the same time (Lambda would run them in two
    containers): neither waits for the other, and each line names its own function and request."""
    from llm_gateway.observability import get_logger

    logger = get_logger()
    both_inside = threading.Barrier(4, timeout=10)
    name = "tests_unit_local_function_logging"
    module = types.ModuleType(name)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        both_inside.wait()  # all four invocations are running at once
        logger.info("working", extra={"n": event["n"]})
        both_inside.wait()
        logger.info("done", extra={"n": event["n"]})
        return {"request": context.aws_request_id}

    module.handler = handler  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        functions = [LocalFunction(f"fn-{i % 2}", name, "handler") for i in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda i: functions[i].invoke({"n": i}), range(4)))
    finally:
        del sys.modules[name]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 8
    for line in lines:
        i = line["n"]
        assert line["function_name"] == f"fn-{i % 2}", line
        assert line["function_request_id"] == results[i]["request"], line
