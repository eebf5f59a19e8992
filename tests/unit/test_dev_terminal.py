"""What the developer's terminal shows: request log lines, the check table, no stray EMF; and the
built-ins' isDefault."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.catalog import builtin_llms
from llm_gateway.composition import StreamServices
from llm_gateway.settings import StreamSettings
from llm_gateway_cli.commands.check import render
from llm_gateway_cli.commands.dev import _print_banner
from llm_gateway_cli.invocation import cli_command
from llm_gateway_local.front_door import request_line
from tests.conftest import REPO, TEST_SETTINGS

LONG_URL = (
    "https://my-very-long-resource-name.openai.azure.com/openai/deployments/" + "d" * 60 + "/chat/completions"
)


def _scope(method: str, path: str, token: str | None = None) -> dict[str, Any]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return {"type": "http", "method": method, "path": path, "headers": headers}


def _token(sub: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"sub": sub}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln"


def test_a_management_request_line_names_status_code_account_and_duration() -> None:
    seen = {"started": time.monotonic(), "status": 404, "account": "acct_1",
            "tail": b'{"error": {"code": "llm_not_found", "message": "No LLM"}}'}  # fmt: skip
    line = request_line(_scope("GET", "/v1/llms/x"), seen)
    assert line.split()[1:6] == ["GET", "/v1/llms/x", "404", "llm_not_found", "acct_1"]
    assert line.endswith(" ms")


@pytest.mark.parametrize(
    ("tail", "extra", "outcome"),
    [
        (b'data: {"choices": []}\n\ndata: [DONE]\n\n', {}, "ok"),
        (b'data: {"choices": []}\n\ndata: {"error": {"code": "upstream_timeout", "message": "x"}}\n\n', {},
         "error upstream_timeout"),
        (b'data: {"choices": []}\n\n', {"disconnected": True}, "client disconnected"),
        (b'data: {"choices": []}\n\n', {}, "ended without [DONE]"),
    ],
)  # fmt: skip
def test_a_stream_line_has_ttft_and_outcome(tail: bytes, extra: dict[str, Any], outcome: str) -> None:
    started = time.monotonic() - 1.5
    seen = {"started": started, "status": 200, "streaming": True, "sse": True, "first_body": started + 0.2,
            "tail": tail} | extra  # fmt: skip
    line = request_line(_scope("POST", "/v1/chat/completions", _token("acct_9")), seen)
    assert " 200 acct_9 " in line
    assert " ttft 200 ms " in line
    assert line.endswith(" " + outcome)


def test_a_refused_stream_never_shows_the_account_of_an_unverified_token() -> None:
    seen = {"started": time.monotonic(), "status": 401, "streaming": True,
            "tail": b'{"error": {"code": "token_signature_invalid", "message": "x"}}'}  # fmt: skip
    line = request_line(_scope("POST", "/v1/chat/completions", _token("acct_forged")), seen)
    assert "acct_forged" not in line and "token_signature_invalid" in line


def test_the_check_table_never_breaks_a_url_inside() -> None:
    report = {
        "llmFormat": "azure_openai", "endpoint": LONG_URL, "compatible": False, "errorCode": "x",
        "timings": {}, "checks": [{"id": "http_status", "category": "endpoint", "status": "fail",
                                   "message": f"POST {LONG_URL} answered 404", "hint": f"Check {LONG_URL} again"}],
    }  # fmt: skip
    out = io.StringIO()
    render(report, out, color=False)
    lines = out.getvalue().splitlines()
    assert sum(LONG_URL in line for line in lines) == 3  # header, message and hint, each whole


def test_no_emf_is_printed_when_metrics_are_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    disabled = StreamSettings.from_environ(TEST_SETTINGS | {"POWERTOOLS_METRICS_DISABLED": "true"})
    StreamServices(disabled).stream_metrics.failed("token_malformed")
    assert capsys.readouterr().out == ""
    StreamServices(StreamSettings.from_environ(TEST_SETTINGS)).stream_metrics.failed("token_malformed")
    out = capsys.readouterr().out
    assert '"StreamErrors"' in out and '"LlmGateway"' in out


def test_is_default_marks_every_built_in() -> None:
    assert len(builtin_llms()) == 5
    assert all(b.to_llm().is_default for b in builtin_llms().values())


def test_no_demo_prints_the_next_step(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = {"apiUrl": "http://127.0.0.1:1", "awsEndpointUrl": "http://127.0.0.1:2", "startupSeconds": 1.0,
             "fakeProviderUrl": "http://127.0.0.1:3", "apiKey": None, "llms": {}}  # fmt: skip
    _print_banner(state, tmp_path / "state.json")
    out = capsys.readouterr().out
    assert f"accounts create --name my-team --state-file {tmp_path / 'state.json'}" in out


def test_printed_commands_name_a_cli_that_exists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plain = "/usr/bin:/bin"  # not activated
    monkeypatch.chdir(REPO)
    assert cli_command(plain) == ".venv/bin/llm-gateway"
    assert os.access(REPO / cli_command(plain), os.X_OK)
    monkeypatch.chdir(tmp_path)
    assert os.access(cli_command(plain), os.X_OK) and Path(cli_command(plain)).is_absolute()
    assert cli_command(f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin") == "llm-gateway"  # activated
