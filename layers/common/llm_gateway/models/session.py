"""Session tokens: the mint request, its answer, and the session record the stream endpoint reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from llm_gateway.models.common import ApiModel

LlmRef = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class PersonaConfig(ApiModel):
    """The persona a session runs as. ``brainType`` is the legacy name of ``llmId``."""

    model_config = ApiModel.model_config | {
        "extra": "ignore",
        # the document says what ``_one_llm`` checks: an LLM must be named
        "json_schema_extra": {"anyOf": [{"required": ["llmId"]}, {"required": ["brainType"]}]},
    }

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    avatar_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    voice_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    llm_id: LlmRef | None = None
    brain_type: LlmRef | None = None
    system_prompt: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    max_session_length_seconds: Annotated[int, Field(ge=1, le=86_400)] | None = None

    @model_validator(mode="after")
    def _one_llm(self) -> PersonaConfig:
        if self.llm_id and self.brain_type and self.llm_id != self.brain_type:
            raise ValueError("llmId and brainType name different LLMs; send only llmId")
        if not (self.llm_id or self.brain_type):
            raise ValueError("personaConfig needs llmId (or the legacy brainType)")
        return self

    @property
    def resolved_llm_id(self) -> str:
        return self.llm_id or self.brain_type or ""


class SessionTokenRequest(ApiModel):
    persona_config: PersonaConfig
    client_label: Annotated[str, StringConstraints(max_length=200)] | None = None


class SessionTokenResponse(ApiModel):
    session_token: str
    session_id: str
    expires_at: datetime
    warnings: list[str] = Field(default_factory=list)


class SessionRecord(ApiModel):
    """Stored under ``SESSION#<id>`` with a DynamoDB TTL at expiry; the token carries only ids."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    session_id: str
    account_id: str
    llm_id: str
    llm_version: int
    persona: PersonaConfig
    client_label: str | None = None
    created_at: datetime
    expires_at: datetime
    revoked: bool = False
