"""Typed settings, read from the environment on first use (never at import).

The names of the resources a deployed function works on are required: template.yaml sets them,
the local stack and the tests set them explicitly, and a missing one fails the function's init
with an error naming the variable, instead of quietly pointing at some default resource.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SettingsError(RuntimeError):
    """The environment lacks (or has an invalid) setting; the message names the variables."""


class Settings(BaseModel):
    """Everything a function reads from its environment, validated once per container."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    stage: str = Field(alias="STAGE", min_length=1)
    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    credentials_key_id: str = Field(alias="CREDENTIALS_KEY_ID", min_length=1)
    token_signing_key_id: str = Field(alias="TOKEN_SIGNING_KEY_ID", min_length=1)
    token_issuer: str = Field(alias="TOKEN_ISSUER", min_length=1)
    token_audience: str = Field("llm-gateway-stream", alias="TOKEN_AUDIENCE")
    allow_private_endpoints: bool = Field(False, alias="ALLOW_PRIVATE_ENDPOINTS")
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES")
    idempotency_ttl_seconds: int = Field(3600, alias="IDEMPOTENCY_TTL_SECONDS")
    event_source: str = Field("llm-gateway.registry", alias="EVENT_SOURCE")
    #: Built-ins call platform endpoints with platform keys (secret name = prefix + built-in id).
    platform_secret_prefix_override: str | None = Field(None, alias="PLATFORM_SECRET_PREFIX")
    #: Local stack only: send built-ins to this base URL (the fake provider) instead of the vendors.
    builtin_base_url: str | None = Field(None, alias="BUILTIN_BASE_URL")
    #: Health: every valid or invalid LLM is re-validated once per interval (the local stack's
    #: ``--revalidate-every`` sets fractions of a minute).
    revalidation_interval_minutes: float = Field(360, alias="REVALIDATION_INTERVAL_MINUTES", gt=0)
    #: Where the re-validation schedule sends its messages (the scheduler function only).
    validation_queue_url: str | None = Field(None, alias="VALIDATION_QUEUE_URL")
    #: Where webhook deliveries are queued (the webhook delivery function only).
    webhook_queue_url: str | None = Field(None, alias="WEBHOOK_QUEUE_URL")
    #: The stream function flushes its traffic counters this often, or after this many streams.
    health_flush_seconds: float = Field(10.0, alias="HEALTH_FLUSH_SECONDS", gt=0)
    health_flush_streams: int = Field(100, alias="HEALTH_FLUSH_STREAMS", ge=1)

    @property
    def secret_name_prefix(self) -> str:
        return f"llm-gateway/{self.stage}/"

    @property
    def platform_secret_prefix(self) -> str:
        return self.platform_secret_prefix_override or f"{self.secret_name_prefix}platform/"


REQUIRED_VARIABLES = tuple(
    str(field.alias) for field in Settings.model_fields.values() if field.is_required() and field.alias
)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this container; tests call ``get_settings.cache_clear()`` after changing env.

    Raises ``SettingsError`` naming every missing or invalid variable.
    """
    known = {field.alias for field in Settings.model_fields.values() if field.alias}
    try:
        return Settings.model_validate({k: v for k, v in os.environ.items() if k in known})
    except ValidationError as exc:
        missing = sorted({str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"})
        invalid = sorted({str(e["loc"][0]) for e in exc.errors() if e["type"] != "missing"})
        problems = [f"missing required environment variable(s): {', '.join(missing)}"] if missing else []
        problems += [f"invalid environment variable(s): {', '.join(invalid)}"] if invalid else []
        raise SettingsError("; ".join(problems) + " (template.yaml sets them for every function)") from None
