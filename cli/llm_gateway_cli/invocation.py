"""How to call this CLI again from the user's shell, so every command we print runs as printed."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def cli_command(path: str | None = None) -> str:
    """``llm-gateway`` when that name on PATH is this CLI (an activated venv), otherwise the path of
    the script next to this interpreter, relative to the working directory when it lies below it
    (``.venv/bin/llm-gateway``)."""
    script = Path(sys.executable).parent / "llm-gateway"
    if not script.exists():
        return "llm-gateway"
    on_path = shutil.which("llm-gateway", path=path)  # path: the user's PATH (None: this process's)
    if on_path and _same(Path(on_path), script):
        return "llm-gateway"
    try:
        relative = script.absolute().relative_to(Path.cwd())
    except ValueError:
        return str(script.absolute())
    return str(relative) if str(relative).startswith(".") else f"./{relative}"


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
