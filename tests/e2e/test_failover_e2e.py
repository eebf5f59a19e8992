"""Issue 19 through `llm-gateway dev --allow-endpoint A --allow-endpoint B`: two fake providers as
the URLs [A, B] of one LLM registered over the API, A broken with `PUT $A/_fake/faults`, streams
through the official `openai` SDK. The persona keeps talking while a healthy URL exists."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_gateway_fake_provider import FakeProviderHandle, start_in_thread
from tests.conftest import LeakCollector
from tests.e2e.test_freshness_e2e import settled
from tests.e2e.test_stream_e2e import mint
from tests.local_stack import RunningStack, launch_stack, recording_client

PATH = "/v1/chat/completions"


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeProviderHandle, FakeProviderHandle]]:
    a, b = start_in_thread(port=0), start_in_thread(port=0)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def failover_stack(
    tmp_path_factory: pytest.TempPathFactory,
    leak_collector: LeakCollector,
    fakes: tuple[FakeProviderHandle, FakeProviderHandle],
) -> Iterator[RunningStack]:
    a, b = fakes
    with launch_stack(
        tmp_path_factory.mktemp("failover-stack"), leak_collector, "--revalidate-every", "off", "--quiet",
        "--allow-endpoint", a.url, "--allow-endpoint", b.url, "--flush-traffic-every", "1s",
    ) as running:  # fmt: skip
        yield running


@pytest.fixture
def api(failover_stack: RunningStack, leak_collector: LeakCollector) -> Iterator[httpx.Client]:
    with recording_client(failover_stack.api_url, failover_stack.api_key, leak_collector) as client:
        yield client


@pytest.fixture
def fakes_reset(fakes: tuple[FakeProviderHandle, FakeProviderHandle]) -> Iterator[None]:
    for handle in fakes:
        handle.state.reset()
    yield
    for handle in fakes:
        handle.state.reset()


def register(api: httpx.Client, urls: list[str], **extra: Any) -> str:
    body = {"displayName": "failover e2e", "llmFormat": "openai", "modelName": "fake-model",
            "urls": [{"url": u} for u in urls], "secret": "fake-key"} | extra  # fmt: skip
    created = api.post("/v1/llms", json=body)
    assert created.status_code == 201, created.text
    llm_id = str(created.json()["id"])
    assert settled(api, llm_id)["status"] == "valid"
    return llm_id


def chat_url(fake: FakeProviderHandle, test: str) -> str:
    """A's or B's chat URL, as its own URL per test: what the stack learned about a URL in one test
    (its breaker, its speed) does not order another test's attempts."""
    return f"{fake.url}{PATH}?test={test}"


def break_url(fake: FakeProviderHandle, fault: str | None) -> None:
    with httpx.Client(base_url=fake.url, timeout=10) as client:
        if fault is None:
            assert client.delete("/_fake/faults").status_code == 200
        else:
            assert (
                client.put("/_fake/faults", json={"model": "fake-model", "fault": fault}).status_code == 200
            )


def ask(stack: RunningStack, token: str) -> tuple[str, dict[str, str], float]:
    """One streamed answer through the SDK: its text, the response headers, the time to first text."""
    client = openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=token, max_retries=0, timeout=30)
    started = time.monotonic()
    first: float | None = None
    with client.chat.completions.with_streaming_response.create(
        model="x", messages=[{"role": "user", "content": "Say hello."}], stream=True
    ) as response:
        text = []
        for chunk in response.parse():
            for choice in chunk.choices:
                if choice.delta.content and first is None:
                    first = time.monotonic() - started
                text.append(choice.delta.content or "")
        headers = dict(response.headers)
    assert first is not None
    return "".join(text), headers, first


def url_served(headers: dict[str, str]) -> str:
    return headers["server-timing"].split('url;desc="')[1].split('"')[0]


