"""Built-in LLMs: read-only, shared by every account, defined in ``catalog.json``."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from llm_gateway.models.llm import EndpointUrl, Llm, LlmFormat, LlmStatus, ValidationSummary


class BuiltinLlm(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str
    display_name: str
    llm_format: LlmFormat
    model_name: str
    urls: list[EndpointUrl]
    description: str
    client_side: bool = False

    def to_llm(self) -> Llm:
        return Llm(
            id=self.id,
            display_name=self.display_name,
            description=self.description,
            llm_format=self.llm_format,
            urls=self.urls,
            model_name=self.model_name,
            status=LlmStatus.VALID,
            validation=ValidationSummary(compatible=True, summary="Built-in LLM operated by the platform."),
            is_default=True,  # isDefault means "built in, provided by the platform"
            version=1,
        )


@lru_cache(maxsize=1)
def builtin_llms() -> dict[str, BuiltinLlm]:
    raw = json.loads(resources.files("llm_gateway").joinpath("catalog.json").read_text("utf-8"))
    return {item["id"]: BuiltinLlm.model_validate(item) for item in raw["builtins"]}


def get_builtin(llm_id: str) -> BuiltinLlm | None:
    return builtin_llms().get(llm_id)
