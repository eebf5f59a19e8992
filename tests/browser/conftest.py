"""Browser tier: the Lab in the system Chromium (Playwright from PyPI, never `playwright install`),
against a real `llm-gateway dev` (tests/local_stack.py).

Every test gets a fresh browser context. Afterwards the page, its storage and its console go to the
leak collector (the canary key must be in none of them), and every request the page made must have
gone to the gateway's own origin: no third-party origin at run time. Screenshots go under the
run's temporary directory (`lab-screenshots*`), never into the repository.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import LeakCollector
from tests.local_stack import RunningStack, create_account_key, llm_body, recording_client

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
expect.set_options(timeout=20_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests share one stack and one Chromium per worker: keep them together."""
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("browser"))
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: while Playwright's sync API runs, the worker's thread counts
    as inside an event loop, which would break the asyncio tests xdist sends it afterwards."""
    executable = shutil.which("chromium")
    assert executable, "the system Chromium is missing: `make chromium` installs it"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-screenshots")


@pytest.fixture(scope="session")
def lab_account_key(stack: RunningStack) -> str:
    """One account for the browser tests (not the demo one the e2e tier uses)."""
    return create_account_key(stack, "lab-browser")


@dataclass
class Lab:
    page: Page
    stack: RunningStack
    api_key: str
    api: httpx.Client
    shots: Path
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self.shots / f"{name}.png", full_page=True)

    def sign_in(self, key: str | None = None) -> None:
        self.page.goto(self.stack.lab_url)
        self.page.get_by_label("API key").fill(key or self.api_key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="LLMs", exact=True)).to_be_visible()

    def register(self, name: str, **overrides: Any) -> str:
        """An LLM on the fake provider through the API (for tests about other pages)."""
        body = llm_body(self.stack, displayName=name, secret="fake-key") | overrides
        created = self.api.post("/v1/llms", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def wait_settled(self, llm_id: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = str(self.api.get(f"/v1/llms/{llm_id}").json()["status"])
            if status != "pending":
                return status
            time.sleep(0.2)
        raise AssertionError(f"{llm_id} stayed pending")

    def open_llm(self, llm_id: str) -> None:
        self.page.goto(f"{self.stack.lab_url}#/llms/{llm_id}")

    def storage(self) -> dict[str, Any]:
        return dict(
            self.page.evaluate(
                "() => ({local: {...localStorage}, session: {...sessionStorage}, url: location.href,"
                " cookies: document.cookie,"
                " inputs: [...document.querySelectorAll('input, textarea')].map((e) => e.value)})"
            )
        )


@pytest.fixture
def lab(
    browser: Browser,
    stack: RunningStack,
    lab_account_key: str,
    screenshots: Path,
    leak_collector: LeakCollector,
    request: pytest.FixtureRequest,
) -> Iterator[Lab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    context.set_default_timeout(20_000)
    page = context.new_page()
    with recording_client(stack.api_url, lab_account_key, leak_collector) as api:
        session = Lab(page=page, stack=stack, api_key=lab_account_key, api=api, shots=screenshots)
        page.on("request", lambda r: session.requests.append(r.url))
        page.on("console", lambda m: session.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: session.console.append(f"pageerror: {e}"))
        try:
            yield session
        finally:
            where = request.node.nodeid
            if not page.is_closed() and page.url.startswith("http"):
                leak_collector.add(f"{where} page", page.content())
                leak_collector.add(f"{where} storage", json.dumps(session.storage()))
            leak_collector.add(f"{where} console", "\n".join(session.console))
            context.close()
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(stack.api_url))
    foreign = [url for url in session.requests if not url.startswith(origin + "/")]
    assert not foreign, f"the Lab reached beyond its origin: {foreign}"
    errors = [line for line in session.console if line.startswith("pageerror")]
    assert not errors, errors
