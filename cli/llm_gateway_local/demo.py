"""The demo data ``llm-gateway dev`` registers: one LLM per spec on the fake provider."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_gateway.composition import RegistryServices


def register_demo_llms(registry: RegistryServices, account_id: str, fake_url: str) -> dict[str, str]:
    """One demo LLM per spec, on the fake provider; the validator makes them valid on its own."""
    from pydantic import TypeAdapter

    from llm_gateway.models.llm import LlmCreate
    from llm_gateway_fake_provider.config import DEFAULT_KEY

    bodies = {
        "openai": {"llmFormat": "openai", "modelName": "fake-model", "urls": [{"url": f"{fake_url}/v1/chat/completions"}]},
        "azure_openai": {"llmFormat": "azure_openai", "modelName": "fake-deployment", "urls": [{"url": f"{fake_url}/openai/v1"}]},
        "gemini": {"llmFormat": "gemini", "modelName": "gemini-2.5-flash", "urls": [{"url": fake_url}]},
        "anthropic": {"llmFormat": "anthropic", "modelName": "fake-claude", "urls": [{"url": fake_url}]},
    }  # fmt: skip
    adapter: TypeAdapter[Any] = TypeAdapter(LlmCreate)
    created = {}
    for name, body in bodies.items():
        request = adapter.validate_python({"displayName": f"Demo {name}", "secret": DEFAULT_KEY, **body})
        created[name] = registry.registry.create(account_id, request).id
    return created


def wait_until_valid(
    registry: RegistryServices, account_id: str, llms: dict[str, str], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = [registry.llm_repository.get(account_id, llm_id) for llm_id in llms.values()]
        if all(s is not None and s.status.value != "pending" for s in statuses):
            return
        time.sleep(0.1)
