"""Reasoning models through `llm-gateway dev` with the official `openai` SDK: an Anam-style
``groq_openai`` payload registers unchanged; for every spec a thinking fake (thoughts as
``reasoning_content`` / Groq ``reasoning`` deltas, Gemini thought parts, Anthropic thinking blocks)
never reaches the persona with ``hidden``, arrives in ``delta.reasoning_content`` with ``parsed``,
and validation reports the thoughts as separable and the latency to the first answer token."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.test_stream_e2e import mint, sdk

#: What the fake thinks before it answers (``completion.thought_words``): never for the persona.
THOUGHT_WORDS = "The user wants a short reply"
URL_PATHS = {"openai": "/v1", "groq_openai": "/v1", "gemini": "", "anthropic": ""}
MODELS = {
    "openai": "fake-o4",
    "groq_openai": "fake-qwen3",
    "gemini": "gemini-2.5-flash",
    "anthropic": "fake-claude",
}


def register(
    api: httpx.Client, stack: RunningStack, spec: str, reasoning_format: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": f"thinking {spec} {reasoning_format}",
        "llmFormat": spec,
        "modelName": MODELS[spec],
        "urls": [{"url": f"{stack.fake_provider_url}{URL_PATHS[spec]}"}],
        "secret": "fake-key",
        "reasoningEffort": "low",
    }
    if reasoning_format is not None:
        body["reasoningFormat"] = reasoning_format
    created = api.post("/v1/llms", json=body)
    assert created.status_code == 201, created.text
    return wait_valid(api, created.json()["id"])


def wait_valid(api: httpx.Client, llm_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        llm: dict[str, Any] = api.get(f"/v1/llms/{llm_id}").json()
        if llm["status"] != "pending" or time.monotonic() > deadline:
            assert llm["status"] == "valid", llm["validation"]
            return llm
        time.sleep(0.1)


def stream(stack: RunningStack, token: str) -> tuple[str, str]:
    """(answer, thoughts) as the SDK delivers them."""
    chunks = sdk(stack, token).chat.completions.create(
        model="x", messages=[{"role": "user", "content": "Say hello."}], stream=True
    )
    answer, thoughts = [], []
    for chunk in chunks:
        for choice in chunk.choices:
            answer.append(choice.delta.content or "")
            thoughts.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
    return "".join(answer), "".join(thoughts)


def test_an_anam_style_groq_payload_registers_unchanged_and_validates(
    api: httpx.Client, stack: RunningStack
) -> None:
    payload = {
        "displayName": "Groq Qwen3", "llmFormat": "groq_openai", "modelName": "fake-qwen3",
        "urls": [{"url": f"{stack.fake_provider_url}/v1"}], "secret": "fake-key",
        "temperature": 0.6, "maxTokens": 1024, "reasoningEffort": "default", "reasoningFormat": "parsed",
    }  # fmt: skip
    created = api.post("/v1/llms", json=payload)
    assert created.status_code == 201, created.text
    llm = wait_valid(api, created.json()["id"])
    assert (llm["reasoningEffort"], llm["reasoningFormat"]) == ("default", "parsed")
    seen = [r for r in httpx.get(f"{stack.fake_provider_url}/_fake/requests").json()["requests"]
            if r.get("model") == "fake-qwen3"]  # fmt: skip
    assert seen and seen[-1]["body"]["reasoning_format"] == "parsed"
    assert "reasoning_effort" not in seen[-1]["body"]  # default: the model's own


@pytest.mark.parametrize("spec", ["openai", "groq_openai", "gemini", "anthropic"])
def test_hidden_thoughts_never_reach_the_persona(api: httpx.Client, stack: RunningStack, spec: str) -> None:
    llm = register(api, stack, spec, None)
    answer, thoughts = stream(stack, mint(api, llm["id"])["sessionToken"])
    assert answer.strip() and THOUGHT_WORDS not in answer
    assert thoughts == ""


@pytest.mark.parametrize("spec", ["openai", "groq_openai", "gemini", "anthropic"])
def test_parsed_thoughts_arrive_apart_from_the_answer_and_validation_says_so(
    api: httpx.Client, stack: RunningStack, spec: str
) -> None:
    llm = register(api, stack, spec, "parsed")
    token = mint(api, llm["id"])["sessionToken"]
    answer, thoughts = stream(stack, token)
    assert thoughts.startswith(THOUGHT_WORDS)
    assert answer.strip() and THOUGHT_WORDS not in answer
    whole = sdk(stack, token).chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    message = whole.choices[0].message
    assert (message.model_extra or {}).get("reasoning_content", "").startswith(THOUGHT_WORDS)
    assert THOUGHT_WORDS not in (message.content or "")
    report = api.get(f"/v1/llms/{llm['id']}/validation").json()
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["thoughts"]["status"] == "pass" and "separable" in by_id["thoughts"]["message"]
    assert by_id["latency"]["message"].startswith("first answer token after")
    assert report["timings"]["firstThoughtMs"] <= report["timings"]["ttftMs"]
    assert report["details"]["probe"]["maxTokens"] == 2048  # no 16-token probe for a thinking model
