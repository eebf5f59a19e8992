"""Every OpenAI/Azure transcript gets the verdict its metadata records (``expected_compatible``).

For error transcripts (non-2xx) the verdict is about the error *shape*: ``conforms`` ignores the
``http_status`` failure that the report still carries. Missing fixtures fail the suite, never skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.models.report import CheckStatus
from llm_gateway.providers import azure_openai, openai

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRANSCRIPTS = REPO_ROOT / "tests" / "fixtures" / "transcripts"
PROVIDERS = ("openai", "azure")


def _metadata_files() -> list[Path]:
    return sorted(p for provider in PROVIDERS for p in (TRANSCRIPTS / provider).glob("*.json"))


def test_fixture_directory_exists_and_is_not_empty() -> None:
    assert TRANSCRIPTS.is_dir(), f"missing fixtures: {TRANSCRIPTS}"
    for provider in PROVIDERS:
        assert list((TRANSCRIPTS / provider).glob("*.sse")), f"no {provider} transcripts in {TRANSCRIPTS}"


def _headers(meta: dict[str, Any], status: int) -> dict[str, str]:
    """Recorded headers; where none were recorded, what the source documents (SSE for 200)."""
    recorded = meta.get("response_headers") or {}
    headers = {name: (value[0] if isinstance(value, list) else value) for name, value in recorded.items()}
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "text/event-stream" if status == 200 else "application/json"
    return headers


@pytest.mark.parametrize(
    "meta_path", _metadata_files() or [None], ids=lambda p: p and f"{p.parent.name}/{p.stem}"
)
def test_fixture_verdict(meta_path: Path | None) -> None:
    assert meta_path is not None, f"no transcript metadata under {TRANSCRIPTS}"
    meta = json.loads(meta_path.read_text())
    body = meta_path.with_suffix(".sse").read_bytes()
    status = int(meta.get("http_status", 200))
    scope = meta.get("scope")
    module = azure_openai if meta_path.parent.name == "azure" else openai
    checks = module.check_response(
        status,
        _headers(meta, status),
        body,
        expect_complete=scope is None,
        expect_start=scope is None or "prefix" in str(scope),
    )
    failures = [f"{c.id}: {c.message}" for c in checks if c.status == CheckStatus.FAIL]
    assert openai.conforms(checks) is meta["expected_compatible"], failures
    for check in checks:
        if check.status == CheckStatus.FAIL:
            assert check.hint, check
        if check.evidence is not None:
            assert len(check.evidence.encode()) <= 512
    if status >= 400:
        assert checks[0].id == "http_status"
        assert checks[0].status == CheckStatus.FAIL
