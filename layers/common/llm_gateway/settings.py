"""Typed settings, read from the environment on first use (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Everything a function reads from its environment, validated once per container."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    stage: str = Field("dev", alias="STAGE")
    table_name: str = Field("llm-gateway-dev", alias="TABLE_NAME")
    event_bus_name: str = Field("llm-gateway-dev", alias="EVENT_BUS_NAME")
    credentials_key_id: str = Field("alias/llm-gateway-dev-credentials", alias="CREDENTIALS_KEY_ID")
    token_signing_key_id: str = Field("alias/llm-gateway-dev-token-signing", alias="TOKEN_SIGNING_KEY_ID")
    token_issuer: str = Field("https://llm-gateway.local", alias="TOKEN_ISSUER")
    token_audience: str = Field("llm-gateway-stream", alias="TOKEN_AUDIENCE")
    allow_private_endpoints: bool = Field(False, alias="ALLOW_PRIVATE_ENDPOINTS")
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES")
    idempotency_ttl_seconds: int = Field(3600, alias="IDEMPOTENCY_TTL_SECONDS")
    event_source: str = Field("llm-gateway.registry", alias="EVENT_SOURCE")
    #: Built-ins call platform endpoints with platform keys (secret name = prefix + built-in id).
    platform_secret_prefix_override: str | None = Field(None, alias="PLATFORM_SECRET_PREFIX")
    #: Local stack only: send built-ins to this base URL (the fake provider) instead of the vendors.
    builtin_base_url: str | None = Field(None, alias="BUILTIN_BASE_URL")

    @property
    def secret_name_prefix(self) -> str:
        return f"llm-gateway/{self.stage}/"

    @property
    def platform_secret_prefix(self) -> str:
        return self.platform_secret_prefix_override or f"{self.secret_name_prefix}platform/"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this container; tests call ``get_settings.cache_clear()`` after changing env."""
    known = {field.alias for field in Settings.model_fields.values() if field.alias}
    return Settings.model_validate({k: v for k, v in os.environ.items() if k in known})
