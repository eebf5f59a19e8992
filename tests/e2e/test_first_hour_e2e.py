"""What a new user meets in the first hour, through a real `llm-gateway dev`: the front door's 405s,
errors that say what to do, updates that revalidate only when they should, the dev terminal."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import LeakCollector, plain_env
from tests.e2e.conftest import RunningStack, llm_body

CLI = [sys.executable, "-m", "llm_gateway_cli.main"]


def _env(**extra: str) -> dict[str, str]:
    return plain_env(**extra)


def _wait_until_settled(api: httpx.Client, llm_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        llm: dict[str, Any] = api.get(f"/v1/llms/{llm_id}").json()
        if llm["status"] != "pending" or time.monotonic() > deadline:
            return llm
        time.sleep(0.1)


def _valid_llm(api: httpx.Client, stack: RunningStack, **overrides: Any) -> dict[str, Any]:
    created = api.post("/v1/llms", json=llm_body(stack, secret="fake-key", **overrides))
    assert created.status_code == 201, created.text
    llm = _wait_until_settled(api, created.json()["id"])
    assert llm["status"] == "valid", llm
    return llm


def _session_token(api: httpx.Client, llm_id: str) -> str:
    minted = api.post("/v1/auth/session-token", json={"personaConfig": {"name": "Ava", "llmId": llm_id}})
    assert minted.status_code in (200, 201), minted.text
    return str(minted.json()["sessionToken"])


# --------------------------------------------------------------------------- 405 and error words


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/v1/llms/some-id", "GET, PUT, DELETE"),
        ("DELETE", "/v1/llms", "GET, POST"),
        ("GET", "/v1/llms/test", "POST"),
        ("GET", "/v1/chat/completions", "POST"),
        ("POST", "/.well-known/jwks.json", "GET"),
    ],
)
def test_a_known_path_with_another_method_is_405_with_allow(
    anonymous: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = anonymous.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_path_is_still_404(anonymous: httpx.Client) -> None:
    response = anonymous.patch("/v1/nowhere")
    assert response.status_code == 404
    assert "allow" not in response.headers


def test_the_chat_endpoint_tells_an_account_key_where_session_tokens_come_from(
    stack: RunningStack, anonymous: httpx.Client
) -> None:
    response = anonymous.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        json={"messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "token_malformed"
    assert "account API key" in error["message"] and "POST /v1/auth/session-token" in error["message"]
    assert stack.api_key not in response.text


def test_malformed_json_on_the_chat_endpoint_is_invalid_request(
    stack: RunningStack, api: httpx.Client, anonymous: httpx.Client
) -> None:
    token = _session_token(api, stack.llms["openai"])
    response = anonymous.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        content=b'{"messages": [',
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_if_match_star_updates_whatever_the_version(api: httpx.Client, stack: RunningStack) -> None:
    llm = api.post("/v1/llms", json=llm_body(stack)).json()
    updated = api.put(f"/v1/llms/{llm['id']}", json={"description": "any"}, headers={"If-Match": "*"})
    assert updated.status_code == 200, updated.text
    refused = api.put(f"/v1/llms/{llm['id']}", json={"description": "x"}, headers={"If-Match": "latest"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_if_match"


# --------------------------------------------------------------------------- revalidation


def test_a_rename_keeps_the_llm_usable_and_a_model_change_revalidates(
    api: httpx.Client, stack: RunningStack
) -> None:
    llm = _valid_llm(api, stack)
    renamed = api.put(f"/v1/llms/{llm['id']}", json={"displayName": "Renamed", "metadata": {"team": "eu"}})
    assert renamed.status_code == 200
    assert renamed.json()["status"] == "valid"
    assert _session_token(api, llm["id"])  # no 409 llm_validation_pending after a rename
    changed = api.put(f"/v1/llms/{llm['id']}", json={"modelName": "fake-model-2"})
    assert changed.json()["status"] == "pending"
    assert _wait_until_settled(api, llm["id"])["status"] == "valid"


def test_an_idempotent_replay_after_a_delete_is_409(api: httpx.Client, stack: RunningStack) -> None:
    key = {"Idempotency-Key": f"e2e-replay-{time.time_ns()}"}
    body = llm_body(stack)
    first = api.post("/v1/llms", json=body, headers=key)
    assert api.post("/v1/llms", json=body, headers=key).json()["id"] == first.json()["id"]
    assert api.delete(f"/v1/llms/{first.json()['id']}").status_code == 204
    replay = api.post("/v1/llms", json=body, headers=key)
    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["id"] in replay.json()["error"]["message"]


def test_llms_update_with_a_new_key_says_whether_it_was_promoted_or_refused(
    api: httpx.Client, stack: RunningStack, leak_collector: LeakCollector
) -> None:
    llm = _valid_llm(api, stack)

    def update(key: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*CLI, "llms", "update", llm["id"], "--api-key", key, "--wait", "--wait-timeout", "60",
             "--state-file", str(stack.state_file)],
            capture_output=True, text=True, timeout=120, env=_env(),
        )  # fmt: skip
        leak_collector.add("cli llms update", done.stdout + done.stderr)
        return done

    refused = update("sk-not-the-right-key")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "The new key is pending validation" in refused.stderr
    assert "New key refused:" in refused.stdout and "previous key stays in service" in refused.stdout
    assert "status: valid" in refused.stdout
    promoted = update("fake-key")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "promoted: it passed validation" in promoted.stdout


# --------------------------------------------------------------------------- the dev terminal


def test_each_request_prints_one_readable_line(api: httpx.Client, stack: RunningStack) -> None:
    token = _session_token(api, stack.llms["openai"])
    with httpx.stream(
        "POST",
        f"{stack.api_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"messages": [{"role": "user", "content": "hello"}]},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        response.read()
    api.get("/v1/llms/does-not-exist")
    stream_line = re.compile(
        rf"^\d\d:\d\d:\d\d POST /v1/chat/completions 200 {stack.account_id} [\d.]+ m?s ttft [\d.]+ m?s ok$",
        re.M,
    )
    error_line = re.compile(
        rf"^\d\d:\d\d:\d\d GET /v1/llms/does-not-exist 404 llm_not_found {stack.account_id} ", re.M
    )
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:
        log = stack.log_file.read_text(errors="replace")
        if stream_line.search(log) and error_line.search(log):
            break
        time.sleep(0.1)
    assert stream_line.search(log), log[-2000:]
    assert error_line.search(log), log[-2000:]
    assert '"_aws"' not in log, "EMF metrics are for Lambda, not the dev terminal"
    assert stack.api_key not in "\n".join(line for line in log.splitlines() if " /v1/" in line)


def test_a_second_dev_on_the_same_port_names_it_and_leaves_the_first_alone(
    stack: RunningStack, tmp_path: Path
) -> None:
    before = stack.state_file.read_text("utf-8")
    port = str(urlsplit(stack.api_url).port)
    done = subprocess.run(
        [*CLI, "dev", "--port", port, "--state-file", str(tmp_path / "second.json")],
        capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"port {port}" in done.stderr and "--port" in done.stderr
    assert stack.state_file.read_text("utf-8") == before
    assert not (tmp_path / "second.json").exists()
    assert httpx.get(f"{stack.api_url}/.well-known/jwks.json").status_code == 200


def test_a_second_dev_on_the_same_state_file_refuses_and_never_deletes_it(stack: RunningStack) -> None:
    before = stack.state_file.read_text("utf-8")
    done = subprocess.run(
        [*CLI, "dev", "--port", "0", "--state-file", str(stack.state_file)],
        capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert str(stack.state_file) in done.stderr and "--state-file" in done.stderr
    assert stack.state_file.read_text("utf-8") == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_quiet_dev_streams_then_stops_cleanly_on_ctrl_c(
    tmp_path: Path, leak_collector: LeakCollector
) -> None:
    """--quiet: no request lines; no EMF; Ctrl-C after a stream and a failed stream ends without
    an unclosed-session warning or a traceback, and removes the state file it wrote."""
    state_file, log_file = tmp_path / "state.json", tmp_path / "dev.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [*CLI, "dev", "--quiet", "--port", "0", "--state-file", str(state_file)],
            stdout=log, stderr=subprocess.STDOUT, env=_env(PYTHONWARNINGS="default"),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not state_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log_file.read_text(errors="replace")
            time.sleep(0.05)
        state = json.loads(state_file.read_text("utf-8"))
        with httpx.Client(base_url=state["apiUrl"], timeout=30) as client:
            auth = {"Authorization": f"Bearer {state['apiKey']}"}
            token = client.post(
                "/v1/auth/session-token",
                headers=auth,
                json={"personaConfig": {"name": "Ava", "llmId": state["llms"]["openai"]}},
            ).json()["sessionToken"]
            answer = client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {token}"},
                json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
            )
            assert answer.status_code == 200 and "[DONE]" in answer.text
            failed = client.post("/v1/chat/completions", headers=auth, json={"messages": []})
            assert failed.status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    output = log_file.read_text(errors="replace")
    leak_collector.add("quiet dev log", output)
    assert proc.returncode == 0, output
    for unwanted in ("Unclosed client session", "Unclosed connector", "Traceback", '"_aws"', " /v1/"):
        assert unwanted not in output, f"{unwanted!r} in:\n{output}"
    assert not state_file.exists()
