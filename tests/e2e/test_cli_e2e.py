"""The client commands (``llms``, ``chat``) as a user runs them, against `llm-gateway dev`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.conftest import CANARY, LeakCollector, plain_env
from tests.e2e.conftest import RunningStack
from tests.e2e.test_session_tokens_e2e import set_llm_status


@pytest.fixture
def cli(stack: RunningStack, leak_collector: LeakCollector) -> Any:
    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "llm_gateway_cli.main", *args, "--state-file", str(stack.state_file)],
            capture_output=True, text=True, timeout=120, input=stdin, env=_env() | (env or {}),
        )  # fmt: skip
        leak_collector.add(f"cli {args[:2]}", done.stdout + done.stderr)
        return done

    return run


def fake_url(stack: RunningStack) -> str:
    assert stack.fake_provider_url, "the e2e stack runs the fake provider"
    return f"{stack.fake_provider_url}/v1/chat/completions"


def test_llms_list_shows_the_built_ins_and_the_demo_llms(cli: Any, stack: RunningStack) -> None:
    listed = cli("llms", "list", "--include-defaults", "--per-page", "100")
    assert listed.returncode == 0, listed.stderr
    header = listed.stdout.splitlines()[0].split()
    assert header == ["ID", "NAME", "FORMAT", "STATUS", "MODEL"]
    for llm_id in ["ANAM_GPT_4O_MINI_V1", *stack.llms.values()]:
        assert llm_id in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if stack.llms["gemini"] in line)
    assert row.split()[-3:] == ["gemini", "valid", "gemini-2.5-flash"]
    as_json = json.loads(cli("llms", "list", "--json").stdout)
    assert {llm["id"] for llm in as_json["data"]} >= set(stack.llms.values())
    assert "ANAM_GPT_4O_MINI_V1" not in {llm["id"] for llm in as_json["data"]}


def test_create_wait_validate_update_delete(cli: Any, stack: RunningStack, api: httpx.Client) -> None:
    created = cli(
        "llms", "create", "--format", "openai", "--name", "cli e2e", "--url", fake_url(stack),
        "--model", "fake-model", "--api-key", "fake-key", "--header", "X-Team: e2e", "--wait",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "validating" in created.stderr and "valid" in created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    llm_id = fields["id"].strip()
    assert fields["status"].strip().startswith("valid")
    assert "fake-key" not in created.stdout + created.stderr
    assert api.get(f"/v1/llms/{llm_id}").json()["headers"] == {"X-Team": "e2e"}

    validated = cli("llms", "validate", llm_id)  # queues a run, waits for its report, prints it
    assert validated.returncode == 0, validated.stderr
    assert "queued" in validated.stderr or "running" in validated.stderr
    assert "done_terminator" in validated.stdout and "Verdict: COMPATIBLE" in validated.stdout
    report = json.loads(cli("llms", "validate", llm_id, "--json").stdout)
    assert report["compatible"] is True and report["llmFormat"] == "openai"
    assert report["validationId"].startswith("val_") and report["pending"] is None
    queued = cli("llms", "validate", llm_id, "--no-wait", "--json")
    assert queued.returncode == 0, queued.stderr
    run = json.loads(queued.stdout)
    # Within ValidateMinIntervalSeconds of a finished run, a new request is answered with that run.
    assert run["status"] == "done" and run["validationId"] == report["validationId"]
    deadline = time.monotonic() + 60
    while (latest := api.get(f"/v1/llms/{llm_id}/validation").json()).get("validationId") != run[
        "validationId"
    ]:
        assert time.monotonic() < deadline, latest
        time.sleep(0.1)

    got = json.loads(cli("llms", "get", llm_id, "--json").stdout)
    stale = cli("llms", "update", llm_id, "--name", "renamed", "--if-match", str(got["version"] + 5))
    assert stale.returncode == 1 and "version_mismatch" in stale.stderr
    updated = cli("llms", "update", llm_id, "--name", "renamed", "--if-match", str(got["version"]))
    assert updated.returncode == 0, updated.stderr
    assert "renamed" in updated.stdout

    deleted = cli("llms", "delete", llm_id)
    assert deleted.returncode == 0, deleted.stderr
    assert llm_id in deleted.stdout and "renamed" in deleted.stdout
    gone = cli("llms", "get", llm_id)
    assert gone.returncode == 1 and "llm_not_found" in gone.stderr


def test_create_wait_on_a_faulty_endpoint_exits_1_with_the_report(cli: Any, stack: RunningStack) -> None:
    created = cli(
        "llms", "create", "--format", "openai", "--name", "cli faulty", "--url", fake_url(stack),
        "--model", "fake-fault-no-done", "--api-key", "fake-key", "--wait", "--json",
    )  # fmt: skip
    assert created.returncode == 1, created.stderr
    llm = json.loads(created.stdout)
    assert llm["status"] == "invalid"
    assert cli("llms", "delete", llm["id"]).returncode == 0


def test_llms_test_with_a_faulty_model_shows_the_failing_check_and_a_hint(
    cli: Any, stack: RunningStack
) -> None:
    tested = cli(
        "llms", "test", "--format", "openai", "--name", "dry run", "--url", fake_url(stack),
        "--model", "fake-fault-no-done", "--api-key", "fake-key",
    )  # fmt: skip
    assert tested.returncode == 1, tested.stderr
    failing = [line for line in tested.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1 and "done_terminator" in failing[0] and "format" in failing[0]
    assert "hint: " in tested.stdout and "NOT COMPATIBLE" in tested.stdout
    assert "fake-key" not in tested.stdout + tested.stderr
    report = json.loads(
        cli(
            "llms", "test", "--format", "openai", "--name", "dry run", "--url", fake_url(stack),
            "--model", "fake-fault-no-done", "--json",
            env={"LLM_API_KEY": "fake-key"},
        ).stdout
    )  # fmt: skip
    assert [c["id"] for c in report["checks"] if c["status"] == "fail"] == ["done_terminator"]


def test_the_gateway_refusing_exits_1_with_its_error_code(cli: Any, stack: RunningStack) -> None:
    invalid = cli(
        "llms", "create", "--format", "openai", "--name", "x", "--url", "ftp://nowhere.example",
        "--model", "m", "--api-key", CANARY,
    )  # fmt: skip
    assert invalid.returncode == 1
    assert "validation_error" in invalid.stderr and "urls" in invalid.stderr
    builtin = cli("llms", "delete", "ANAM_GPT_4O_MINI_V1")
    assert builtin.returncode == 1 and "builtin_read_only" in builtin.stderr
    wrong_key = cli("llms", "list", "--gateway-api-key", "llmgw_not_a_key")
    assert wrong_key.returncode == 1 and "401" in wrong_key.stderr


def test_chat_single_turn_streams_the_answer_and_the_timings(cli: Any, stack: RunningStack) -> None:
    answered = cli("chat", "--llm", stack.llms["openai"], "--message", "hi")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip()
    assert "time to first token" in answered.stderr and "total" in answered.stderr


@pytest.mark.parametrize("spec", ["openai", "azure_openai", "gemini"])
def test_chat_against_every_demo_format_keeps_the_history(cli: Any, stack: RunningStack, spec: str) -> None:
    answered = cli(
        "chat", "--llm", stack.llms[spec], "--system-prompt", "Be brief.",
        stdin="hello\n\nand then?\nquit\nnot sent\n",
    )  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    assert len([line for line in answered.stdout.splitlines() if line.strip()]) == 2
    assert answered.stderr.count("time to first token") == 2


def test_chat_shows_the_gateway_errors(cli: Any, stack: RunningStack, api: httpx.Client) -> None:
    refused = cli("chat", "--llm", "CUSTOMER_CLIENT_V1", "--message", "hi")
    assert refused.returncode == 1 and "client_side_llm" in refused.stderr
    missing = cli("chat", "--llm", "no-such-llm", "--message", "hi")
    assert missing.returncode == 1 and "llm_not_found" in missing.stderr

    # An LLM whose connection resets after a few chunks, marked valid so a session can use it.
    body = {
        "displayName": "breaks mid-stream", "llmFormat": "openai", "modelName": "fake-fault-reset-4",
        "urls": [{"url": fake_url(stack)}], "secret": "fake-key",
    }  # fmt: skip
    llm_id = api.post("/v1/llms", json=body).json()["id"]
    deadline = time.monotonic() + 20
    while api.get(f"/v1/llms/{llm_id}").json()["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    set_llm_status(stack, stack.account_id, llm_id, "valid", "forced valid for the test")
    broken = cli("chat", "--llm", llm_id, "--message", "hi")
    assert broken.returncode == 1
    assert broken.stdout.strip(), "the words before the break were printed"
    assert "error: upstream_" in broken.stderr, broken.stderr
    assert api.delete(f"/v1/llms/{llm_id}").status_code == 204


def _env() -> dict[str, str]:
    """A plain shell's environment: only --state-file picks the gateway."""
    return plain_env()
