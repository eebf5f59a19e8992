"""End-to-end tier: a real `llm-gateway dev` process, spoken to over HTTP on loopback.

The stack and its clients are fixtures of tests/local_stack.py (shared with tests/browser).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.local_stack import RunningStack, llm_body

__all__ = ["RunningStack", "llm_body"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every e2e test shares one stack, so they all run on the same xdist worker."""
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("e2e"))
            item.add_marker(pytest.mark.e2e)


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
            os.getenv(n, "") for n in ("SMOKE_API_KEY", "SMOKE_LLM_URL", "SMOKE_LLM_KEY")
        )
    else:
        from llm_gateway_fake_provider.config import DEFAULT_KEY

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
            body[field] = os.getenv(env, "")
    return SmokeTarget(api_url=api_url, api_key=api_key, llm=body, llm_key=llm_key)
