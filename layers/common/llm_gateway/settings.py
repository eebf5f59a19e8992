"""Typed settings, read from the environment on first use (never at import).

The names of the resources a deployed function works on are required: template.yaml sets them,
the local stack and the tests set them explicitly, and a missing one fails the function's init
with an error naming the variable, instead of quietly pointing at some default resource.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_gateway.origins import LOOPBACK_NAMES, Origin, host_and_port, parse_origins


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
    #: Local stack only: origins (``http://127.0.0.1:8000``, comma-separated) whose private
    #: addresses the gateway may call; everything else must be a public https endpoint.
    private_endpoint_origins: str = Field("", alias="PRIVATE_ENDPOINT_ORIGINS")
    #: The gateway's own public origins besides the API's execute-api host, which each request
    #: names itself (a custom domain; the local stack's base URL). URLs there are refused.
    gateway_origins: str = Field("", alias="GATEWAY_ORIGINS")
    #: What this deployment's hop marker derives from (the stack id); unset, the resource names.
    hop_marker_value: str | None = Field(None, alias="HOP_MARKER", max_length=256)
    #: Set only where AWS is emulated (moto in the local stack): that port is never an LLM endpoint.
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")
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
    #: What one tenant may hold of what all share, and what the gateway sends anyone's way
    #: (README "Limits"; the template's parameters of the same names, SCALING.md for the defaults).
    validation_account_concurrency: int = Field(2, alias="VALIDATION_ACCOUNT_CONCURRENCY", ge=1)
    webhook_account_concurrency: int = Field(2, alias="WEBHOOK_ACCOUNT_CONCURRENCY", ge=1)
    webhook_delivery_deadline_seconds: float = Field(
        15.0, alias="WEBHOOK_DELIVERY_DEADLINE_SECONDS", gt=0, le=25
    )
    webhook_timeouts_before_disable: int = Field(5, alias="WEBHOOK_TIMEOUTS_BEFORE_DISABLE", ge=1)
    target_requests_per_minute: int = Field(120, alias="TARGET_REQUESTS_PER_MINUTE", ge=1)
    validate_min_interval_seconds: int = Field(60, alias="VALIDATE_MIN_INTERVAL_SECONDS", ge=0)
    reports_per_llm: int = Field(50, alias="REPORTS_PER_LLM", ge=1)
    #: Scheduled re-validations have a queue of their own (the scheduler sends there; the
    #: validator defers onto it), so registrations never wait behind them.
    revalidation_queue_url: str | None = Field(None, alias="REVALIDATION_QUEUE_URL")

    @field_validator("private_endpoint_origins", "gateway_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        parse_origins(value)  # a typo fails the function's init, naming the variable
        return value

    @property
    def private_origins(self) -> tuple[Origin, ...]:
        return parse_origins(self.private_endpoint_origins)

    @property
    def own_origins(self) -> tuple[Origin, ...]:
        return parse_origins(self.gateway_origins)

    @property
    def refused_local_ports(self) -> frozenset[int]:
        """Loopback ports of the gateway's own services (its API, emulated AWS): never an LLM."""
        places = [(host, port) for _, host, port in self.own_origins]
        aws = host_and_port(self.aws_endpoint_url) if self.aws_endpoint_url else None
        places += [aws] if aws else []
        return frozenset(port for host, port in places if host in LOOPBACK_NAMES or host.startswith("127."))

    @property
    def hop_marker(self) -> str:
        """The same value in every function of one deployment, different in any other deployment:
        a hash of ``HOP_MARKER`` (the template passes the stack id, a UUID CloudFormation makes per
        stack; hashed, so upstreams never learn the account or stack name), else of the
        deployment's own resource names."""
        seed = self.hop_marker_value or "|".join(
            (self.stage, self.table_name, self.token_signing_key_id, self.event_bus_name)
        )
        return hashlib.sha256(f"llm-gateway-hop|{seed}".encode()).hexdigest()[:32]

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
