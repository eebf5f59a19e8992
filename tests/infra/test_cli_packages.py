"""``cli/`` is three packages by job, and imports only point one way:

- ``llm_gateway_cli`` (the client commands, the entry point) may import the other two (``dev``);
- ``llm_gateway_local`` (the local stack) may import the fake provider (it starts one), never the CLI;
- ``llm_gateway_fake_provider`` imports neither, nor the gateway itself (``llm_gateway``,
  ``functions``): an upstream that shared the gateway's code would test the gateway against itself;
- the product (``layers/``, ``functions/``) imports none of them: nothing deployed needs ``cli/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI_PACKAGES = ("llm_gateway_cli", "llm_gateway_local", "llm_gateway_fake_provider")
#: What each tree must not import (top-level package names).
FORBIDDEN = {
    REPO / "cli" / "llm_gateway_cli": set(),
    REPO / "cli" / "llm_gateway_local": {"llm_gateway_cli"},
    REPO / "cli" / "llm_gateway_fake_provider": {
        "llm_gateway_cli",
        "llm_gateway_local",
        "llm_gateway",
        "functions",
    },
    REPO / "layers": set(CLI_PACKAGES),
    REPO / "functions": set(CLI_PACKAGES),
}


def imported_packages(source: str) -> set[str]:
    """Top-level packages a module imports anywhere (also inside functions); relative imports stay
    inside their own package and are not counted."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _cases() -> list[tuple[Path, Path]]:
    return [(tree, path) for tree in FORBIDDEN for path in sorted(tree.rglob("*.py"))]


def test_the_three_packages_exist() -> None:
    for package in CLI_PACKAGES:
        assert (REPO / "cli" / package / "__init__.py").is_file(), package


@pytest.mark.parametrize(("tree", "path"), _cases(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_one_way(tree: Path, path: Path) -> None:
    wrong = imported_packages(path.read_text("utf-8")) & FORBIDDEN[tree]
    assert not wrong, f"{path.relative_to(REPO)} imports {sorted(wrong)}, against the direction in {__name__}"


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import llm_gateway_cli.main\n"
        "from llm_gateway_local.stack import LocalStack\n"
        "from . import specs\n"
        "def late():\n"
        "    from llm_gateway_fake_provider import server\n"
    )
    assert imported_packages(source) == {"llm_gateway_cli", "llm_gateway_local", "llm_gateway_fake_provider"}
