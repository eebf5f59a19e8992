"""Issue 9's attacks, re-run against `llm-gateway dev` as an attacker would, each ending as the rule
says: bad stream bodies are 400s, credentials never live in URLs, the gateway never calls itself,
and the local stack reaches private addresses only for the origins it lists."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CANARY, LeakCollector, plain_env
from tests.e2e.conftest import RunningStack, llm_body

STARTUP_TIMEOUT_S = 30


def session_token(api: httpx.Client, llm_id: str) -> str:
    minted = api.post("/v1/auth/session-token", json={"personaConfig": {"name": "p", "llmId": llm_id}})
    assert minted.status_code == 200, minted.text
    return str(minted.json()["sessionToken"])


def chat(base: str, token: str, body: bytes | dict[str, Any], timeout: float = 30) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{base}/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=timeout,
    )


# --- 1. bodies the stream endpoint cannot use -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[" * 100_000 + b"]" * 100_000, ""),
        (b'{"messages":[{"role":"user","content":"\\ud800"}]}', "messages[0].content"),
        (b'{"messages":[{"role":"\\ud800","content":"hi"}]}', "messages[0].role"),
        (b'{"messages":[{"role":"user","content":"hi","name":"\\ud800"}]}', "messages[0].name"),
        (
            b'{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"\\ud800"}}]}',
            "tools[0].function.name",
        ),
    ],
)
def test_the_issues_bad_bodies_are_400_invalid_request(
    stack: RunningStack, api: httpx.Client, body: bytes, field: str
) -> None:
    response = chat(stack.api_url, session_token(api, stack.llms["openai"]), body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [d["field"] for d in error["details"]] == [field]
    assert response.headers["x-request-id"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "bot"])},
        optional={"content": _json, "name": _json, "tool_calls": _json, "tool_call_id": _json, "x": _json},
    ),
    max_size=3,
)
_bodies = st.one_of(
    st.fixed_dictionaries(
        {"messages": _messages},
        optional={
            "stream": _json,
            "temperature": _json,
            "max_tokens": _json,
            "tools": _json,
            "tool_choice": _json,
        },
    ).map(lambda b: json.dumps(b).encode()),
    _json.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=200),
)


def test_generated_bodies_never_get_a_5xx_or_hang(
    stack: RunningStack, api: httpx.Client, leak_collector: LeakCollector
) -> None:
    token = session_token(api, stack.llms["openai"])
    statuses: set[int] = set()

    @given(body=_bodies)
    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(body: bytes) -> None:
        response = chat(stack.api_url, token, body, timeout=20)  # a hang fails as a timeout
        leak_collector.add("stream fuzz", response.text)
        statuses.add(response.status_code)
        assert response.status_code < 500, (body[:200], response.status_code, response.text[:300])

    fuzz()
    assert 400 in statuses and 200 in statuses, statuses


# --- 2. credentials never live in URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "param",
    [
        "key", "API_KEY", "Api-Key", "token", "code", "Auth", "x-api-key", "subscription-key",
        "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "refresh_token", "jwt", "bearer",
        "session",
    ],
)  # fmt: skip
def test_a_key_in_the_url_is_refused_and_never_stored_or_echoed(
    stack: RunningStack, api: httpx.Client, param: str
) -> None:
    url = f"{stack.fake_provider_url}/v1/chat/completions?{param}={CANARY}"
    created = api.post("/v1/llms", json=llm_body(stack, urls=[{"url": url}], secret="fake-key"))
    assert created.status_code == 400, created.text
    assert created.json()["error"]["code"] == "credential_in_url"
    assert "`secret`" in created.json()["error"]["message"]
    listed = api.get("/v1/llms", params={"perPage": 100}).text
    assert CANARY not in listed and CANARY not in created.text


def test_the_stream_refuses_two_authorization_headers_as_the_management_api_does(
    stack: RunningStack, api: httpx.Client, anonymous: httpx.Client
) -> None:
    token = session_token(api, stack.llms["openai"])
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    for route, credential in (("/v1/chat/completions", token), ("/v1/llms", stack.api_key)):
        twice = [("Authorization", f"Bearer {credential}"), ("Authorization", "Bearer someone-elses")]
        method = "POST" if route.endswith("completions") else "GET"
        answer = anonymous.request(method, route, content=body if method == "POST" else None, headers=twice)
        assert answer.status_code == 401, (route, answer.text)
    once = anonymous.post("/v1/chat/completions", content=body, headers={"Authorization": f"Bearer {token}"})
    assert once.status_code == 200, once.text


# --- 5. private endpoints only by an explicit list ------------------------------------------------------


def test_moto_the_gateway_and_unlisted_loopback_ports_are_refused(
    stack: RunningStack, api: httpx.Client
) -> None:
    for base, reason in (
        (stack.aws_endpoint_url, None),  # not listed (and refused even when listed: below)
        (stack.api_url, "gateway_origin"),
        (stack.api_url.replace("127.0.0.1", "localhost"), "gateway_origin"),
        ("http://127.0.0.1:9", None),
    ):
        created = api.post("/v1/llms", json=llm_body(stack, urls=[{"url": f"{base}/v1/chat/completions"}]))
        assert created.status_code == 400, (base, created.text)
        error = created.json()["error"]
        assert error["code"] == "endpoint_blocked", (base, error)
        assert reason is None or error["details"]["reason"] == reason, (base, error)
        assert reason is not None or "--allow-endpoint" in error["message"]
    # The fake provider's origin is the one the stack lists by default.
    assert api.post("/v1/llms", json=llm_body(stack)).status_code == 201


def test_a_webhook_on_the_gateways_own_origin_is_refused(stack: RunningStack, api: httpx.Client) -> None:
    for base in (stack.api_url, stack.api_url.replace("127.0.0.1", "localhost")):
        created = api.post("/v1/webhooks", json={"url": f"{base}/v1/llms"})
        assert created.status_code == 400, (base, created.text)
        error = created.json()["error"]
        assert (error["code"], error["details"]["reason"]) == ("endpoint_blocked", "gateway_origin")
    assert all(not w["url"].startswith(stack.api_url) for w in api.get("/v1/webhooks").json()["data"])


# --- 3. the gateway never calls itself ---------------------------------------------------------------


def wait_for(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def register_x(api: httpx.Client, url: str) -> str:
    """LLM X on an upstream that accepts any key, validated."""
    body = {
        "displayName": "X", "llmFormat": "openai", "modelName": "fake-model", "urls": [{"url": url}],
        "secret": "any-key-at-all", "headers": {"x-fake-fault": "accept-any-key"},
    }  # fmt: skip
    created = api.post("/v1/llms", json=body)
    assert created.status_code == 201, created.text
    llm_id = str(created.json()["id"])
    wait_for(lambda: api.get(f"/v1/llms/{llm_id}").json()["status"] == "valid", "X to be valid")
    return llm_id


def store_token_as_secret(api: httpx.Client, llm_id: str, token: str) -> None:
    updated = api.put(f"/v1/llms/{llm_id}", json={"secret": token}, headers={"If-Match": "*"})
    assert updated.status_code == 200, updated.text
    wait_for(
        lambda: api.get(f"/v1/llms/{llm_id}").json()["secretHint"] == "…" + token[-4:], "T to be X's key"
    )


def test_pointing_an_llm_at_the_gateway_itself_is_refused(stack: RunningStack, api: httpx.Client) -> None:
    assert stack.fake_provider_url
    x = register_x(api, f"{stack.fake_provider_url}/v1/chat/completions")
    t = session_token(api, x)
    store_token_as_secret(api, x, t)
    for base in (stack.api_url, stack.api_url.replace("127.0.0.1", "localhost")):
        own = [{"url": f"{base}/v1/chat/completions"}]
        moved = api.put(f"/v1/llms/{x}", json={"urls": own}, headers={"If-Match": "*"})
        assert moved.status_code == 400, moved.text
        assert moved.json()["error"]["code"] == "endpoint_blocked"
        dry = api.post("/v1/llms/test", json=llm_body(stack, urls=own, secret=t))
        assert (dry.status_code, dry.json()["error"]["code"]) == (400, "endpoint_blocked")
    assert chat(stack.api_url, t, {"messages": [{"role": "user", "content": "hi"}]}).status_code == 200


@dataclass
class Relay:
    """A TCP relay on loopback: the stand-in for a DNS alias or a proxy in front of the gateway.
    Its target can be switched, as DNS can be changed after validation."""

    target_port: int = 0
    connections: int = 0
    sock: socket.socket = field(default_factory=socket.socket)

    def start(self) -> int:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def relayed_stack(
    tmp_path: Path, leak_collector: LeakCollector
) -> Iterator[tuple[dict[str, Any], Path, Relay]]:
    """A second `llm-gateway dev` that lists a relay's origin, and its own port too (still refused)."""
    relay = Relay()
    relay_port = relay.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state_file, log_file = tmp_path / "state.json", tmp_path / "dev.log"
    env = plain_env()
    command = [
        sys.executable, "-m", "llm_gateway_cli.main", "dev", "--port", str(port), "--state-file", str(state_file),
        "--allow-endpoint", f"http://127.0.0.1:{relay_port}", "--allow-endpoint", f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    with log_file.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(
            lambda: state_file.exists() or proc.poll() is not None, "the second stack", STARTUP_TIMEOUT_S
        )
        assert proc.poll() is None, log_file.read_text(errors="replace")
        yield json.loads(state_file.read_text("utf-8")), log_file, relay
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        relay.close()
        leak_collector.add("second stack log", log_file.read_text(errors="replace"))


def chat_lines(log_file: Path) -> list[str]:
    return [
        line
        for line in log_file.read_text(errors="replace").splitlines()
        if " POST /v1/chat/completions " in line
    ]


def test_the_issues_loop_recipe_ends_in_one_508(relayed_stack: tuple[dict[str, Any], Path, Relay]) -> None:
    """Register X on an upstream that accepts any key, mint T for X, store T as X's secret, then make
    X's URL lead back to the gateway (through an alias the origin check cannot see): one 508, at most
    two requests reach the gateway (before: 259 connections in 1.5 s, then a 504)."""
    state, log_file, relay = relayed_stack
    api_url = state["apiUrl"]
    relay.target_port = int(state["fakeProviderUrl"].rsplit(":", 1)[1])
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {state['apiKey']}"}, timeout=30
    ) as api:
        own = api.post("/v1/llms", json={
            "displayName": "self", "llmFormat": "openai", "modelName": "fake-model", "secret": "k",
            "urls": [{"url": f"{api_url}/v1/chat/completions"}],
        })  # fmt: skip
        assert (own.status_code, own.json()["error"]["code"]) == (400, "endpoint_blocked"), own.text
        relay_url = f"http://127.0.0.1:{relay.sock.getsockname()[1]}/v1/chat/completions"
        x = register_x(api, relay_url)
        t = session_token(api, x)
        store_token_as_secret(api, x, t)
        relay.target_port = int(api_url.rsplit(":", 1)[1])  # the alias now leads to the gateway
        before, connections = len(chat_lines(log_file)), relay.connections
        started = time.monotonic()
        answer = chat(api_url, t, {"messages": [{"role": "user", "content": "hi"}], "stream": True})
        elapsed = time.monotonic() - started
    assert answer.status_code == 508, answer.text
    assert answer.json()["error"]["code"] == "loop_detected"
    time.sleep(0.5)  # the request log line is written once the response is out
    inbound = chat_lines(log_file)[before:]
    assert 1 <= len(inbound) <= 2, inbound
    assert all(" 508 loop_detected " in line for line in inbound), inbound
    assert relay.connections - connections == 1, "the loop was cut at its first turn"
    assert elapsed < 5
