"""End-to-end tier: a real `llm-gateway dev` process, spoken to over HTTP on loopback."""

from __future__ import annotations

import json
import os
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

from tests.conftest import CANARY, LeakCollector

STARTUP_TIMEOUT_S = 30


@dataclass
class RunningStack:
    api_url: str
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every e2e test shares one stack, so they all run on the same xdist worker."""
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("e2e"))
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, leak_collector: LeakCollector) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("stack")
    state_file, log_file = workdir / "state.json", workdir / "dev.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
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
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
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


def _recording_client(base_url: str, api_key: str | None, leak_collector: LeakCollector) -> httpx.Client:
    def record(response: httpx.Response) -> None:
        response.read()
        leak_collector.add(f"{response.request.method} {response.request.url.path}", response.text)

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30, event_hooks={"response": [record]})


@pytest.fixture
def api(stack: RunningStack, leak_collector: LeakCollector) -> Iterator[httpx.Client]:
    """The demo account's client; every response body is scanned for the canary."""
    with _recording_client(stack.api_url, stack.api_key, leak_collector) as client:
        yield client


@pytest.fixture
def anonymous(stack: RunningStack, leak_collector: LeakCollector) -> Iterator[httpx.Client]:
    with _recording_client(stack.api_url, None, leak_collector) as client:
        yield client


@pytest.fixture(scope="session")
def second_account_key(stack: RunningStack) -> str:
    """A second account, created the way a user would: `llm-gateway accounts create --json`."""
    out = subprocess.run(
        [sys.executable, "-m", "llm_gateway_cli.main", "accounts", "create", "--name", "team-b",
         "--state-file", str(stack.state_file), "--json"],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    created = json.loads(out.stdout)
    assert created["apiKey"].startswith("llmgw_")
    return str(created["apiKey"])


@pytest.fixture
def other_api(
    stack: RunningStack, second_account_key: str, leak_collector: LeakCollector
) -> Iterator[httpx.Client]:
    with _recording_client(stack.api_url, second_account_key, leak_collector) as client:
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


# ---------------------------------------------------------------- smoke: any deployed gateway

#: Validation of the smoke LLM runs asynchronously (EventBridge -> SQS -> validator) when deployed.
SMOKE_VALIDATION_TIMEOUT_S = float(os.environ.get("SMOKE_VALIDATION_TIMEOUT", "180"))


@dataclass
class SmokeTarget:
    """A gateway to prove (`make smoke API_URL=… API_KEY=…`), or `llm-gateway dev` when none is given."""

    api_url: str
    api_key: str
    llm: dict[str, Any]  # the registration body of the LLM the smoke run creates and deletes
    llm_key: str

    def client(self, *, authenticated: bool = True) -> httpx.Client:
        key = self.llm_key

        def check(response: httpx.Response) -> None:
            response.read()
            assert key not in response.text, (
                f"{response.request.method} {response.request.url.path} leaked the LLM key"
            )

        headers = {"Authorization": f"Bearer {self.api_key}"} if authenticated else {}
        return httpx.Client(
            base_url=self.api_url, headers=headers, timeout=60, event_hooks={"response": [check]}
        )


@pytest.fixture(scope="session")
def smoke_target(request: pytest.FixtureRequest) -> SmokeTarget:
    api_url = os.environ.get("SMOKE_API_URL", "").rstrip("/")
    if api_url:
        missing = [
            name for name in ("SMOKE_API_KEY", "SMOKE_LLM_URL", "SMOKE_LLM_KEY") if not os.environ.get(name)
        ]
        if missing:
            pytest.fail(f"smoke against {api_url} needs {', '.join(missing)} (see README, Deploying)")
        api_key, llm_url, llm_key = (
            os.environ[n] for n in ("SMOKE_API_KEY", "SMOKE_LLM_URL", "SMOKE_LLM_KEY")
        )
    else:
        from llm_gateway_cli.fake_provider.config import DEFAULT_KEY

        stack: RunningStack = request.getfixturevalue("stack")
        api_url, api_key = stack.api_url, stack.api_key
        llm_url = os.environ.get("SMOKE_LLM_URL") or f"{stack.fake_provider_url}/v1/chat/completions"
        llm_key = os.environ.get("SMOKE_LLM_KEY") or DEFAULT_KEY
    body: dict[str, Any] = {
        "displayName": "smoke test",
        "description": "Created and deleted by `make smoke`.",
        "llmFormat": os.environ.get("SMOKE_LLM_FORMAT") or "openai",
        "modelName": os.environ.get("SMOKE_LLM_MODEL") or "fake-model",
        "urls": [{"url": llm_url}],
        "secret": llm_key,
    }
    for env, field in (("SMOKE_LLM_DEPLOYMENT", "deploymentName"), ("SMOKE_LLM_API_VERSION", "apiVersion")):
        if os.environ.get(env):
            body[field] = os.environ[env]
    return SmokeTarget(api_url=api_url, api_key=api_key, llm=body, llm_key=llm_key)
