"""The stream app over real loopback sockets: uvicorn in a thread, a fake provider, moto for AWS.

LLM records are written straight to the repository as ``valid`` (no validator run); the fake
provider misbehaves through headers stored on the LLM config (a client cannot add upstream headers).
SECURITY.md 5, 6, 18, 21–24 and a Gemini mid-stream error.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

import functions.stream_proxy.app as stream_app
from llm_gateway.adapters.address_policy import AddressPolicy
from llm_gateway.adapters.guarded_http import AddressGuard
from llm_gateway.adapters.upstream_http import AiohttpUpstream
from llm_gateway.domain.accounts import create_account
from llm_gateway.domain.registry import MAX_LLMS_PER_ACCOUNT
from llm_gateway.models.llm import EndpointUrl, LlmFormat, LlmStatus, StoredLlm, Timeouts, ValidationSummary
from llm_gateway.models.session import SessionTokenRequest
from llm_gateway_fake_provider import FakeProviderHandle, start_in_thread
from llm_gateway_fake_provider.config import DEFAULT_KEY
from llm_gateway_fake_provider.state import fingerprint
from tests.conftest import CANARY, LeakCollector
from tests.integration.conftest import AwsStack

DONE = b"data: [DONE]\n\n"
#: Pieces arrive one by one (an error in the very first read is still a JSON error, as it should be).
PACED = {"x-fake-chunks": "6", "x-fake-interval-ms": "30"}
FAST = {"connectMs": 500, "firstTokenMs": 2000, "idleMs": 2000, "totalMs": 20_000}


# -- servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderHandle]:
    handle = start_in_thread(port=0)
    yield handle
    handle.stop()


class AppServer:
    """The stream app under uvicorn on a loopback port, in its own thread and event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.serve(sockets=[self.sock]))
            transport = getattr(self.app.state.runtime.proxy, "transport", None)
            if isinstance(transport, AiohttpUpstream):
                loop.run_until_complete(transport.aclose())
        finally:
            loop.close()

    def start(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "stream app did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()


@dataclass
class Gateway:
    server: AppServer
    account: str
    fake: FakeProviderHandle
    leaks: LeakCollector
    aws: AwsStack

    @property
    def url(self) -> str:
        return self.server.url

    def configure(self, **overrides: str) -> None:
        """Every function's services rebuilt with these variables changed, and a new stream app."""
        self.aws.configure(**overrides)
        self.server.stop()
        self.server = AppServer(stream_app.create_app(self.aws.stream)).start()

    def llm(
        self,
        *,
        llm_format: LlmFormat = LlmFormat.OPENAI,
        model: str = "fake-model",
        urls: list[str] | None = None,
        headers: dict[str, str] | None = None,
        timeouts: dict[str, int] | None = None,
        secret: str = DEFAULT_KEY,
    ) -> str:
        """A ``valid`` LLM on the fake provider, stored directly (the validator is not under test)."""
        if urls is None:
            path = {
                LlmFormat.OPENAI: "/v1/chat/completions",
                LlmFormat.AZURE_OPENAI: "/openai/v1",
                LlmFormat.GEMINI: "",
                LlmFormat.ANTHROPIC: "",
                LlmFormat.GROQ_OPENAI: "/v1",
            }
            urls = [self.fake.url + path[llm_format]]
        llm_id = str(uuid.uuid4())
        secret_ref = self.aws.registry.credential_store.create(self.account, llm_id, secret)
        self.aws.registry.llm_repository.create(
            StoredLlm(
                id=llm_id,
                display_name="stream test",
                llm_format=llm_format,
                urls=[EndpointUrl(url=u) for u in urls],
                model_name=model,
                headers=headers or {},
                timeouts=Timeouts.model_validate(timeouts or FAST),
                status=LlmStatus.VALID,
                validation=ValidationSummary(compatible=True),
                version=1,
                account_id=self.account,
                secret_ref=secret_ref,
                created_at=datetime.now(UTC),
            ),
            limit=MAX_LLMS_PER_ACCOUNT,
        )
        return llm_id

    def token(self, llm_id: str, system_prompt: str = "You are terse.") -> str:
        request = SessionTokenRequest.model_validate(
            {"personaConfig": {"name": "p", "llmId": llm_id, "systemPrompt": system_prompt}}
        )
        return self.aws.tokens.session_service.mint(self.account, request).response.session_token

    def stream(
        self, token: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        started = time.monotonic()
        payload = body or {
            "model": "anything",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": True,
        }
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST",
                f"{self.url}/v1/chat/completions",
                json=payload,
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
            ) as response,
        ):
            first_byte: float | None = None
            parts = []
            for part in response.iter_raw():
                if first_byte is None:
                    first_byte = time.monotonic() - started
                parts.append(part)
        answer = Answer(
            response.status_code,
            dict(response.headers),
            b"".join(parts),
            time.monotonic() - started,
            first_byte,
        )
        self.leaks.add(f"stream answer {response.status_code}", answer.body.decode("utf-8", "replace"))
        self.leaks.add("stream answer headers", answer.headers)
        return answer

    def upstream_requests(self) -> list[dict[str, Any]]:
        return self.fake.state.requests()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    first_byte: float | None

    def events(self) -> list[bytes]:
        assert self.headers["content-type"].startswith("text/event-stream"), self.headers
        assert self.body.endswith(b"\n\n"), self.body[-200:]
        return self.body[:-2].split(b"\n\n")

    def errors(self) -> list[dict[str, Any]]:
        found = []
        for event in self.events():
            if event.startswith(b"data: {"):
                payload = json.loads(event[6:])
                if "error" in payload:
                    found.append(payload["error"])
        return found

    def json_error(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/json", (self.headers, self.body[:200])
        assert b"data:" not in self.body, "no partial stream before a JSON error"
        body: dict[str, Any] = json.loads(self.body)
        return body["error"]

    def text(self) -> str:
        out = []
        for event in self.events():
            if event.startswith(b"data: {"):
                for choice in json.loads(event[6:]).get("choices", []):
                    out.append(choice["delta"].get("content") or "")
        return "".join(out)


@pytest.fixture
def gateway(aws: AwsStack, fake: FakeProviderHandle, leak_collector: LeakCollector) -> Iterator[Gateway]:
    aws.configure(PRIVATE_ENDPOINT_ORIGINS=fake.url)  # the fake provider lives on loopback
    fake.state.reset()
    account = create_account(aws.registry.account_repository, "streamer").account_id
    gateway = Gateway(
        AppServer(stream_app.create_app(aws.stream)).start(), account, fake, leak_collector, aws
    )
    try:
        yield gateway
    finally:
        gateway.server.stop()


def assert_final_error(answer: Answer, code: str) -> None:
    """After the first byte: exactly one error event, last, and never [DONE]."""
    assert answer.status == 200
    assert [e["code"] for e in answer.errors()] == [code], answer.body[-600:]
    assert answer.events()[-1].startswith(b'data: {"error"')
    assert DONE not in answer.body


def faults(spec: str, **extra: str) -> dict[str, str]:
    return {"x-fake-fault": spec, **extra}


def wait_for(predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(0.01)
    return time.monotonic() - started


# -- every healthy stream ends with [DONE] ---------------------------------------------------------


@pytest.mark.parametrize("llm_format", list(LlmFormat))
def test_each_spec_streams_to_done_with_request_id_and_server_timing(
    gateway: Gateway, llm_format: LlmFormat
) -> None:
    model = {
        LlmFormat.OPENAI: "fake-model",
        LlmFormat.AZURE_OPENAI: "fake-deployment",
        LlmFormat.GEMINI: "gemini-2.5-flash",
        LlmFormat.ANTHROPIC: "fake-claude",
        LlmFormat.GROQ_OPENAI: "fake-model",
    }
    token = gateway.token(gateway.llm(llm_format=llm_format, model=model[llm_format]))
    answer = gateway.stream(token, headers={"x-request-id": "req-123"})
    assert answer.status == 200
    assert answer.events()[-1] == b"data: [DONE]" and answer.body.count(DONE) == 1
    assert answer.errors() == []
    assert answer.text()
    assert answer.headers["x-request-id"] == "req-123"
    assert "gateway;dur=" in answer.headers["server-timing"]
    assert "upstream-ttfb;dur=" in answer.headers["server-timing"]
    assert len(gateway.upstream_requests()) == 1


def test_a_request_id_that_is_not_a_plain_id_is_replaced_by_ours(gateway: Gateway) -> None:
    """It is logged and filed in the request log: no free text (a prompt, a key) gets in that way."""
    token = gateway.token(gateway.llm())
    answer = gateway.stream(token, headers={"x-request-id": "tell me a secret sk-123"})
    assert answer.status == 200
    assert str(uuid.UUID(answer.headers["x-request-id"])) == answer.headers["x-request-id"]


# -- SECURITY 21: 429 / 503 before the first byte ----------------------------------------------------


def test_429_is_retried_honouring_retry_after_then_one_clean_json_error(gateway: Gateway) -> None:
    token = gateway.token(gateway.llm(headers=faults("status-429")))
    answer = gateway.stream(token)
    assert answer.status == 429
    error = answer.json_error()
    assert error["code"] == "upstream_rate_limited"
    assert answer.headers["retry-after"] == "1"
    seen = gateway.upstream_requests()
    assert len(seen) == 3, "at most N attempts"
    gaps = [b["at"] - a["at"] for a, b in zip(seen, seen[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), f"Retry-After: 1 honoured between attempts: {gaps}"


def test_503_twice_then_a_stream_the_client_never_sees_failing(gateway: Gateway) -> None:
    headers = faults("status-503", **{"x-fake-fault-times": "2", "x-fake-scenario": str(uuid.uuid4())})
    token = gateway.token(gateway.llm(headers=headers))
    answer = gateway.stream(token)
    assert answer.status == 200
    assert answer.events()[-1] == b"data: [DONE]" and answer.errors() == []
    seen = gateway.upstream_requests()
    assert len(seen) == 3
    gaps = [b["at"] - a["at"] for a, b in zip(seen, seen[1:], strict=False)]
    assert all(gap <= 1.5 for gap in gaps), f"jittered backoff stays short: {gaps}"


def test_503_every_time_is_one_502_json_error_with_no_partial_body(gateway: Gateway) -> None:
    token = gateway.token(gateway.llm(headers=faults("status-503")))
    answer = gateway.stream(token)
    assert answer.status == 502
    assert answer.json_error()["code"] == "upstream_server_error"
    assert len(gateway.upstream_requests()) == 3
    assert "x-request-id" in answer.headers


def test_with_two_urls_the_second_is_tried_next(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead_origin = f"http://127.0.0.1:{closed.getsockname()[1]}"
        dead = f"{dead_origin}/v1/chat/completions"
    gateway.configure(PRIVATE_ENDPOINT_ORIGINS=f"{gateway.fake.url},{dead_origin}")
    token = gateway.token(gateway.llm(urls=[dead, gateway.fake.url + "/v1/chat/completions"]))
    answer = gateway.stream(token)
    assert answer.status == 200 and answer.events()[-1] == b"data: [DONE]"
    assert len(gateway.upstream_requests()) == 1
    assert answer.elapsed < 2.0, "no backoff before moving to the other URL"


# -- SECURITY 22: reset after the first byte ---------------------------------------------------------


@pytest.mark.parametrize("llm_format", [LlmFormat.OPENAI, LlmFormat.GEMINI])
def test_reset_after_first_byte_is_one_upstream_call_and_a_final_error_event(
    gateway: Gateway, llm_format: LlmFormat
) -> None:
    model = "gemini-2.5-flash" if llm_format is LlmFormat.GEMINI else "fake-model"
    llm = gateway.llm(llm_format=llm_format, model=model, headers=faults("reset:2", **PACED))
    answer = gateway.stream(gateway.token(llm))
    assert_final_error(answer, "upstream_server_error")
    assert answer.text(), "the chunks before the reset were relayed"
    assert len(gateway.upstream_requests()) == 1, "never retried after the first byte"


# -- SECURITY 23: slow upstreams --------------------------------------------------------------------


def test_stall_after_headers_and_first_chunks_errors_within_idle_plus_epsilon(gateway: Gateway) -> None:
    timeouts = {**FAST, "idleMs": 500}
    llm = gateway.llm(headers=faults("stall:2"), timeouts=timeouts)
    answer = gateway.stream(gateway.token(llm))
    assert_final_error(answer, "upstream_timeout")
    assert answer.first_byte is not None
    # Measured at the client, whose first byte may lag the gateway's last upstream data a little.
    assert 0.4 <= answer.elapsed - answer.first_byte < 0.5 + 2.0


def test_stall_before_any_event_is_a_504_within_first_token_plus_epsilon(gateway: Gateway) -> None:
    timeouts = {**FAST, "firstTokenMs": 500}
    answer = gateway.stream(gateway.token(gateway.llm(headers=faults("stall:0"), timeouts=timeouts)))
    assert answer.status == 504
    assert answer.json_error()["code"] == "upstream_timeout"
    assert 0.5 <= answer.elapsed < 0.5 + 2.0
    assert len(gateway.upstream_requests()) == 1, "a timeout is not retried"


def test_drip_after_the_first_event_ends_at_the_total_deadline(gateway: Gateway) -> None:
    timeouts = {"connectMs": 500, "firstTokenMs": 1000, "idleMs": 500, "totalMs": 1500}
    llm = gateway.llm(headers=faults("drip:2", **{"x-fake-chunks": "500"}), timeouts=timeouts)
    answer = gateway.stream(gateway.token(llm))
    assert_final_error(answer, "gateway_deadline")
    assert 1.5 <= answer.elapsed < 1.5 + 2.0


def test_one_byte_per_second_ends_at_the_total_deadline(gateway: Gateway) -> None:
    """At 1 B/s no event completes before the deadline: the client gets a 504 before any byte."""
    timeouts = {"connectMs": 500, "firstTokenMs": 5000, "idleMs": 5000, "totalMs": 1000}
    answer = gateway.stream(gateway.token(gateway.llm(headers=faults("drip:1000"), timeouts=timeouts)))
    assert answer.status == 504 and answer.json_error()["code"] == "upstream_timeout"
    assert 1.0 <= answer.elapsed < 1.0 + 2.0


def test_near_lambda_deadline_gets_a_terminal_event_before_the_kill(gateway: Gateway) -> None:
    timeouts = {"connectMs": 500, "firstTokenMs": 20_000, "idleMs": 20_000, "totalMs": 300_000}
    llm = gateway.llm(headers=faults("stall:2"), timeouts=timeouts)
    kill_at = time.time() + 3.0 + 1.0  # the safety margin is 3 s: one second of answer is left
    context = json.dumps({"deadline": int(kill_at * 1000), "request_id": "r", "invoked_function_arn": "a"})
    answer = gateway.stream(gateway.token(llm), headers={"x-amzn-lambda-context": context})
    assert_final_error(answer, "gateway_deadline")
    assert time.time() < kill_at - 1.0, "the terminal event came well before the kill"


# -- SECURITY 24: client disconnect --------------------------------------------------------------------


def _connections(gateway: Gateway) -> dict[str, Any]:
    return gateway.fake.state.connections()


def test_client_disconnect_mid_stream_aborts_the_upstream_within_a_second(gateway: Gateway) -> None:
    llm = gateway.llm(headers={"x-fake-chunks": "2000", "x-fake-interval-ms": "20"})
    token = gateway.token(llm)
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "go"}], "stream": True},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status_code == 200
            received = b""
            for part in response.iter_raw():
                received += part
                if received.count(b"\n\n") >= 3:
                    break
            assert _connections(gateway)["aborted"] == 0, "still streaming while the client is there"
        # Leaving the block closes the connection mid-stream.
        gone = time.monotonic()
    wait_for(lambda: _connections(gateway)["aborted"] == 1, timeout=1.0)
    assert time.monotonic() - gone < 1.0
    assert _connections(gateway)["closed"] == 0


def test_client_disconnect_while_waiting_for_the_first_token_aborts_the_upstream(gateway: Gateway) -> None:
    llm = gateway.llm(headers=faults("stall:0"), timeouts={**FAST, "firstTokenMs": 20_000})
    token = gateway.token(llm)
    with httpx.Client(timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.post(
            f"{gateway.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "go"}], "stream": True},
            headers={"Authorization": f"Bearer {token}"},
        )
    wait_for(lambda: _connections(gateway)["aborted"] == 1, timeout=1.0)


# -- mid-stream errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("llm_format", [LlmFormat.GEMINI, LlmFormat.OPENAI])
def test_mid_stream_error_reaches_the_client_as_one_error_event(
    gateway: Gateway, llm_format: LlmFormat
) -> None:
    model = "gemini-2.5-flash" if llm_format is LlmFormat.GEMINI else "fake-model"
    llm = gateway.llm(llm_format=llm_format, model=model, headers=faults("mid-stream-error", **PACED))
    answer = gateway.stream(gateway.token(llm))
    assert_final_error(answer, "upstream_server_error")
    assert answer.text()
    assert b"internal error has occurred" not in answer.body and b"Sorry about that" not in answer.body
    assert len(gateway.upstream_requests()) == 1


# -- SECURITY 18: the body cannot pick the upstream ----------------------------------------------------


def test_body_fields_cannot_change_url_key_headers_or_model(gateway: Gateway) -> None:
    attacker = start_in_thread(port=0)
    try:
        token = gateway.token(gateway.llm(), system_prompt="SYSTEM FIRST")
        body = {
            "model": "gpt-attacker",
            "api_base": attacker.url + "/v1",
            "base_url": attacker.url + "/v1",
            "url": attacker.url + "/v1/chat/completions",
            "api_key": "sk-attacker",
            "headers": {"Authorization": "Bearer sk-attacker", "x-fake-fault": "status-500"},
            "extra_headers": {"x-fake-fault": "status-500"},
            "messages": [{"role": "user", "content": "hello"}],
            "stream": True,
        }
        answer = gateway.stream(token, body, headers={"x-fake-fault": "status-500", "api-key": "sk-attacker"})
        assert answer.status == 200 and answer.events()[-1] == b"data: [DONE]"
        assert attacker.state.requests() == []
    finally:
        attacker.stop()
    (seen,) = gateway.upstream_requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["model"] == "fake-model"
    assert seen["headers"]["authorization"] == f"Bearer {fingerprint(DEFAULT_KEY)}"
    assert "x-fake-fault" not in seen["headers"] and "api-key" not in seen["headers"]
    forwarded = seen["body"]
    for field in ("api_base", "base_url", "url", "api_key", "headers", "extra_headers"):
        assert field not in forwarded
    assert forwarded["model"] == "fake-model"
    assert forwarded["messages"][0] == {"role": "system", "content": "SYSTEM FIRST"}


# -- SECURITY 5: the upstream's error body never reaches the stream client -------------------------------


@pytest.mark.parametrize("llm_format", list(LlmFormat))
def test_upstream_echoing_the_key_gives_only_our_code_and_message(
    gateway: Gateway, llm_format: LlmFormat
) -> None:
    model = {
        LlmFormat.OPENAI: "fake-model",
        LlmFormat.AZURE_OPENAI: "fake-deployment",
        LlmFormat.GEMINI: "gemini-2.5-flash",
        LlmFormat.ANTHROPIC: "fake-claude",
        LlmFormat.GROQ_OPENAI: "fake-model",
    }
    llm = gateway.llm(
        llm_format=llm_format, model=model[llm_format], headers=faults("echo-key-in-error"), secret=CANARY
    )
    answer = gateway.stream(gateway.token(llm))
    assert answer.status == 502
    error = answer.json_error()
    assert error == {
        "code": "upstream_unauthorized",
        "message": "The LLM endpoint rejected the stored credentials.",
    }
    assert CANARY not in answer.body.decode() and CANARY not in json.dumps(answer.headers)
    assert CANARY[-12:] not in answer.body.decode()


# -- SECURITY 6: a host that resolves private at proxy time is refused --------------------------------


def test_host_resolving_private_at_proxy_time_is_refused_before_connecting(gateway: Gateway) -> None:
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["10.0.0.7"]  # registered while public; now it answers a private address

    llm = gateway.llm(urls=["https://llm.customer.example/v1/chat/completions"])
    token = gateway.token(llm)
    proxy = gateway.aws.stream.stream_proxy
    proxy.transport = AiohttpUpstream(AddressGuard(AddressPolicy(allow_private=False), resolver))
    gateway.server.app.state.runtime.proxy = proxy
    answer = gateway.stream(token)
    assert answer.status == 502
    assert answer.json_error()["code"] == "endpoint_blocked"
    assert asked == [("llm.customer.example", 443)], "resolved once, never retried"


# -- one structured log line per stream request (issue 12) ------------------------------------------


def stream_log_lines(
    capsys: pytest.CaptureFixture[str], request_id: str, seen: list[str]
) -> list[dict[str, Any]]:
    """The app's "stream request" records for this request id (written after the stream ended)."""
    seen.append(capsys.readouterr().out)
    records = []
    for line in "".join(seen).splitlines():
        if line.startswith("{") and '"stream request"' in line:
            record = json.loads(line)
            if record["stream"]["request_id"] == request_id:
                records.append(record)
    return records


def wait_for_log(capsys: pytest.CaptureFixture[str], request_id: str) -> tuple[dict[str, Any], str]:
    seen: list[str] = []
    wait_for(lambda: stream_log_lines(capsys, request_id, seen), timeout=5)
    records = stream_log_lines(capsys, request_id, seen)
    assert len(records) == 1, f"exactly one line per request, got {records}"
    output = "".join(seen)
    print(output, end="")  # keep it for the leak scan of this test's output
    return records[0]["stream"], output


def test_a_stream_writes_one_log_line_with_ids_outcome_and_timings_but_no_content(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_id = gateway.llm(headers=PACED)
    token = gateway.token(llm_id)
    answer = gateway.stream(token, headers={"x-request-id": "req-log-ok"})
    assert answer.status == 200 and DONE in answer.body
    record, output = wait_for_log(capsys, "req-log-ok")
    assert record["account_id"] == gateway.account
    assert record["llm_id"] == llm_id
    assert record["outcome"] == "ok"
    assert record["upstream_status"] == 200
    assert record["chunks"] >= 2
    assert 0 < record["upstream_ttfb_ms"] <= record["ttft_ms"] <= record["total_ms"]
    assert answer.text() and answer.text() not in output, "the answer's content is never logged"
    assert "hello" not in json.dumps(record), "nor the prompt"
    assert token not in output and DEFAULT_KEY not in output, "nor the session token or the LLM's key"


def test_a_failed_stream_logs_its_code_and_the_upstream_status(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    token = gateway.token(gateway.llm(headers=faults("status-503")))
    answer = gateway.stream(token, headers={"x-request-id": "req-log-503"})
    assert answer.status == 502
    record, _ = wait_for_log(capsys, "req-log-503")
    assert record["outcome"] == "upstream_server_error"
    assert record["upstream_status"] == 503
    assert record["chunks"] == 0 and record["ttft_ms"] is None


def test_a_refused_token_is_logged_too(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    answer = gateway.stream("not-a-token", headers={"x-request-id": "req-log-401"})
    assert answer.status == 401
    record, output = wait_for_log(capsys, "req-log-401")
    assert record["outcome"] == answer.json_error()["code"]
    assert record["account_id"] is None and record["upstream_status"] is None
    assert "not-a-token" not in output
