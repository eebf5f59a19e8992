"""Argparse wiring of the client commands (``llms``, ``chat``, ``token``): every command parses,
``--help`` works, usage errors exit 2 before any network call."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from llm_gateway_cli.commands import chat, client, llms, llms_config, tokens
from llm_gateway_cli.main import build_parser, main

STATE = ["--state-file", "/nonexistent/state.json"]
CREATE = ["--format", "openai", "--name", "n", "--url", "https://api.example.com/v1", "--model", "m"]


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["llms"],
        *[["llms", action] for action in ("create", "list", "get", "update", "delete", "validate", "test")],
        ["chat"],
        ["token"],
        ["sessions", "revoke"],
    ],
)
def test_help_exits_0(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: llm-gateway" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "run"),
    [
        (["llms", "create", *CREATE, "--api-key", "k", "--wait"], llms.run_create),
        (
            ["llms", "list", "--include-defaults", "--search", "x", "--page", "2", "--per-page", "5"],
            llms.run_list,
        ),
        (["llms", "get", "ID"], llms.run_get),
        (["llms", "update", "ID", "--name", "x", "--if-match", "3"], llms.run_update),
        (["llms", "delete", "ID", "--json"], llms.run_delete),
        (["llms", "validate", "ID"], llms.run_validate),
        (["llms", "test", *CREATE, "--api-key", "k"], llms.run_test),
        (["chat", "--llm", "ID", "--message", "hi"], chat.run_chat),
        (["token", "--llm", "ID"], tokens.run_token),
    ],
)
def test_each_command_parses_to_its_runner(argv: list[str], run: object) -> None:
    assert parse(*argv).run is run


def test_create_flags_become_the_camel_case_body() -> None:
    args = parse(
        "llms", "create", "--format", "azure_openai", "--name", "prod", "--url", "https://a.example.com",
        "--url", "https://b.example.com", "--model", "gpt", "--api-key", "sk-secret", "--deployment", "dep",
        "--api-version", "2024-10-21", "--temperature", "0.5", "--max-tokens", "64",
        "--header", "X-Team: persona", "--header", "X-Trace:1", "--description", "desc",
        "--idempotency-key", "abc", "--gateway-api-key", "llmgw_x", "--api-url", "http://127.0.0.1:1",
    )  # fmt: skip
    assert args.gateway_api_key == "llmgw_x" and args.idempotency_key == "abc"
    assert llms_config.config_body(args, creating=True, environ={}) == {
        "displayName": "prod",
        "description": "desc",
        "llmFormat": "azure_openai",
        "urls": [{"url": "https://a.example.com"}, {"url": "https://b.example.com"}],
        "modelName": "gpt",
        "secret": "sk-secret",
        "deploymentName": "dep",
        "apiVersion": "2024-10-21",
        "temperature": 0.5,
        "maxTokens": 64,
        "headers": {"X-Team": "persona", "X-Trace": "1"},
    }


def test_create_reads_the_endpoint_key_from_the_environment() -> None:
    body = llms_config.config_body(
        parse("llms", "create", *CREATE), creating=True, environ={"LLM_API_KEY": "from-env"}
    )
    assert body["secret"] == "from-env"


def test_update_is_a_partial_body_and_ignores_the_environment_key() -> None:
    args = parse("llms", "update", "ID", "--model", "m2", "--url", "https://c.example.com")
    assert llms_config.config_body(args, creating=False, environ={"LLM_API_KEY": "from-env"}) == {
        "modelName": "m2",
        "urls": [{"url": "https://c.example.com"}],
    }


def test_the_connection_key_flag_is_the_same_setting_everywhere() -> None:
    assert parse("llms", "list", "--gateway-api-key", "a").gateway_api_key == "a"
    assert parse("chat", "--llm", "x", "--api-key", "b").gateway_api_key == "b"
    assert parse("token", "--llm", "x", "--api-key", "c").gateway_api_key == "c"


def test_tokens_uses_the_shared_client_helpers() -> None:
    assert tokens.connection is client.connection
    assert tokens.request is client.request
    assert tokens.report_error is client.report_error
    assert tokens.connection_arguments is client.connection_arguments


@pytest.mark.parametrize(
    "argv",
    [
        ["llms"],
        ["llms", "nope"],
        ["llms", "create", "--name", "n"],
        ["llms", "create", *CREATE[2:]],  # no --format
        ["llms", "create", *CREATE, "--format", "bedrock"],
        ["llms", "create", *CREATE, "--max-tokens", "many"],
        ["llms", "list", "--per-page", "x"],
        ["llms", "get"],
        ["llms", "update", "ID", "--if-match", "v1"],
        ["llms", "delete"],
        ["llms", "validate"],
        ["llms", "test", "--format", "openai"],
        ["chat"],
        ["chat", "--llm", "x", "--max-tokens", "lots"],
    ],
)
def test_argparse_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["llms", "create", *CREATE], "LLM_API_KEY"),
        (["llms", "test", *CREATE], "LLM_API_KEY"),
        (["llms", "create", *CREATE, "--api-key", "k", "--deployment", "d"], "azure_openai only"),
        (["llms", "create", *CREATE, "--api-key", "k", "--header", "no colon"], "--header"),
        (["llms", "create", *CREATE, "--api-key", "k", "--wait", "--wait-timeout", "0"], "--wait-timeout"),
        (["llms", "create", *CREATE, "--api-key", "has space"], "whitespace"),
        (["llms", "list", "--per-page", "0"], "--per-page"),
        (["llms", "list", "--page", "0"], "--page"),
        (["llms", "update", "ID"], "nothing to update"),
        (["chat", "--llm", "x", "--message", " "], "--message"),
        (["chat", "--llm", "x", "--max-tokens", "0"], "--max-tokens"),
        # No gateway to talk to: no state file and no --api-url/--api-key.
        (["llms", "list", *STATE], "no state file"),
        (["llms", "get", "ID", *STATE], "no state file"),
        (["llms", "create", *CREATE, "--api-key", "k", *STATE], "no state file"),
        (["chat", "--llm", "x", *STATE], "no state file"),
    ],
)
def test_our_usage_errors_exit_2_with_a_message(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and words in err


def test_usage_errors_never_echo_the_endpoint_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llms", "create", *CREATE, "--api-key", "sk-live-123 456"]) == 2
    assert main(["llms", "create", *CREATE, "--api-key", "sk-live-123", "--header", "sk-live-123"]) == 2
    out, err = capsys.readouterr()
    assert "sk-live-123" not in out + err


def test_state_file_and_environment_give_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"apiUrl": "http://127.0.0.1:9/", "apiKey": "llmgw_state"}', "utf-8")
    args = parse("llms", "list", "--state-file", str(state))
    assert client.connection(args, {}) == ("http://127.0.0.1:9", "llmgw_state")
    assert client.connection(args, {"LLM_GATEWAY_API_KEY": "llmgw_env"}) == (
        "http://127.0.0.1:9",
        "llmgw_env",
    )
    flagged = parse("llms", "list", "--api-url", "http://h:1", "--gateway-api-key", "k", *STATE)
    assert client.connection(flagged, {}) == ("http://h:1", "k")
