"""Issue 20's attacks through `llm-gateway dev`: two accounts, and a hostile endpoint of the test's
own on loopback (``tests/hostile.py``). No tenant holds what the others need (validators,
delivery slots, the limits), and the local stack behaves where it used to mislead."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LeakCollector, plain_env
from tests.hostile import HostileServer
from tests.local_stack import (
    STARTUP_TIMEOUT_S,
    RunningStack,
    create_account_key,
    launch_stack,
    llm_body,
    recording_client,
)


def wait_for(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer(limit_s=90).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def v6_relay() -> Iterator[tuple[socket.socket, list[int]]]:
    """A TCP relay on ``[::1]`` to a target port set later (the fake provider's)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.bind(("::1", 0))
    sock.listen(16)
    target: list[int] = [0]

    def pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", target[0]), timeout=30)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield sock, target
    sock.close()


@pytest.fixture(scope="module")
def isolated_stack(
    tmp_path_factory: pytest.TempPathFactory,
    leak_collector: LeakCollector,
    hostile: HostileServer,
    v6_relay: tuple[socket.socket, list[int]],
) -> Iterator[RunningStack]:
    """A stack that lets tenants use the hostile server, and an IPv6 origin (``[::1]``)."""
    v6_origin = f"http://[::1]:{v6_relay[0].getsockname()[1]}"
    with launch_stack(
        tmp_path_factory.mktemp("isolation"), leak_collector, "--revalidate-every", "off",
        "--allow-endpoint", hostile.origin, "--allow-endpoint", v6_origin,
    ) as running:  # fmt: skip
        assert running.fake_provider_url
        v6_relay[1][0] = int(running.fake_provider_url.rsplit(":", 1)[1])
        yield running


def client(stack: RunningStack, key: str, leak_collector: LeakCollector) -> httpx.Client:
    return recording_client(stack.api_url, key, leak_collector)


def test_an_ipv6_private_origin_starts_the_stack_and_serves_an_llm(
    isolated_stack: RunningStack, v6_relay: tuple[socket.socket, list[int]], leak_collector: LeakCollector
) -> None:
    from llm_gateway_fake_provider.config import DEFAULT_KEY

    url = f"http://[::1]:{v6_relay[0].getsockname()[1]}/v1/chat/completions"
    with client(isolated_stack, isolated_stack.api_key, leak_collector) as api:
        tested = api.post(
            "/v1/llms/test", json=llm_body(isolated_stack, urls=[{"url": url}], secret=DEFAULT_KEY)
        )
        assert tested.status_code == 200, tested.text
        assert tested.json()["compatible"] is True, tested.text


def test_parallel_webhook_creates_stop_at_ten(
    isolated_stack: RunningStack, leak_collector: LeakCollector
) -> None:
    key = create_account_key(isolated_stack, "webhook-racer")
    url = f"{isolated_stack.fake_provider_url}/hooks/racer"
    with client(isolated_stack, key, leak_collector) as api, ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(
            pool.map(lambda _: api.post("/v1/webhooks", json={"url": url}).status_code, range(20))
        )
        assert sorted(statuses) == [201] * 10 + [409] * 10, statuses
        assert len(api.get("/v1/webhooks").json()["data"]) == 10


def test_a_slow_test_call_does_not_hold_queued_validations(
    isolated_stack: RunningStack, hostile: HostileServer, leak_collector: LeakCollector
) -> None:
    """Tenant A's `POST /v1/llms/test` on a URL that drips headers takes its whole 25 s budget;
    meanwhile tenant B's registration (the same function, on its queue) is validated."""
    key_a = create_account_key(isolated_stack, "dripper")
    key_b = create_account_key(isolated_stack, "patient")
    answers: list[httpx.Response] = []
    body = llm_body(isolated_stack, urls=[{"url": hostile.url("/drip/test/v1/chat/completions")}])

    def slow_test() -> None:
        with client(isolated_stack, key_a, leak_collector) as a:
            answers.append(a.post("/v1/llms/test", json=body))

    slow = threading.Thread(target=slow_test, daemon=True)
    slow.start()
    wait_for(lambda: hostile.hits("/drip/test") or answers, "the drip to start", timeout=15)
    assert not answers, answers[0].text
    with client(isolated_stack, key_b, leak_collector) as b:
        created = b.post("/v1/llms", json=llm_body(isolated_stack, secret="fake-key"))
        assert created.status_code == 201, created.text
        llm_id = created.json()["id"]
        wait_for(lambda: b.get(f"/v1/llms/{llm_id}").json()["status"] != "pending", "B's validation", 20)
        assert slow.is_alive() and not answers, "B was validated while A's test call still ran"
        assert b.get(f"/v1/llms/{llm_id}").json()["status"] == "valid"
    slow.join(timeout=40)
    assert answers and answers[0].status_code == 200 and answers[0].json()["compatible"] is False


def test_a_dead_moto_is_a_503_naming_it_not_401s(tmp_path: Path, leak_collector: LeakCollector) -> None:
    state_file, log_file = tmp_path / "state.json", tmp_path / "dev.log"
    env = plain_env()
    command = [sys.executable, "-m", "llm_gateway_cli.main", "dev", "--port", "0", "--state-file", str(state_file),
               "--revalidate-every", "off"]  # fmt: skip
    with log_file.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: state_file.exists() or proc.poll() is not None, "the stack", STARTUP_TIMEOUT_S)
        assert proc.poll() is None, log_file.read_text(errors="replace")
        state = json.loads(state_file.read_text("utf-8"))
        moto_log = Path(state["logs"]["moto"])
        moto_pid = int(moto_log.read_text().split("(pid ")[1].split(")")[0])
        os.kill(moto_pid, signal.SIGKILL)
        with httpx.Client(
            base_url=state["apiUrl"], headers={"Authorization": f"Bearer {state['apiKey']}"}
        ) as api:
            answer = wait_for(
                lambda: (r := api.get("/v1/llms")).status_code != 200 and r, "moto to be gone", 10
            )
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "local_stack_unavailable"
        assert "moto" in error["message"] and str(moto_log) in error["message"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        leak_collector.add("dead-moto stack log", log_file.read_text(errors="replace"))
    assert "moto process exited" in log_file.read_text(errors="replace")


def test_tenant_b_is_valid_within_seconds_while_a_floods_slow_registrations(
    isolated_stack: RunningStack, hostile: HostileServer, leak_collector: LeakCollector
) -> None:
    """Tenant A registers 6 LLMs whose URL drips headers (each run holds a validator for its whole
    budget); tenant B's LLM on a healthy endpoint is valid long before A's first run ends: A runs
    at most its 2 slots, the other validators are B's (before: B waited for A's runs, 84.8 s)."""
    key_a = create_account_key(isolated_stack, "flooder")
    key_b = create_account_key(isolated_stack, "bystander")
    with (
        client(isolated_stack, key_a, leak_collector) as a,
        client(isolated_stack, key_b, leak_collector) as b,
    ):
        slow = [
            a.post(
                "/v1/llms",
                json=llm_body(isolated_stack, urls=[{"url": hostile.url(f"/drip/a{i}/v1/chat/completions")}]),
            )
            for i in range(6)
        ]
        assert all(r.status_code == 201 for r in slow), [r.text for r in slow]
        wait_for(lambda: len(hostile.hits("/drip/a")) >= 2, "A's runs to start", timeout=20)
        created = b.post("/v1/llms", json=llm_body(isolated_stack, secret="fake-key"))
        assert created.status_code == 201, created.text
        llm_id = created.json()["id"]
        wait_for(lambda: b.get(f"/v1/llms/{llm_id}").json()["status"] != "pending", "B's validation", 20)
        assert b.get(f"/v1/llms/{llm_id}").json()["status"] == "valid"
        drips = {s.path.split("/")[2] for s in hostile.hits("/drip/a") if s.held_s is None}
        assert len(drips) <= 2, f"A runs at most its two slots at once: {drips}"
        statuses = [a.get(f"/v1/llms/{r.json()['id']}").json()["status"] for r in slow]
        assert statuses.count("pending") >= 4, statuses
        for r in slow:  # A's LLMs go; their runs end as the server lets go of them
            assert a.delete(f"/v1/llms/{r.json()['id']}").status_code == 204
    hostile.cut_all()


def test_validate_in_a_loop_returns_the_finished_run_instead_of_a_new_one(
    isolated_stack: RunningStack, leak_collector: LeakCollector
) -> None:
    key = create_account_key(isolated_stack, "looper")
    with client(isolated_stack, key, leak_collector) as api:
        created = api.post("/v1/llms", json=llm_body(isolated_stack, secret="fake-key"))
        llm_id = created.json()["id"]
        wait_for(lambda: api.get(f"/v1/llms/{llm_id}").json()["status"] == "valid", "the registration")
        first = api.post(f"/v1/llms/{llm_id}/validate").json()
        wait_for(lambda: not api.get(f"/v1/llms/{llm_id}/validation").json().get("pending"), "the run")
        again = [api.post(f"/v1/llms/{llm_id}/validate") for _ in range(10)]
        assert {r.status_code for r in again} == {202}
        assert {r.json()["validationId"] for r in again} == {first["validationId"]}
        assert {r.json()["status"] for r in again} == {"done"}


def test_test_calls_at_one_host_send_at_most_its_budget_then_429(
    isolated_stack: RunningStack, hostile: HostileServer, leak_collector: LeakCollector
) -> None:
    """40 `POST /v1/llms/test` with 5 URLs on one host, from two accounts (before: 400 requests
    reached the host in 1.6 s): the host gets at most its 120 requests a minute, the rest 429."""
    keys = [create_account_key(isolated_stack, f"amplifier-{n}") for n in range(2)]
    urls = [{"url": hostile.url(f"/target/{i}/v1/chat/completions")} for i in range(5)]
    before = len(hostile.hits("/target/"))
    answers = []
    started = time.time()
    with (
        client(isolated_stack, keys[0], leak_collector) as a,
        client(isolated_stack, keys[1], leak_collector) as b,
    ):
        for n in range(40):
            answers.append(
                (a if n % 2 else b).post("/v1/llms/test", json=llm_body(isolated_stack, urls=urls))
            )
    windows = int(time.time() // 60) - int(started // 60) + 1  # budgets are per clock minute
    sent = len(hostile.hits("/target/")) - before
    assert sent <= 120 * windows, (sent, windows)
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) >= 40 - 12 * windows, [r.status_code for r in answers]
    assert {r.status_code for r in answers} <= {200, 429}
    error = refused[0].json()["error"]
    assert error["code"] == "target_rate_limited" and "127.0.0.1" in error["message"]
    assert 1 <= int(refused[0].headers["Retry-After"]) <= 60
    assert {r.json()["error"]["code"] for r in refused} == {"target_rate_limited"}


def queue_depth(stack: RunningStack, name: str) -> int:
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


def test_the_revalidation_queue_stays_bounded_under_a_schedule_of_seconds(
    tmp_path: Path, leak_collector: LeakCollector, hostile: HostileServer
) -> None:
    """A schedule every 2 s over 12 LLMs, 4 of them failing and then slow (before: 2,243 messages
    and a registration still pending after 301 s): at most one scheduled run is queued per LLM,
    failing LLMs back off (their health says so), and a new registration is valid meanwhile."""
    with launch_stack(
        tmp_path, leak_collector, "--revalidate-every", "2s", "--allow-endpoint", hostile.origin
    ) as stack:
        key = create_account_key(stack, "scheduled")
        with client(stack, key, leak_collector) as api:
            healthy = [
                api.post("/v1/llms", json=llm_body(stack, secret="fake-key")).json()["id"] for _ in range(8)
            ]
            failing = [
                api.post(
                    "/v1/llms",
                    json=llm_body(stack, urls=[{"url": hostile.url(f"/flip/{i}/v1/chat/completions")}]),
                ).json()["id"]
                for i in range(4)
            ]
            for llm_id in healthy + failing:
                wait_for(
                    lambda llm_id=llm_id: api.get(f"/v1/llms/{llm_id}").json()["status"] != "pending",
                    "validations",
                )

            def backed_off() -> bool:
                health = api.get(f"/v1/llms/{failing[0]}").json().get("health") or {}
                return int(health.get("revalidationIntervalSeconds") or 0) > 2

            wait_for(backed_off, "a failing LLM's interval to grow", timeout=30)
            hostile.flipped = True  # the failing ones now hold whatever probes them
            candidates = len(stack.llms) + len(healthy) + len(failing)  # the demo LLMs, and these
            depths = []
            for _ in range(12):
                depths.append(queue_depth(stack, "llm-gateway-local-revalidation"))
                time.sleep(1)
            assert max(depths) <= candidates, depths
            created = api.post("/v1/llms", json=llm_body(stack, secret="fake-key")).json()["id"]
            wait_for(lambda: api.get(f"/v1/llms/{created}").json()["status"] == "valid", "a registration", 20)
            for llm_id in healthy + failing + [created]:
                api.delete(f"/v1/llms/{llm_id}")
        hostile.flipped = False
        hostile.cut_all()
