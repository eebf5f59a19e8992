"""Every CLI command on a machine with nothing set up: empty HOME, no AWS_* settings, no state file,
no gateway. Each must end in one useful line and a non-zero exit, never a Python traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_gateway_cli.main import build_parser
from tests.conftest import LeakCollector

NO_GATEWAY = ("no gateway to talk to", "--state-file", "--api-url")


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


#: (argv, words the error must contain). Ports marked {busy} are taken by the fixture above.
CASES: list[tuple[list[str], tuple[str, ...]]] = [
    (["dev", "--port", "{busy}"], ("port {busy}", "already in use", "--port")),
    (["accounts", "create", "--name", "x"], ("no local stack", "--state-file", "--stack-name", "AWS credentials")),
    (["accounts", "create", "--name", "x", "--stack-name", "llm-gateway"], ("'llm-gateway'", "no AWS region")),
    (["accounts", "create", "--name", "x", "--state-file", "{home}/nope.json"], ("no state file at",)),
    (["check", "--format", "openai", "--url", "http://127.0.0.1:9/v1", "--model", "m"], ("no API key", "--api-key")),
    (["llms", "create", "--format", "openai", "--name", "n", "--url", "https://api.example.com/v1",
      "--model", "m", "--api-key", "k"], NO_GATEWAY),
    (["llms", "list"], NO_GATEWAY),
    (["llms", "get", "X"], NO_GATEWAY),
    (["llms", "update", "X", "--name", "y"], NO_GATEWAY),
    (["llms", "delete", "X"], NO_GATEWAY),
    (["llms", "validate", "X"], NO_GATEWAY),
    (["llms", "health", "X"], NO_GATEWAY),
    (["llms", "requests", "X"], NO_GATEWAY),
    (["llms", "usage", "X"], NO_GATEWAY),
    (["llms", "test", "--format", "openai", "--name", "n", "--url", "https://api.example.com/v1",
      "--model", "m", "--api-key", "k"], NO_GATEWAY),
    (["llms", "list", "--api-url", "http://127.0.0.1:9"], ("need an account API key", "--gateway-api-key")),
    (["llms", "list", "--api-url", "http://127.0.0.1:9", "--gateway-api-key", "k"], ("cannot reach the gateway",)),
    (["token", "--llm", "X"], NO_GATEWAY),
    (["sessions", "revoke", "X"], NO_GATEWAY),
    (["chat", "--llm", "X", "--message", "hi"], NO_GATEWAY),
    (["api-keys", "list"], NO_GATEWAY),
    (["api-keys", "create", "--name", "ci"], NO_GATEWAY),
    (["api-keys", "revoke", "X"], NO_GATEWAY),
    (["webhooks", "list"], NO_GATEWAY),
    (["webhooks", "add", "https://hooks.example.com/x"], NO_GATEWAY),
    (["webhooks", "delete", "X"], NO_GATEWAY),
    (["fake-provider", "--port", "{busy}"], ("cannot listen", "{busy}", "--port")),
]  # fmt: skip


def _bare_env(home: Path) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    env["LLM_GATEWAY_STATE_FILE"] = str(home / "no-state.json")  # not the developer's running stack
    return env


@pytest.mark.parametrize(("argv", "words"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_a_command_without_its_environment_says_so_in_one_line(
    argv: list[str], words: tuple[str, ...], busy_port: int, tmp_path: Path, leak_collector: LeakCollector
) -> None:
    home = tmp_path / "home"
    home.mkdir()

    def fill(text: str) -> str:
        return text.replace("{busy}", str(busy_port)).replace("{home}", str(home))

    done = subprocess.run(
        [sys.executable, "-m", "llm_gateway_cli.main", *map(fill, argv)],
        cwd=home, env=_bare_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    leak_collector.add(f"bare cli {argv[:2]}", done.stdout + done.stderr)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    message = done.stderr.strip()
    assert message.startswith(("error:", "llm-gateway")), message
    for word in map(fill, words):
        assert word in message, f"{word!r} not in {message!r}"
    assert list(home.iterdir()) == [], "a failing command left files behind"


def test_every_command_has_a_bare_environment_case() -> None:
    covered = {" ".join(a for a in argv[:2] if not a.startswith("-")) for argv, _ in CASES}
    covered |= {argv[0] for argv, _ in CASES}
    commands = set()
    for name, parser in _subcommands(build_parser()):
        actions = list(_subcommands(parser))
        commands |= {f"{name} {action}" for action, _ in actions} if actions else {name}
    missing = sorted(c for c in commands if c not in covered)
    assert not missing, f"add a bare-environment case for: {missing}"


def _subcommands(parser: object) -> list[tuple[str, object]]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    found: list[tuple[str, object]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.items())
    return found
