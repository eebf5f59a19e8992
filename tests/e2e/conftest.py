"""End-to-end tier: a real `llm-gateway dev` process, spoken to over HTTP on loopback.

The stack and its clients are fixtures of tests/local_stack.py (shared with tests/browser).
"""

from __future__ import annotations

import pytest

from tests.local_stack import RunningStack, llm_body

__all__ = ["RunningStack", "llm_body"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every e2e test shares one stack, so they all run on the same xdist worker."""
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("e2e"))
            item.add_marker(pytest.mark.e2e)