@pytest.mark.usefixtures("fakes_reset")
def test_a_down_for_a_while_is_served_by_b_then_gets_its_traffic_back(
    failover_stack: RunningStack, api: httpx.Client, fakes: tuple[FakeProviderHandle, FakeProviderHandle]
) -> None:
    a, b = fakes
    llm_id = register(api, [chat_url(a, "outage"), chat_url(b, "outage")])
    token = mint(api, llm_id)["sessionToken"]
    healthy_text, _, _ = ask(failover_stack, token)
    a.state.reset()  # forget the validation's probes and the first answer
    break_url(a, "status-503")
    started = time.monotonic()
    during = [ask(failover_stack, token) for _ in range(10)]
    assert all(text == healthy_text for text, _, _ in during), "one whole answer each time"
    assert {url_served(headers) for _, headers, _ in during} == {"1"}
    probes = int((time.monotonic() - started) // 5)  # the 5 s cool-down: one half-open try each
    assert len(a.state.requests()) <= 2 + probes, "after two failures b answers without trying a"
    break_url(a, None)
    deadline = time.monotonic() + 65  # at most the longest cool-down (60 s)
    while url_served(ask(failover_stack, token)[1]) != "0":
        assert time.monotonic() < deadline, "a never got its traffic back"
        time.sleep(0.5)
    after = [ask(failover_stack, token) for _ in range(9)]
    assert [url_served(headers) for _, headers, _ in after] == ["0"] * 9, "back on a"


@pytest.mark.usefixtures("fakes_reset")
def test_a_silent_first_url_is_hedged_within_the_hedge_delay(
    failover_stack: RunningStack, api: httpx.Client, fakes: tuple[FakeProviderHandle, FakeProviderHandle]
) -> None:
    a, b = fakes
    llm_id = register(api, [chat_url(a, "hedge"), chat_url(b, "hedge")], timeouts={"hedgeMs": 400})
    token = mint(api, llm_id)["sessionToken"]
    break_url(a, "delay-first-byte:6000")
    text, headers, first = ask(failover_stack, token)
    assert text and first < 3.0, "not the 6 s of silence"
    assert 'hedged;desc="1"' in headers["server-timing"] and url_served(headers) == "1"


@pytest.mark.usefixtures("fakes_reset")
def test_a_conversation_too_long_is_answered_by_the_fallback_llm_of_another_spec(
    failover_stack: RunningStack, api: httpx.Client, fakes: tuple[FakeProviderHandle, FakeProviderHandle]
) -> None:
    a, _ = fakes
    gemini = failover_stack.llms["gemini"]  # the demo Gemini LLM, on the stack's own fake provider
    llm_id = register(api, [chat_url(a, "fallback")], fallbackLlmIds=[gemini])
    assert api.get(f"/v1/llms/{llm_id}").json()["fallbackLlmIds"] == [gemini]
    token = mint(api, llm_id)["sessionToken"]
    break_url(a, "context-length")
    text, headers, _ = ask(failover_stack, token)
    assert text and headers["x-llm-id"] == gemini
    cycle = api.put(f"/v1/llms/{llm_id}", json={"fallbackLlmIds": [llm_id]}, headers={"If-Match": "*"})
    assert cycle.status_code == 400 and cycle.json()["error"]["code"] == "invalid_fallback"


@pytest.mark.usefixtures("fakes_reset")
def test_a_content_filter_is_its_own_code_and_not_retried(
    failover_stack: RunningStack, api: httpx.Client, fakes: tuple[FakeProviderHandle, FakeProviderHandle]
) -> None:
    a, b = fakes
    token = mint(api, register(api, [chat_url(a, "filter"), chat_url(b, "filter")]))["sessionToken"]
    for fake in fakes:  # whichever URL the ranking tries first refuses: the other is never asked
        fake.state.reset()
        break_url(fake, "content-filter")
    client = openai.OpenAI(base_url=f"{failover_stack.api_url}/v1", api_key=token, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "x"}], stream=True)
    assert caught.value.code == "upstream_content_filtered"
    assert len(a.state.requests()) + len(b.state.requests()) == 1


@pytest.mark.usefixtures("fakes_reset")
@pytest.mark.parametrize("fault", ["reset:40", "stall:20"])
def test_an_answer_cut_mid_stream_continues_on_b_as_one_whole_answer(
    failover_stack: RunningStack,
    api: httpx.Client,
    fakes: tuple[FakeProviderHandle, FakeProviderHandle],
    fault: str,
) -> None:
    a, b = fakes
    urls = [chat_url(a, f"cut-{fault}"), chat_url(b, f"cut-{fault}")]
    llm_id = register(api, urls, headers={"x-fake-chunks": "60"}, timeouts={"idleMs": 1000})
    report = api.get(f"/v1/llms/{llm_id}/validation").json()
    assert {c["id"]: c["status"] for c in report["checks"]}["continuation@2"] == "pass"
    assert api.get(f"/v1/llms/{llm_id}").json()["validation"]["continuationUrls"] == [0, 1]
    token = mint(api, llm_id)["sessionToken"]
    unbroken, _, _ = ask(failover_stack, token)
    break_url(a, fault)
    b.state.reset()
    text, _, _ = ask(failover_stack, token)  # the SDK raises on an error event: this answer is whole
    assert text == unbroken, "not a word repeated or lost"
    assert any(r["body"]["messages"][-1]["role"] == "assistant" for r in b.state.requests())
