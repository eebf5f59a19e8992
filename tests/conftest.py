"""Test-wide helpers: the canary secret and the leak check every tier feeds."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: The local stack fixtures (`stack`, `api`, `other_api`, …) for the e2e and browser tiers.
pytest_plugins = ["tests.local_stack"]

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
#: One canary key per test session; it must never show up in anything we capture.
CANARY = f"sk-canary-{uuid.uuid4()}"

#: Settings values for the functions' models (unit tests build settings from these; the
#: integration tier builds each function's from the template, as the local stack does).
TEST_SETTINGS = {
    "STAGE": "test",
    "TABLE_NAME": "llm-gateway-test",
    "EVENT_BUS_NAME": "llm-gateway-test",
    "CREDENTIALS_KEY_ID": "alias/llm-gateway-test-credentials",
    "TOKEN_SIGNING_KEY_ID": "alias/llm-gateway-test-token-signing",
    "TOKEN_ISSUER": "https://llm-gateway.test",
    "HOP_MARKER": "arn:aws:cloudformation:us-east-1:123456789012:stack/llm-gateway-test/0",
    "VALIDATION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/validation",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/webhooks",
}


def plain_env(**extra: str) -> dict[str, str]:
    """What a user's plain shell has (``env -i PATH="$PATH" HOME="$HOME"``), plus ``extra``: every CLI
    and stack subprocess of the tests runs with this, so none can pass on the runner's variables."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")} | extra


def load_event(name: str) -> dict[str, Any]:
    """An event from events/<function>/<case>.json: the same files `sam local invoke -e` uses."""
    return dict(json.loads((EVENTS / f"{name}.json").read_text("utf-8")))


class LeakCollector:
    """Everything a test saw leaves a copy here; the session fails if the canary is in any of it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, content: Any) -> None:
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        self.items.append((where, text))

    def leaks(self, secret: str = CANARY) -> list[str]:
        return [where for where, text in self.items if secret in text]


_COLLECTOR = LeakCollector()


@pytest.fixture(scope="session")
def leak_collector() -> Iterator[LeakCollector]:
    yield _COLLECTOR
    leaked = _COLLECTOR.leaks()
    assert not leaked, f"the canary secret leaked into: {sorted(set(leaked))}"


@pytest.fixture(autouse=True)
def _scan_captured_output(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], leak_collector: LeakCollector
) -> Iterator[None]:
    """Every test's stdout/stderr (where Powertools logs go) is scanned for the canary."""
    yield
    out, err = capsys.readouterr()
    leak_collector.add(f"{request.node.nodeid} output", out + err)
    # Keep the output visible in failure reports.
    print(out, end="")
