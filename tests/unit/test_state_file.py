"""The local stack's state file appears whole or not at all (readers poll for it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_gateway_local import stack as stack_module


def test_the_state_file_is_written_by_an_atomic_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        assert not Path(dst).exists(), "the final name must not exist before the rename"
        assert json.loads(Path(src).read_text("utf-8"))["apiUrl"] == "http://127.0.0.1:1"
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(stack_module.os, "replace", spy)
    local = stack_module.LocalStack(state_file=target)
    local.state = {"apiUrl": "http://127.0.0.1:1"}
    local.write_state()
    assert replaced == [(str(target) + ".partial", str(target))]
    assert json.loads(target.read_text("utf-8")) == {"apiUrl": "http://127.0.0.1:1"}
