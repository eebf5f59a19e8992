"""README.md's curl walkthrough, run as a script against `llm-gateway dev`: it must work top to
bottom and print what its `# →` comments say, so the README cannot drift from the product."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests import readme
from tests.conftest import REPO, LeakCollector, plain_env
from tests.e2e.conftest import RunningStack


def test_the_walkthrough_runs_top_to_bottom_and_prints_what_it_says(
    stack: RunningStack, leak_collector: LeakCollector
) -> None:
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.fail(f"the README walkthrough needs {tool}; install it")
    script = readme.walkthrough()
    expected = readme.expected_output(script)
    assert len(expected) >= 10, "every step of the walkthrough says what it prints"
    env = plain_env()
    env["LLM_GATEWAY_STATE_FILE"] = str(stack.state_file)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    leak_collector.add("README walkthrough", done.stdout + done.stderr)
    assert done.returncode == 0, f"the walkthrough failed:\n{done.stdout}\n{done.stderr}"
    missing = [p.pattern for p in expected if not p.search(done.stdout)]
    assert not missing, f"the README says these lines are printed, but they are not: {missing}\n{done.stdout}"
    assert "null" not in done.stdout.split(), done.stdout
