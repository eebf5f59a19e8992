"""A real `llm-gateway dev` process on loopback, shared by the e2e and browser tiers.

Registered as a plugin in tests/conftest.py, so every tier that needs the local stack gets the
same fixtures: one stack per xdist worker, started on first use.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import CANARY, LeakCollector, plain_env

STARTUP_TIMEOUT_S = 30


@dataclass
class RunningStack:
    api_url: str
    lab_url: str
    api_key: str
    account_id: str
    aws_endpoint_url: str
    fake_provider_url: str | None
    llms: dict[str, str]
    table_name: str
    state_file: Path
    log_file: Path

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


@contextlib.contextmanager
def launch_stack(
    workdir: Path, leak_collector: LeakCollector, *args: str, env: dict[str, str] | None = None
) -> Iterator[RunningStack]:
    """A `llm-gateway dev` process with ``args``; stopped (and checked to exit cleanly) on exit."""
    state_file, log_file = workdir / "state.json", workdir / "dev.log"
    environment = plain_env(**(env or {}))  # what a user's shell has: the stack needs nothing else
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llm_gateway_cli.main",
                "dev",
                "--port",
                "0",
                "--state-file",
                str(state_file),
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"llm-gateway dev did not start:\n{log_file.read_text(errors='replace')}")
        time.sleep(0.05)
    state = json.loads(state_file.read_text("utf-8"))
    running = RunningStack(
        api_url=state["apiUrl"],
        lab_url=state["labUrl"],
        api_key=state["apiKey"],
        account_id=state["accountId"],
        aws_endpoint_url=state["awsEndpointUrl"],
        fake_provider_url=state.get("fakeProviderUrl"),
        llms=state.get("llms") or {},
        table_name=state["tableName"],
        state_file=state_file,
        log_file=log_file,
    )
    try:
        yield running
        items = running.aws("dynamodb").scan(TableName=running.table_name)["Items"]
        leak_collector.add("local stack dynamodb", items)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        leak_collector.add("local stack log", log_file.read_text(errors="replace"))
    assert proc.returncode == 0, f"llm-gateway dev exited with {proc.returncode}"
    assert not state_file.exists(), "the state file outlived the stack"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, leak_collector: LeakCollector) -> Iterator[RunningStack]:
    # No scheduled re-validations here: tests count the fake provider's requests (test_health_e2e
    # runs a stack of its own with a fast schedule).
    with launch_stack(
        tmp_path_factory.mktemp("stack"), leak_collector, "--revalidate-every", "off"
    ) as running:
        yield running


def recording_client(base_url: str, api_key: str | None, leak_collector: LeakCollector) -> httpx.Client:
    def record(response: httpx.Response) -> None:
        response.read()
        leak_collector.add(f"{response.request.method} {response.request.url.path}", response.text)

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30, event_hooks={"response": [record]})


@pytest.fixture
def api(stack: RunningStack, leak_collector: LeakCollector) -> Iterator[httpx.Client]:
    """The demo account's client; every response body is scanned for the canary."""
    with recording_client(stack.api_url, stack.api_key, leak_collector) as client:
        yield client


@pytest.fixture
def anonymous(stack: RunningStack, leak_collector: LeakCollector) -> Iterator[httpx.Client]:
    with recording_client(stack.api_url, None, leak_collector) as client:
        yield client


def create_account_key(stack: RunningStack, name: str) -> str:
    """A new account, created the way a user would: `llm-gateway accounts create --json`."""
    out = subprocess.run(
        [sys.executable, "-m", "llm_gateway_cli.main", "accounts", "create", "--name", name,
         "--state-file", str(stack.state_file), "--json"],
        check=True, capture_output=True, text=True, timeout=30, env=plain_env(),
    )  # fmt: skip
    created = json.loads(out.stdout)
    assert created["apiKey"].startswith("llmgw_")
    return str(created["apiKey"])


@pytest.fixture(scope="session")
def second_account_key(stack: RunningStack) -> str:
    return create_account_key(stack, "team-b")


@pytest.fixture
def other_api(
    stack: RunningStack, second_account_key: str, leak_collector: LeakCollector
) -> Iterator[httpx.Client]:
    with recording_client(stack.api_url, second_account_key, leak_collector) as client:
        yield client


def llm_body(stack: RunningStack, **overrides: Any) -> dict[str, Any]:
    """A registration for an OpenAI-format LLM; points at the fake provider when the stack runs one."""
    base = stack.fake_provider_url or "http://127.0.0.1:9"
    body = {
        "displayName": "e2e model",
        "llmFormat": "openai",
        "modelName": "fake-model",
        "urls": [{"url": f"{base}/v1/chat/completions"}],
        "secret": CANARY,
    }
    return body | overrides
