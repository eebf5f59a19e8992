"""The OpenAI checks with Azure's documented tolerances (WIRE_FORMATS.md §2.2-§2.3)."""

from __future__ import annotations

from collections.abc import Sequence

from llm_gateway.models.report import Check
from llm_gateway.providers.common.http import Headers
from llm_gateway.providers.openai.checks import SpecProfile
from llm_gateway.providers.openai.checks import check_response as _check_openai_response

AZURE_PROFILE = SpecProfile("azure_openai", "Azure OpenAI", azure=True)


def check_response(
    status: int,
    headers: Headers,
    body: bytes,
    *,
    expect_complete: bool = True,
    expect_start: bool = True,
    secrets: Sequence[str] = (),
    max_line_bytes: int = 1024 * 1024,
) -> list[Check]:
    """The OpenAI checks with Azure's tolerances: filter/annotation chunks, ``object: ""`` on them,
    annotations after the finish chunk, and the ``{"error": {"code", "message"}}`` envelope."""
    return _check_openai_response(
        status,
        headers,
        body,
        profile=AZURE_PROFILE,
        expect_complete=expect_complete,
        expect_start=expect_start,
        secrets=secrets,
        max_line_bytes=max_line_bytes,
    )
