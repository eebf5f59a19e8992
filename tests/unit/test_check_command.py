"""``llm-gateway check`` usage errors, help text and colour rules (no network)."""

from __future__ import annotations

import io

import pytest

from llm_gateway_cli.commands.check import render, run_check, use_color
from llm_gateway_cli.main import build_parser, main

BASE = ["check", "--format", "openai", "--model", "m"]


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        ([*BASE, "--url", "https://api.example.com/v1"], {}, "LLM_API_KEY"),
        ([*BASE, "--url", "ftp://api.example.com/v1", "--api-key", "k"], {}, "--url"),
        ([*BASE, "--url", "https://api.example.com/nope", "--api-key", "k"], {}, "/v1"),
        ([*BASE, "--url", "https://api.example.com/v1", "--deployment", "d"], {"LLM_API_KEY": "k"}, "azure"),
        ([*BASE, "--url", "https://api.example.com/v1", "--timeout", "0"], {"LLM_API_KEY": "k"}, "--timeout"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    args: list[str], env: dict[str, str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_check(build_parser().parse_args(args), environ=env) == 2
    out, err = capsys.readouterr()
    assert out == "" and words in err


def test_missing_required_option_is_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--format", "openai"])
    assert exited.value.code == 2


def test_help_explains_the_url_forms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = capsys.readouterr().out
    for needle in ("/v1/chat/completions", "openai.azure.com", "/openai/v1", "generativelanguage.googleapis.com",
                   ":streamGenerateContent", "--deployment", "exit status"):  # fmt: skip
        assert needle in text


def test_colour_rules() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_color(Tty(), {}) and not use_color(io.StringIO(), {})
    assert use_color(io.StringIO(), {"FORCE_COLOR": "1"})
    assert not use_color(Tty(), {"FORCE_COLOR": "1", "NO_COLOR": "1"})


def test_table_shows_hints_timings_and_verdict() -> None:
    report = {
        "compatible": False, "llmFormat": "openai", "endpoint": "https://h/v1/chat/completions",
        "errorCode": "upstream_unauthorized", "timings": {"ttfbMs": 12.0, "ttftMs": None, "totalMs": 1500.0},
        "checks": [
            {"id": "address", "category": "network", "status": "pass", "message": "ok"},
            {"id": "http_status", "category": "auth", "status": "fail", "message": "HTTP 401",
             "hint": "Check the key.", "evidence": "{}"},
            {"id": "auth_probe", "category": "auth", "status": "skip", "message": "skipped"},
        ],
    }  # fmt: skip
    plain, coloured = io.StringIO(), io.StringIO()
    render(report, plain, color=False)
    render(report, coloured, color=True)
    text = plain.getvalue()
    assert "FAIL" in text and "hint: Check the key." in text and "NOT COMPATIBLE" in text
    assert "upstream_unauthorized" in text and "12 ms" in text and "1.50 s" in text
    assert "\x1b[" not in text and "\x1b[" in coloured.getvalue()
