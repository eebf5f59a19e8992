"""The code stays readable and spec knowledge stays in ``providers/``.

- no file under ``layers/`` or ``cli/`` (the CLI, the local stack, the fake provider) over 600
  lines, no function (or method) over 60 lines;
- only ``providers/`` (and the model that defines the formats) names an ``LlmFormat`` member:
  everything else asks the provider registry, so a new spec touches nothing outside its package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = REPO / "layers"
CLI = REPO / "cli"
PACKAGE = LAYERS / "common" / "llm_gateway"
#: The trees under the size rules, and the packages each must hold.
TREES = {LAYERS: ("llm_gateway",), CLI: ("llm_gateway_cli", "llm_gateway_local", "llm_gateway_fake_provider")}
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(path for tree in TREES for path in tree.rglob("*.py"))


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, length in lines) of every function or method longer than ``limit``, decorators excluded."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append((node.name, length))
    return found


@pytest.mark.parametrize("tree", sorted(TREES), ids=lambda p: p.name)
def test_each_tree_has_its_sources(tree: Path) -> None:
    """A moved tree would otherwise leave the rules checking nothing."""
    for package in TREES[tree]:
        assert len(list(tree.rglob(f"{package}/**/*.py"))) > 5, f"no sources of {package} under {tree.name}/"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_file_is_too_long(path: Path) -> None:
    lines = path.read_text("utf-8").count("\n")
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(REPO)} has {lines} lines; split it by job"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_function_is_too_long(path: Path) -> None:
    too_long = long_functions(path.read_text("utf-8"))
    assert not too_long, f"{path.relative_to(REPO)}: functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_the_function_check_counts_what_it_should() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def short():\n{body[: body.rfind(chr(10))]}\n") == []
    assert long_functions(
        f"class A:\n    def long(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
    ) == [("long", MAX_FUNCTION_LINES + 1)]


def test_only_providers_name_a_format() -> None:
    allowed = {PACKAGE / "models" / "llm.py"}
    offenders = [
        str(path.relative_to(REPO))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "providers" not in path.relative_to(PACKAGE).parts
        and path not in allowed
        and "LlmFormat." in path.read_text("utf-8")
    ]
    assert not offenders, f"branch on the format through providers.registry instead: {offenders}"
