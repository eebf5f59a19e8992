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

from tests.conftest import LeakCollector
from tests.hostile import HostileServer
from tests.local_stack import RunningStack, create_account_key, launch_stack, llm_body, recording_client

STARTUP_TIMEOUT_S = 30


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
    from llm_gateway_cli.fake_provider.config import DEFAULT_KEY

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
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path))}
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
