"""Health through a real `llm-gateway dev --revalidate-every 2s`: a scripted fault on the fake provider
(driven over its HTTP control endpoint) flips the demo OpenAI LLM healthy → degraded (real traffic)
→ failing (re-validations) → healthy (both good again). Every change is an ``LlmHealthChanged`` on
the bus and a webhook delivery whose signature the Standard Webhooks library verifies."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook as Verifier

from tests.conftest import LeakCollector, plain_env
from tests.local_stack import RunningStack, launch_stack

#: Only the test's own streams carry this; the conformance probe never does.
TRAFFIC_MARK = "health-e2e-traffic"


@pytest.fixture(scope="module")
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture(scope="module")
def health_stack(
    tmp_path_factory: pytest.TempPathFactory, leak_collector: LeakCollector, receiver: Receiver
) -> Iterator[RunningStack]:
    """A stack of its own: every LLM re-validated every 2 s, traffic flushed every second; the
    webhook receiver's loopback origin is allowed as a customer would allow their own server."""
    workdir = tmp_path_factory.mktemp("health-stack")
    with launch_stack(
        workdir, leak_collector, "--revalidate-every", "2s", "--quiet",
        "--allow-endpoint", receiver.origin, "--flush-traffic-every", "1s",
    ) as running:  # fmt: skip
        yield running


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], str]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/llm-gateway/health"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _bus_observer(stack: RunningStack) -> Callable[[], list[dict[str, Any]]]:
    """A queue of our own behind a rule on the stack's bus, for every LlmHealthChanged."""
    sqs, events = stack.aws("sqs"), stack.aws("events")
    bus = next(
        b["Name"] for b in events.list_event_buses()["EventBuses"] if b["Name"].startswith("llm-gateway-")
    )
    url = sqs.create_queue(QueueName="e2e-health-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="e2e-health", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["LlmHealthChanged"]})
    )
    events.put_targets(Rule="e2e-health", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    seen: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return seen

    return read


def _wait_for(what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_a_demo_llm_goes_degraded_failing_and_back_with_events_and_signed_webhooks(
    health_stack: RunningStack, leak_collector: LeakCollector, receiver: Receiver
) -> None:
    stack = health_stack
    llm_id = stack.llms["openai"]
    api = httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=30
    )
    fake = httpx.Client(base_url=str(stack.fake_provider_url), timeout=10)
    bus_events = _bus_observer(stack)
    created = api.post("/v1/webhooks", json={"url": receiver.url, "description": "e2e"})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    token = api.post(
        "/v1/auth/session-token", json={"personaConfig": {"name": "Ava", "llmId": llm_id}}
    ).json()["sessionToken"]

    def state() -> str:
        return str(api.get(f"/v1/llms/{llm_id}").json()["health"]["state"])

    def stream(count: int) -> list[int]:
        def one(_: int) -> int:
            response = httpx.post(
                f"{stack.api_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {token}"},
                json={"messages": [{"role": "user", "content": f"{TRAFFIC_MARK}: hello"}], "stream": True},
                timeout=30,
            )
            return response.status_code

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(one, range(count)))

    def script(**rule: Any) -> None:
        fake.delete("/_fake/faults").raise_for_status()
        if rule:
            fake.put("/_fake/faults", json={"model": "fake-model", **rule}).raise_for_status()

    assert state() == "healthy"

    # 1. Real traffic: 30 % of the test's streams fail upstream (the probes are untouched) -> degraded.
    # A refused request (400) is never retried, so exactly those streams fail (a 500 would be).
    script(fault="status-400", ratio=0.3, when=TRAFFIC_MARK)
    statuses = stream(30)
    assert statuses.count(400) == 9 and statuses.count(200) == 21
    _wait_for("degraded", lambda: state() == "degraded")
    window = _wait_for(
        "all 30 streams counted",
        lambda: (w := api.get(f"/v1/llms/{llm_id}").json()["health"]["window"])["requests"] == 30 and w,
    )
    assert window["errorsByCode"] == {"upstream_bad_request": 9} and window["errorRate"] == 0.3
    assert window["ttftP50Ms"] is not None

    # 2. Every request fails, but no traffic: three failed re-validations in a row -> failing.
    script(fault="status-500")
    _wait_for("failing", lambda: state() == "failing")

    # 3. The streams recover first (the probes still fail, so it stays failing), then the probes.
    script(fault="status-500", unless=TRAFFIC_MARK)
    assert set(stream(60)) == {200}
    time.sleep(2.5)  # a flush or two, and a re-validation that still fails
    assert state() == "failing"
    script()
    _wait_for("healthy", lambda: state() == "healthy")

    events = _wait_for("four health events", lambda: len(bus_events()) >= 3 and bus_events())
    transitions = [
        (e["detail"]["previousState"], e["detail"]["state"], e["detail"]["signal"]) for e in events
    ]
    assert transitions == [
        ("healthy", "degraded", "traffic"),
        ("degraded", "failing", "check"),
        ("failing", "healthy", "check"),
    ]
    failing = events[1]["detail"]
    assert (
        failing["consecutiveFailedChecks"] == 3
        and failing["lastCheck"]["errorCode"] == "upstream_server_error"
    )
    assert failing["lastCheck"]["failedChecks"][0]["hint"], "the report says what to fix"
    assert re.fullmatch(
        r"\d+% of \d+ requests in the last 15 minutes failed upstream \(upstream_bad_request x\d+\)\.",
        events[0]["detail"]["reason"],
    )

    _wait_for("three webhook deliveries", lambda: len(receiver.received) >= 3)
    delivered = [Verifier(secret).verify(body, headers) for headers, body in receiver.received]
    assert [(p["type"], p["data"]["state"]) for p in delivered] == [
        ("llm.health_changed", "degraded"),
        ("llm.health_changed", "failing"),
        ("llm.health_changed", "healthy"),
    ]
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 3
    leak_collector.add("webhooks received", receiver.received)

    shown = subprocess.run(
        [sys.executable, "-m", "llm_gateway_cli.main", "llms", "health", llm_id, "--hours", "1",
         "--state-file", str(stack.state_file)],
        check=True, capture_output=True, text=True, timeout=30, env=plain_env(),
    ).stdout  # fmt: skip
    assert "health:       healthy since" in shown
    assert "requests |" in shown and "errors   |" in shown
    receiver.server.shutdown()
