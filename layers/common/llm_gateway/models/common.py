"""Shared pydantic building blocks: camelCase JSON, the error envelope, pagination."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from llm_gateway.errors import ERROR_TABLE


class ApiModel(BaseModel):
    """Public JSON is camelCase; Python code uses snake_case. Unknown fields are rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
        defer_build=True,
    )

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


#: The error codes by status, from the one table (``errors.ERROR_TABLE``; README, "Errors").
ERROR_CODES_BY_STATUS: dict[int, tuple[str, ...]] = {
    status: tuple(code for code, entry in ERROR_TABLE.items() if status in entry.statuses)
    for status in sorted({s for entry in ERROR_TABLE.values() for s in entry.statuses})
}
_CODES_TEXT = "; ".join(
    f"{status}: {', '.join(f'`{code}`' for code in codes)}" for status, codes in ERROR_CODES_BY_STATUS.items()
)


class ErrorDetail(BaseModel):
    code: str = Field(
        description=(
            "Why the request failed, in snake_case, stable for programs to branch on. By status: "
            f"{_CODES_TEXT}. What each means: the README's error table."
        ),
        examples=["validation_error", "credential_in_url", "endpoint_blocked", "loop_detected"],
    )
    message: str = Field(description="What went wrong and how to fix it, for people.")
    details: Any = None


class ErrorResponse(BaseModel):
    """``{"error": {"code", "message", "details"}}`` — the only error shape the API returns."""

    error: ErrorDetail


class PageMeta(ApiModel):
    page: int
    per_page: int
    total: int
