"""Typed settings, one model per function, read from its environment on first use (never at import).

Each function's model declares exactly the variables that function reads (plain pydantic: the
field's alias is the variable's name). The names of the resources a function works on are
required: template.yaml sets them, the local stack and the tests pass them explicitly, and a
missing one fails the function's first use (its init) with an error naming the variable, instead of
quietly pointing at some default resource. ``from_environ`` is the one place that reads
``os.environ``; everything else receives a settings value.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_gateway.origins import LOOPBACK_NAMES, Origin, host_and_port, parse_origins


class SettingsError(RuntimeError):
    """The environment lacks (or has an invalid) setting; the message names the variables."""


class FunctionSettings(BaseModel):
    """What every function may read: where AWS is (moto in the local stack; unset when deployed)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    #: Set only where AWS is emulated (moto in the local stack): that port is never an LLM endpoint.
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")

    @classmethod
    def variables(cls) -> frozenset[str]:
        """Every environment variable this model reads."""
        return frozenset(str(f.alias) for f in cls.model_fields.values() if f.alias)

    @classmethod
    def required_variables(cls) -> frozenset[str]:
        return frozenset(str(f.alias) for f in cls.model_fields.values() if f.alias and f.is_required())

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """This function's settings from ``environ`` (the process environment when None).

        Raises ``SettingsError`` naming every missing or invalid variable (never a value).
        """
        source = os.environ if environ is None else environ
        known = cls.variables()
        try:
            return cls.model_validate({k: v for k, v in source.items() if k in known})
        except ValidationError as exc:
            missing = sorted({str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"})
            invalid = sorted({str(e["loc"][0]) for e in exc.errors() if e["type"] != "missing"})
            problems = [f"missing required environment variable(s): {', '.join(missing)}"] if missing else []
            problems += [f"invalid environment variable(s): {', '.join(invalid)}"] if invalid else []
            raise SettingsError(
                f"{cls.__name__}: " + "; ".join(problems) + " (template.yaml sets them)"
            ) from None


# --- groups of variables, combined into each function's model below ------------------------------


class TableSettings(FunctionSettings):
    table_name: str = Field(alias="TABLE_NAME", min_length=1)


class StageSettings(FunctionSettings):
    stage: str = Field(alias="STAGE", min_length=1)

    @property
    def secret_name_prefix(self) -> str:
        return f"llm-gateway/{self.stage}/"


class HopSettings(StageSettings):
    """The hop marker: the same in every function of one deployment, different in any other."""

    #: The stack id (template: ``AWS::StackId``); hashed, so upstreams never learn the account or name.
    hop_marker_value: str = Field(alias="HOP_MARKER", min_length=1, max_length=256)

    @property
    def hop_marker(self) -> str:
        return hashlib.sha256(f"llm-gateway-hop|{self.hop_marker_value}".encode()).hexdigest()[:32]


class EdgeSettings(HopSettings):
    """A REST function's edge (``api.resolve``): the body limit and the loop check."""

    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES", ge=1)


class OutboundSettings(HopSettings):
    """Where the gateway may connect (registration, probes, the proxy, webhooks); every outbound
    call carries the hop marker."""

    #: Local stack only: origins (``http://127.0.0.1:8000``, comma-separated) whose private
    #: addresses the gateway may call; everything else must be a public https endpoint.
    private_endpoint_origins: str = Field("", alias="PRIVATE_ENDPOINT_ORIGINS")
    #: The gateway's own public origins besides the API's execute-api host, which each request
    #: names itself (a custom domain; the local stack's base URL). URLs there are refused.
    gateway_origins: str = Field("", alias="GATEWAY_ORIGINS")

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


class CredentialSettings(StageSettings):
    """Customer secrets: Secrets Manager under ``llm-gateway/<stage>/``, sealed with this KMS key."""

    credentials_key_id: str = Field(alias="CREDENTIALS_KEY_ID", min_length=1)


class EventSettings(FunctionSettings):
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    event_source: str = Field("llm-gateway.registry", alias="EVENT_SOURCE")


class TokenSettings(FunctionSettings):
    token_signing_key_id: str = Field(alias="TOKEN_SIGNING_KEY_ID", min_length=1)
    token_issuer: str = Field(alias="TOKEN_ISSUER", min_length=1)
    token_audience: str = Field("llm-gateway-stream", alias="TOKEN_AUDIENCE")


class RequestLogSettings(FunctionSettings):
    """The request log: records and day counters are kept this many days (TTL); reads go no further."""

    request_log_retention_days: int = Field(7, alias="REQUEST_LOG_RETENTION_DAYS", ge=1, le=365)


class RevalidationIntervalSettings(FunctionSettings):
    #: Every valid or invalid LLM is re-validated once per interval (the local stack's
    #: ``--revalidate-every`` sets fractions of a minute); a failing one backs off from it.
    revalidation_interval_minutes: float = Field(360, alias="REVALIDATION_INTERVAL_MINUTES", gt=0)

    @property
    def revalidation_interval_s(self) -> int:
        return max(1, round(self.revalidation_interval_minutes * 60))


class TargetBudgetSettings(FunctionSettings):
    """What the gateway sends one target on tenants' behalf outside live sessions (README "Limits")."""

    target_requests_per_minute: int = Field(120, alias="TARGET_REQUESTS_PER_MINUTE", ge=1)


class ValidationLimitSettings(TargetBudgetSettings, RevalidationIntervalSettings):
    """What one tenant may take of validation, and where deferred runs go back to."""

    validation_account_concurrency: int = Field(2, alias="VALIDATION_ACCOUNT_CONCURRENCY", ge=1)
    validate_min_interval_seconds: int = Field(60, alias="VALIDATE_MIN_INTERVAL_SECONDS", ge=0)
    reports_per_llm: int = Field(50, alias="REPORTS_PER_LLM", ge=1)
    validation_queue_url: str = Field("", alias="VALIDATION_QUEUE_URL")
    #: Scheduled re-validations have a queue of their own, so registrations never wait behind them.
    revalidation_queue_url: str = Field("", alias="REVALIDATION_QUEUE_URL")


class WebhookLimitSettings(TargetBudgetSettings):
    webhook_account_concurrency: int = Field(2, alias="WEBHOOK_ACCOUNT_CONCURRENCY", ge=1)
    webhook_delivery_deadline_seconds: float = Field(
        15.0, alias="WEBHOOK_DELIVERY_DEADLINE_SECONDS", gt=0, le=25
    )
    webhook_timeouts_before_disable: int = Field(5, alias="WEBHOOK_TIMEOUTS_BEFORE_DISABLE", ge=1)


# --- one model per function -----------------------------------------------------------------------


class AuthorizerSettings(TableSettings):
    """The REQUEST authorizer: account keys in the table."""


class ApiKeysSettings(EdgeSettings, TableSettings):
    """/v1/api-keys."""


class RegistrySettings(
    EdgeSettings,
    TableSettings,
    CredentialSettings,
    EventSettings,
    OutboundSettings,
    RequestLogSettings,
    RevalidationIntervalSettings,
):
    """/v1/llms (their request log; an LLM's health says its re-validation interval)."""

    idempotency_ttl_seconds: int = Field(3600, alias="IDEMPOTENCY_TTL_SECONDS", ge=1)


class ValidationApiSettings(
    EdgeSettings, TableSettings, EventSettings, OutboundSettings, ValidationLimitSettings
):
    """Validation's REST routes: no key to decrypt, so no credentials key."""


class ValidatorSettings(ValidationApiSettings, CredentialSettings):
    """The validation queues' consumer: it reads the stored keys it validates."""


class SessionTokensSettings(EdgeSettings, TableSettings, TokenSettings):
    """Mint, revoke, JWKS."""


class WebhooksSettings(EdgeSettings, TableSettings, CredentialSettings, OutboundSettings):
    """/v1/webhooks."""


class WebhookDeliverySettings(OutboundSettings, TableSettings, CredentialSettings, WebhookLimitSettings):
    """The webhook queue's consumer."""

    webhook_queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", min_length=1)


class RevalidationSchedulerSettings(TableSettings, RevalidationIntervalSettings):
    """The re-validation schedule's target."""

    #: The re-validation queue (scheduled runs only; registrations have the validation queue).
    revalidation_queue_url: str = Field(alias="REVALIDATION_QUEUE_URL", min_length=1)


class StreamSettings(
    OutboundSettings, TableSettings, CredentialSettings, TokenSettings, EventSettings, RequestLogSettings
):
    """The stream proxy (behind the Lambda Web Adapter)."""

    #: Built-ins call platform endpoints with platform keys (secret name = prefix + built-in id).
    platform_secret_prefix_override: str | None = Field(None, alias="PLATFORM_SECRET_PREFIX")
    #: Local stack only: send built-ins to this base URL (the fake provider) instead of the vendors.
    builtin_base_url: str | None = Field(None, alias="BUILTIN_BASE_URL")
    #: The stream function flushes its traffic counters this often, or after this many streams.
    health_flush_seconds: float = Field(10.0, alias="HEALTH_FLUSH_SECONDS", gt=0)
    health_flush_streams: int = Field(100, alias="HEALTH_FLUSH_STREAMS", ge=1)
    #: It writes its request records this often, or after this many.
    request_log_flush_seconds: float = Field(10.0, alias="REQUEST_LOG_FLUSH_SECONDS", gt=0)
    request_log_flush_records: int = Field(100, alias="REQUEST_LOG_FLUSH_RECORDS", ge=1)
    #: Powertools' own switch, read here too: the local stack and the tests write no EMF.
    metrics_disabled: bool = Field(False, alias="POWERTOOLS_METRICS_DISABLED")
    metrics_namespace: str = Field("LlmGateway", alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)

    @property
    def platform_secret_prefix(self) -> str:
        return self.platform_secret_prefix_override or f"{self.secret_name_prefix}platform/"


#: Each function's settings model, by its template logical id.
FUNCTION_SETTINGS: dict[str, type[FunctionSettings]] = {
    "AuthorizerFunction": AuthorizerSettings,
    "ApiKeysFunction": ApiKeysSettings,
    "RegistryFunction": RegistrySettings,
    "ValidatorFunction": ValidatorSettings,
    "ValidatorApiFunction": ValidationApiSettings,
    "SessionTokensFunction": SessionTokensSettings,
    "WebhooksFunction": WebhooksSettings,
    "WebhookDeliveryFunction": WebhookDeliverySettings,
    "RevalidationSchedulerFunction": RevalidationSchedulerSettings,
    "StreamProxyFunction": StreamSettings,
}
