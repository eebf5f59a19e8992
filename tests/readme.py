"""README.md as tests read it: the curl walkthrough, what it says it prints, the commands it names."""

from __future__ import annotations

import re

from tests.conftest import REPO

README = REPO / "README.md"
WALKTHROUGH_HEADING = "## The API, with curl"
#: `# → text` at the end of a line: what that step prints; `…` stands for anything.
_EXPECTED = re.compile(r"#\s*→\s*(.+?)\s*$")


def text() -> str:
    return README.read_text("utf-8")


def walkthrough() -> str:
    """The first ```bash block under the walkthrough heading."""
    readme = text()
    start = readme.index(WALKTHROUGH_HEADING)
    block = readme.index("```bash\n", start) + len("```bash\n")
    return readme[block : readme.index("\n```", block)] + "\n"


def expected_output(script: str) -> list[re.Pattern[str]]:
    """One pattern per `# →` comment, matching a whole line of output."""
    patterns = []
    for line in script.splitlines():
        found = _EXPECTED.search(line)
        if found:
            parts = [re.escape(part) for part in found.group(1).split("…")]
            patterns.append(re.compile("^" + ".+?".join(parts) + "$", re.M))
    return patterns


def error_table() -> str:
    """The README's error table, as ``ERROR_TABLE`` renders it (code, status, meaning)."""
    from llm_gateway.errors import ERROR_TABLE

    rows = ["| code | status | meaning |", "|---|---|---|"]
    for code, entry in sorted(ERROR_TABLE.items(), key=lambda item: (item[1].status, item[0])):
        statuses = " or ".join(str(s) for s in entry.statuses)
        rows.append(f"| `{code}` | {statuses} | {entry.meaning} |")
    return "\n".join(rows) + "\n"
