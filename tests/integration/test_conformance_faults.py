"""``llm-gateway check`` against the fake provider: every spec passes, every fault is caught.

A fault is selected by the model (or Azure deployment) name ``fake-fault-<name>[-<arg>]``, so the
CLI sends exactly what it would send to a real endpoint. Time-based faults run with
``--timeout 1`` so the suite stays fast.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from llm_gateway_cli.main import main
from llm_gateway_fake_provider import FAULT_NAMES, FakeProviderHandle, start_in_thread
from tests.conftest import CANARY, LeakCollector

SPECS = ("openai", "azure_classic", "azure_v1", "gemini", "anthropic", "groq_openai")
KEY = "fake-key"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderHandle]:
    handle = start_in_thread()
    yield handle
    handle.stop()


def spec_args(base: str, spec: str, model: str) -> list[str]:
    return {
        "openai": ["--format", "openai", "--url", f"{base}/v1", "--model", model],
        "azure_classic": [
            "--format", "azure_openai", "--url", base, "--model", model,
            "--deployment", model, "--api-version", "2024-10-21",
        ],
        "azure_v1": ["--format", "azure_openai", "--url", f"{base}/openai/v1", "--model", model],
        "gemini": ["--format", "gemini", "--url", base, "--model", model],
        "anthropic": ["--format", "anthropic", "--url", base, "--model", model],
        "groq_openai": ["--format", "groq_openai", "--url", f"{base}/v1", "--model", model],
    }[spec]  # fmt: skip


def run_check(
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    *,
    key: str = KEY,
    private: bool = True,
    timeout: str = "1",
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    flags = ["--api-key", key, "--json", "--timeout", timeout] + (["--allow-private"] if private else [])
    code = main(["check", *flags, *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def failed(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["status"] == "fail"]


def assert_well_formed(report: dict[str, Any]) -> None:
    for check in report["checks"]:
        assert check["status"] in ("pass", "warn", "fail", "skip")
        if check["status"] == "fail":
            assert check["hint"], check
        if check.get("evidence"):
            assert len(check["evidence"].encode()) <= 512
    assert report["compatible"] is (not failed(report))


@pytest.mark.parametrize("spec", SPECS)
def test_compatible_endpoint_of_each_spec_passes(
    fake: FakeProviderHandle, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = "fake-deployment" if spec.startswith("azure") else "fake-model"
    code, report = run_check(capsys, spec_args(fake.url, spec, model))
    assert code == 0, failed(report)
    assert report["compatible"] is True and report["errorCode"] is None
    assert not failed(report)
    assert report["timings"]["ttfbMs"] is not None and report["timings"]["ttftMs"] is not None
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["auth_probe"]["status"] == "pass"  # the fake rejects a wrong key
    assert "key=" not in report["endpoint"]
    assert_well_formed(report)


# fault -> (category of the failing check, errorCode); spec-specific entries override.
EXPECTED: dict[str, tuple[str, str]] = {
    "wrong-content-type": ("streaming", "upstream_protocol_error"),
    "no-content-type": ("streaming", "upstream_protocol_error"),
    "ndjson": ("streaming", "upstream_protocol_error"),
    "no-done": ("format", "upstream_protocol_error"),
    "invalid-json": ("format", "upstream_protocol_error"),
    "mid-stream-error": ("format", "upstream_server_error"),
    "stall-1": ("network", "upstream_timeout"),
    "reset-2": ("network", "upstream_protocol_error"),
    "reset-0": ("network", "upstream_unreachable"),
    "drip": ("network", "upstream_timeout"),
    "delay-first-byte-3000": ("network", "upstream_timeout"),
    "redirect": ("endpoint", "upstream_protocol_error"),
    "echo-key-in-error": ("auth", "upstream_unauthorized"),
    "status-400": ("request", "upstream_bad_request"),
    "status-401": ("auth", "upstream_unauthorized"),
    "status-403": ("auth", "upstream_unauthorized"),
    "status-404": ("model", "upstream_model_not_found"),
    "status-429": ("request", "upstream_rate_limited"),
    "status-500": ("endpoint", "upstream_server_error"),
    "status-503": ("endpoint", "upstream_server_error"),
    "context-length": ("request", "upstream_context_length_exceeded"),
    "content-filter": ("request", "upstream_content_filtered"),
}
GEMINI_EXPECTED = {"mid-stream-error": ("streaming", "upstream_server_error")}
#: Anthropic's in-band error is an ``event: error`` (an outcome check, like Gemini's).
SPEC_EXPECTED = {"gemini": GEMINI_EXPECTED, "anthropic": GEMINI_EXPECTED}
#: Faults about how the answer is delivered, not how fast: they need more than the 1 s timeout.
DELIVERY_FAULTS: dict[str, tuple[str, str]] = {"buffered-2500": ("streaming", "upstream_protocol_error")}
#: Gemini streams have no terminator, so "no [DONE]" is just a normal Gemini stream.
#: Anthropic has no prompt-filter refusal status (a refusal is a ``stop_reason`` of a 200 stream).
NOT_APPLICABLE = {("gemini", "no-done"), ("gemini", "content-filter"), ("anthropic", "content-filter")}


def test_every_fault_of_the_fake_is_covered() -> None:
    missing = [
        name
        for name in FAULT_NAMES
        if name not in ("accept-any-key", "no-prefill")  # warnings: tested on their own
        and not any(k == name or k.startswith(f"{name}-") for k in EXPECTED | DELIVERY_FAULTS)
    ]
    assert not missing, f"faults without a conformance test: {missing}"


@pytest.mark.parametrize("spec", SPECS)
def test_the_continuation_check_sees_prefill_continued_or_refused(
    fake: FakeProviderHandle, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = "fake-deployment" if spec.startswith("azure") else "fake-model"
    _, report = run_check(capsys, spec_args(fake.url, spec, model))
    continuation = {c["id"]: c for c in report["checks"]}["continuation"]
    assert continuation["status"] == "pass" and "'6, 7" in continuation["message"]
    refusing = "fake-fault-no-prefill"
    code, report = run_check(capsys, spec_args(fake.url, spec, refusing))
    assert code == 0 and report["compatible"] is True, "never a failure"
    continuation = {c["id"]: c for c in report["checks"]}["continuation"]
    assert (
        continuation["status"] == "warn" and "refused a prefilled assistant turn" in continuation["message"]
    )


@pytest.mark.parametrize(("spec", "fault"), [(spec, fault) for spec in SPECS for fault in DELIVERY_FAULTS])
def test_an_answer_held_back_and_sent_at_once_is_not_a_stream(
    fake: FakeProviderHandle, spec: str, fault: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_check(capsys, spec_args(fake.url, spec, f"fake-fault-{fault}"), timeout="10")
    failures = failed(report)
    assert code == 1 and [(f["id"], f["category"]) for f in failures] == [("incremental", "streaming")]
    assert report["errorCode"] == DELIVERY_FAULTS[fault][1]
    assert "buffering" in failures[0]["hint"]
    assert_well_formed(report)


@pytest.mark.parametrize(
    ("spec", "fault"),
    [(spec, fault) for spec in SPECS for fault in sorted(EXPECTED) if (spec, fault) not in NOT_APPLICABLE],
)
def test_fault_is_not_compatible_with_the_right_category(
    fake: FakeProviderHandle, spec: str, fault: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_check(capsys, spec_args(fake.url, spec, f"fake-fault-{fault}"))
    category, error_code = SPEC_EXPECTED.get(spec, {}).get(fault, EXPECTED[fault])
    failures = failed(report)
    assert code == 1 and report["compatible"] is False
    assert failures, report
    assert failures[0]["category"] == category, failures
    assert report["errorCode"] == error_code, failures
    assert all(f["hint"] for f in failures)
    assert_well_formed(report)


def test_gemini_without_done_is_compatible(
    fake: FakeProviderHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_check(capsys, spec_args(fake.url, "gemini", "fake-fault-no-done"))
    assert code == 0 and report["compatible"] is True


@pytest.mark.parametrize("spec", SPECS)
def test_accepting_any_key_is_only_a_warning(
    fake: FakeProviderHandle, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_check(capsys, spec_args(fake.url, spec, "fake-fault-accept-any-key"))
    assert code == 0 and report["compatible"] is True
    warned = [c for c in report["checks"] if c["status"] == "warn"]
    assert [(c["id"], c["category"]) for c in warned] == [("auth_probe", "auth")]
    assert warned[0]["hint"]


def test_echoed_key_is_redacted_everywhere(
    fake: FakeProviderHandle, capsys: pytest.CaptureFixture[str], leak_collector: LeakCollector
) -> None:
    code, report = run_check(
        capsys, spec_args(fake.url, "openai", "fake-fault-echo-key-in-error"), key=CANARY
    )
    leak_collector.add("check report (echoed key)", report)
    assert code == 1
    assert CANARY not in json.dumps(report)
    status = next(c for c in report["checks"] if c["id"] == "http_status")
    assert status["category"] == "auth" and status["evidence"]


def test_redirect_fails_with_a_hint_and_is_not_followed(
    fake: FakeProviderHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_check(capsys, spec_args(fake.url, "openai", "fake-fault-redirect"))
    assert code == 1
    status = next(c for c in report["checks"] if c["id"] == "http_status")
    assert status["status"] == "fail" and "redirect" in status["message"] and status["hint"]
    followed = [r for r in fake.state.requests() if r["path"].startswith("/_fake/redirect-target")]
    assert not followed


def test_loopback_on_the_https_port_is_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_check(
        capsys, ["--format", "gemini", "--url", "https://127.0.0.1", "--model", "m"], private=False
    )
    address = next(c for c in report["checks"] if c["id"] == "address")
    assert code == 1 and address["status"] == "fail" and "loopback" in address["message"]
    assert report["errorCode"] == "endpoint_blocked"
    assert next(c for c in report["checks"] if c["id"] == "connection")["status"] == "skip"


def test_blocked_address_fails_without_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --allow-private a loopback endpoint is refused before any TCP connect."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        code, report = run_check(
            capsys,
            ["--format", "openai", "--url", f"https://127.0.0.1:{port}/v1", "--model", "m"],
            private=False,
        )
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    assert code == 1
    first = failed(report)[0]
    assert (first["id"], first["category"]) == ("address", "network")
    assert report["errorCode"] == "endpoint_blocked"
    assert first["hint"]
    assert "port" in first["message"] or "routable" in first["message"]
    skipped = [c["id"] for c in report["checks"] if c["status"] == "skip"]
    assert {"connection", "http_status", "auth_probe"} <= set(skipped)


def test_subprocess_json_and_human_output(fake: FakeProviderHandle) -> None:
    """The installed entry point: --json prints only the report; the table shows hints; exit codes."""
    args = [sys.executable, "-m", "llm_gateway_cli.main", "check", "--allow-private", "--api-key", KEY]
    ok = subprocess.run(
        [*args, "--json", *spec_args(fake.url, "gemini", "fake-model")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["compatible"] is True
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"} | {"NO_COLOR": "1"}
    bad = subprocess.run(
        [*args, *spec_args(fake.url, "openai", "fake-fault-no-done")],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert bad.returncode == 1, bad.stderr
    assert "FAIL" in bad.stdout and "hint:" in bad.stdout and "NOT COMPATIBLE" in bad.stdout
    assert "\x1b[" not in bad.stdout


def test_an_overloaded_anthropic_endpoint_is_a_server_error_with_a_retry_hint(
    fake: FakeProviderHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_check(capsys, spec_args(fake.url, "anthropic", "fake-fault-status-529"))
    [status] = [c for c in failed(report) if c["id"] == "http_status"]
    assert code == 1 and report["errorCode"] == "upstream_server_error"
    assert "overloaded_error" in status["message"] and "overloaded" in status["hint"]


@pytest.mark.parametrize("spec", ["openai", "groq_openai", "gemini", "anthropic"])
def test_check_of_a_thinking_model_reports_separable_thoughts_and_ttft_to_the_answer(
    fake: FakeProviderHandle, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        *spec_args(fake.url, spec, "fake-model"),
        "--reasoning-effort",
        "low",
        "--reasoning-format",
        "parsed",
    ]
    code, report = run_check(capsys, args)
    by_id = {c["id"]: c for c in report["checks"]}
    assert code == 0, failed(report)
    assert by_id["thoughts"]["status"] == "pass" and "separable" in by_id["thoughts"]["message"]
    assert report["timings"]["firstThoughtMs"] <= report["timings"]["ttftMs"]
    assert report["details"]["probe"]["maxTokens"] == 2048
    sent = fake.state.requests()[-2]["body"]  # the probe (the last one is the wrong-key probe)
    assert sent.get("reasoning_effort") == "low" or "thinking" in sent or "thinkingConfig" in json.dumps(sent)


@pytest.mark.parametrize("spec", ["openai", "groq_openai", "gemini", "anthropic"])
def test_a_model_that_refuses_the_reasoning_parameter_fails_with_a_hint_naming_it(
    fake: FakeProviderHandle, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*spec_args(fake.url, spec, "fake-no-reasoning"), "--reasoning-effort", "medium"]
    code, report = run_check(capsys, args)
    first = failed(report)[0]
    assert code == 1 and (first["id"], first["category"]) == ("http_status", "request")
    assert report["errorCode"] == "upstream_bad_request"
    assert "reasoningEffort medium" in first["hint"] and "unset" in first["hint"]
    without, _ = run_check(capsys, spec_args(fake.url, spec, "fake-no-reasoning"))
    assert without == 0, "the same model is compatible without a reasoning effort"
