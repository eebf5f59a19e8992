"""Shared pydantic building blocks: camelCase JSON, the error envelope, pagination."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Public JSON is camelCase; Python code uses snake_case. Unknown fields are rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=False
    )

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """``{"error": {"code", "message", "details"}}`` — the only error shape the API returns."""

    error: ErrorDetail


class PageMeta(ApiModel):
    page: int
    per_page: int
    total: int
