"""The local front door's functions: the first invocation imports the handler, as a container's
init does, and what that built is frozen out of the collector's full passes."""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from llm_gateway_cli.local.front_door import LocalFunction


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
