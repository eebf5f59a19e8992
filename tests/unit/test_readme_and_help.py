"""The README stays true and every --help helps: commands it names exist and parse as written,
`make` targets exist, the fault table matches the fake provider, each command has examples."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from llm_gateway_cli.main import build_parser
from llm_gateway_fake_provider.cli import build_parser as fake_provider_parser
from llm_gateway_fake_provider.faults import FAULT_HELP
from tests import readme
from tests.conftest import REPO

CLI = ".venv/bin/llm-gateway"


def _readme_commands() -> list[str]:
    """Every `.venv/bin/llm-gateway …` command in README.md: code blocks (continuations joined,
    comments dropped) and inline code."""
    text = readme.text()
    found: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if CLI in line:
                found.append(line[line.index(CLI) :])
    for inline in re.findall(r"`([^`\n]+)`", text):
        if inline.startswith(CLI):
            found.append(inline)
    return found


def _is_template(tokens: list[str]) -> bool:
    """A synopsis like `dev [--port N]` or `llms create|list|…`, not a runnable command."""
    return any(ch in token for token in tokens for ch in "[]|…") or any(t.isupper() for t in tokens)


COMMANDS = _readme_commands()


def test_the_readme_names_cli_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_each_cli_command_in_the_readme_exists_and_parses(command: str) -> None:
    tokens = shlex.split(command, comments=True)[1:]
    if not tokens:
        return  # the bare name, as in "the CLI is .venv/bin/llm-gateway"
    if tokens[0] == "fake-provider":
        parser, tokens = fake_provider_parser(), tokens[1:]
    else:
        parser = build_parser()
    if _is_template(tokens):
        words = [t for t in tokens[:2] if re.fullmatch(r"[a-z][a-z-]*", t)]
        with pytest.raises(SystemExit) as shown:
            parser.parse_args([*words, "--help"])
        assert shown.value.code == 0, command
        return
    try:
        parser.parse_args(tokens)
    except SystemExit as exc:
        pytest.fail(f"README command does not parse ({exc.code}): {command}")


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (REPO / "Makefile").read_text("utf-8")
    targets = set(re.findall(r"^([a-z0-9-]+):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z0-9-]+)", readme.text()))
    assert named, "the README names make targets"
    assert named <= targets, f"the README names missing make targets: {sorted(named - targets)}"


def test_the_readme_fault_table_lists_every_fake_provider_fault() -> None:
    rows = set(re.findall(r"^\| `([a-z0-9:\[\]A-Z-]+)` \|", readme.text(), re.M))
    assert set(FAULT_HELP) <= rows, f"README lacks faults: {sorted(set(FAULT_HELP) - rows)}"


def _parsers(
    parser: argparse.ArgumentParser, path: str = "llm-gateway"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if name != "fake-provider":  # main() hands it to its own parser, checked below
                    found += _parsers(child, f"{path} {name}")
    return found


@pytest.mark.parametrize(
    ("path", "parser"),
    [*_parsers(build_parser()), ("llm-gateway fake-provider", fake_provider_parser())],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_command_help_has_a_description_and_examples(
    path: str, parser: argparse.ArgumentParser
) -> None:
    text = parser.format_help()
    assert parser.description, f"{path} --help has no description"
    assert "examples:" in text, f"{path} --help has no examples"
