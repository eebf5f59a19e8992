"""The LLM config: what a customer registers (per spec), what we store, what we return."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus, urlsplit

from pydantic import AfterValidator, Field, SecretStr, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from llm_gateway.models.common import ApiModel, PageMeta
from llm_gateway.models.health import LlmHealth
from llm_gateway.redaction import is_credential_param, redact_url

MAX_SECRET_CHARS = 4096
MAX_HEADER_VALUE_CHARS = 1024
MAX_URL_CHARS = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Never in a text field: C0/C1 control characters and lone surrogates (unencodable), however the
#: JSON spelled them (raw, or escaped as \u0000).
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: A header value as it goes on the wire: visible ASCII, inner spaces only.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
#: Headers a customer may not set: credentials travel only in ``secret``; hop-by-hop headers are ours.
FORBIDDEN_HEADERS = frozenset(
    {
        "authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "cookie",
        "set-cookie", "host", "content-length", "content-type", "transfer-encoding", "connection",
        "keep-alive", "te", "trailer", "upgrade", "expect", "accept-encoding", "via", "forwarded",
    }
)  # fmt: skip
#: Header name prefixes a customer may not use either: proxy controls and AWS request signing.
FORBIDDEN_HEADER_PREFIXES = ("proxy-", "x-amz-", "x-llm-gateway-")


class LlmFormat(StrEnum):
    OPENAI = "openai"
    AZURE_OPENAI = "azure_openai"
    GEMINI = "gemini"
    ANTHROPIC = "anthropic"
    GROQ_OPENAI = "groq_openai"


class ReasoningEffort(StrEnum):
    """How hard a reasoning model thinks; ``default`` sends nothing (the model's own default)."""

    DEFAULT = "default"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ReasoningFormat(StrEnum):
    """What the client gets of a reasoning model's thoughts: ``hidden`` (the default: only the
    answer), ``parsed`` (thoughts in ``delta.reasoning_content``) or ``raw`` (as the upstream sent
    them)."""

    HIDDEN = "hidden"
    PARSED = "parsed"
    RAW = "raw"


class LlmStatus(StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"


def _no_control_chars(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{what} must not contain control characters (CR, LF, NUL, ...)")
    return value


def plain_text(value: str, what: str = "text") -> str:
    """Refuse control characters (raw or ``\\u0000``-escaped: the same once parsed) and lone
    surrogates, which no store or log could encode."""
    if _UNSAFE_TEXT.search(value):
        raise ValueError(f"{what} must not contain control characters (NUL, CR, LF, ...) or invalid Unicode")
    return value


def _credential_in_url(value: str) -> None:
    """A credential never lives in a URL: it would be stored, shown and logged with it."""
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PydanticCustomError(
            "credential_in_url",
            "url must not carry credentials (user:password@); put the key in `secret`",
        )
    for piece in parts.query.split("&"):
        name, sep, _ = piece.partition("=")
        if sep and is_credential_param(name):
            raise PydanticCustomError(
                "credential_in_url",
                "url must not carry a credential in its query ({name}=…); put the key in `secret`, "
                "and the gateway sends it the way the provider expects (Gemini's key too)",
                {"name": unquote_plus(name)[:40]},
            )


class LlmUrl(ApiModel):
    """One upstream URL as stored and shown. What a customer sends is an ``EndpointUrl``: the rules
    apply when a URL comes in, never when a stored one is read back (an older item must stay
    readable, to be shown redacted and fixed)."""

    url: str


class EndpointUrl(LlmUrl):
    """One upstream URL sent by a customer. Syntax is checked here; addresses by the SSRF guard."""

    url: Annotated[str, StringConstraints(min_length=8, max_length=MAX_URL_CHARS)]

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        _no_control_chars(value, "url")
        if any(ch.isspace() or ch == "\\" for ch in value):
            raise ValueError("url must not contain spaces or backslashes")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http"):
            raise ValueError("url must start with https://")
        _credential_in_url(value)
        if not parts.hostname:
            raise ValueError("url must name a host")
        if parts.fragment:
            raise ValueError("url must not have a #fragment")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError("url has an invalid port") from exc
        return value


class Timeouts(ApiModel):
    """Per-LLM time limits in milliseconds. ``totalMs`` stays below the stream function's timeout."""

    connect_ms: int = Field(3_000, ge=100, le=30_000)
    first_token_ms: int = Field(20_000, ge=500, le=120_000)
    idle_ms: int = Field(20_000, ge=500, le=120_000)
    total_ms: int = Field(300_000, ge=1_000, le=840_000)
    #: No first token after this long: the request also starts on the next URL (a hedge). Absent:
    #: learned per URL from its time to first token; 0: never hedge.
    hedge_ms: int | None = Field(None, ge=0, le=120_000)


#: An API key as a request carries it: ``repr``/``str``/JSON dumps show ``**********``; only
#: ``get_secret_value()`` reveals it (the credential store, the probe).
SecretValue = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=MAX_SECRET_CHARS,
        # the document refuses what the validator refuses: whitespace and control characters
        json_schema_extra={"pattern": "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$"},
    ),
]
DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120, strip_whitespace=True),
    AfterValidator(lambda v: plain_text(v, "displayName")),
]
Description = Annotated[
    str, StringConstraints(max_length=1000), AfterValidator(lambda v: plain_text(v, "description"))
]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@+-]+$")]
DeploymentName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
ApiVersion = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")]


def check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError("header names must be 1-64 token characters (letters, digits, -)")
        if name.lower() in FORBIDDEN_HEADERS or name.lower().startswith(FORBIDDEN_HEADER_PREFIXES):
            raise ValueError(
                f"header {name!r} cannot be set: credentials go in `secret`, transport headers are ours"
            )
        if len(value) > MAX_HEADER_VALUE_CHARS:
            raise ValueError(f"header {name!r} is longer than {MAX_HEADER_VALUE_CHARS} characters")
        _no_control_chars(value, f"header {name!r}")
        if not _HEADER_VALUE.fullmatch(value):
            raise ValueError(
                f"header {name!r} must be visible ASCII, with spaces only between words (none at either end)"
            )
    return headers


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str] | None:
    if metadata is None:
        return None
    for key, value in metadata.items():
        if not 1 <= len(key) <= 64 or len(value) > 512:
            raise ValueError("metadata keys are 1-64 characters, values at most 512")
        plain_text(key, "metadata keys")
        plain_text(value, "metadata values")
    return metadata


def check_fallbacks(ids: list[str] | None) -> list[str] | None:
    if ids is not None and len(set(ids)) != len(ids):
        raise ValueError("fallbackLlmIds must be distinct")
    return ids


#: 1-2 LLM ids (the account's own or built-ins) tried in order when every URL failed before the
#: first byte, or the conversation is too long for this LLM's context (checked at write).
FallbackLlmIds = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]],
    Field(min_length=1, max_length=2),
    AfterValidator(check_fallbacks),
]
Headers = Annotated[
    dict[str, str],
    Field(
        max_length=20,
        json_schema_extra={
            "propertyNames": {"pattern": _HEADER_NAME.pattern},
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_HEADER_VALUE_CHARS,
                "pattern": f"^{_HEADER_VALUE.pattern}$",
            },
        },
    ),
    AfterValidator(check_headers),
]
Metadata = Annotated[dict[str, str], Field(max_length=20), AfterValidator(check_metadata)]


class _LlmFields(ApiModel):
    """Fields shared by every spec; each spec's subclass adds its own rules."""

    display_name: DisplayName
    description: Description | None = None
    urls: Annotated[list[EndpointUrl], Field(min_length=1, max_length=5)]
    model_name: ModelName
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    headers: Headers | None = None
    timeouts: Timeouts | None = None
    metadata: Metadata | None = None
    fallback_llm_ids: FallbackLlmIds | None = None
    reasoning_effort: ReasoningEffort | None = None
    reasoning_format: ReasoningFormat | None = None

    @field_validator("urls")
    @classmethod
    def _distinct_urls(cls, urls: list[EndpointUrl]) -> list[EndpointUrl]:
        if len({u.url for u in urls}) != len(urls):
            raise ValueError("urls must be distinct")
        return urls


def _check_secret(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if any(ch.isspace() for ch in text):
        raise ValueError("secret must not contain whitespace")
    _no_control_chars(text, "secret")
    plain_text(text, "secret")  # a lone surrogate could not be encrypted or sent
    return value


class _SecretField(ApiModel):
    secret: SecretValue

    @field_validator("secret")
    @classmethod
    def _secret_chars(cls, value: SecretStr) -> SecretStr:
        return _check_secret(value)


class OpenAiSpec(_LlmFields):
    """An OpenAI Chat Completions endpoint: the full chat URL, or a base ending in ``/v1``."""

    llm_format: Literal[LlmFormat.OPENAI]
    deployment_name: None = None
    api_version: None = None


class AzureOpenAiSpec(_LlmFields):
    """Azure OpenAI: the resource endpoint plus deployment and api-version, or an ``/openai/v1`` base."""

    llm_format: Literal[LlmFormat.AZURE_OPENAI]
    deployment_name: DeploymentName | None = None
    api_version: ApiVersion | None = None

    @model_validator(mode="after")
    def _classic_needs_deployment(self) -> AzureOpenAiSpec:
        classic = [u.url for u in self.urls if "/openai/v1" not in urlsplit(u.url).path]
        if classic and not (self.deployment_name and self.api_version):
            raise ValueError(
                "azure_openai with a resource endpoint needs deploymentName and apiVersion "
                "(or use the v1 base URL https://<resource>.openai.azure.com/openai/v1)"
            )
        return self


class GeminiSpec(_LlmFields):
    """Gemini Developer API: the API base or the full ``streamGenerateContent`` URL."""

    llm_format: Literal[LlmFormat.GEMINI]
    deployment_name: None = None
    api_version: None = None


class AnthropicSpec(_LlmFields):
    """Anthropic Messages API (or a compatible server): the API base or the full ``/v1/messages`` URL."""

    llm_format: Literal[LlmFormat.ANTHROPIC]
    deployment_name: None = None
    api_version: None = None


class GroqOpenAiSpec(_LlmFields):
    """Groq's OpenAI-compatible API (``…/openai/v1``): the OpenAI spec plus Groq's reasoning parameters."""

    llm_format: Literal[LlmFormat.GROQ_OPENAI]
    deployment_name: None = None
    api_version: None = None


class OpenAiCreate(OpenAiSpec, _SecretField):
    """Register an OpenAI-compatible endpoint."""


class AzureOpenAiCreate(AzureOpenAiSpec, _SecretField):
    """Register an Azure OpenAI endpoint."""


class GeminiCreate(GeminiSpec, _SecretField):
    """Register a Gemini endpoint."""


class AnthropicCreate(AnthropicSpec, _SecretField):
    """Register an Anthropic Messages endpoint."""


class GroqOpenAiCreate(GroqOpenAiSpec, _SecretField):
    """Register a Groq (OpenAI-compatible) endpoint."""


LlmCreate = Annotated[
    OpenAiCreate | AzureOpenAiCreate | GeminiCreate | AnthropicCreate | GroqOpenAiCreate,
    Field(discriminator="llm_format"),
]
AnySpec = OpenAiSpec | AzureOpenAiSpec | GeminiSpec | AnthropicSpec | GroqOpenAiSpec
AnyCreate = OpenAiCreate | AzureOpenAiCreate | GeminiCreate | AnthropicCreate | GroqOpenAiCreate
SPEC_BY_FORMAT: dict[LlmFormat, type[AnySpec]] = {
    LlmFormat.OPENAI: OpenAiSpec,
    LlmFormat.AZURE_OPENAI: AzureOpenAiSpec,
    LlmFormat.GEMINI: GeminiSpec,
    LlmFormat.ANTHROPIC: AnthropicSpec,
    LlmFormat.GROQ_OPENAI: GroqOpenAiSpec,
}


class LlmUpdate(ApiModel):
    """A partial update: only the fields present change. A new ``secret`` is staged, not swapped."""

    display_name: DisplayName | None = None
    description: Description | None = None
    llm_format: LlmFormat | None = None
    urls: Annotated[list[EndpointUrl], Field(min_length=1, max_length=5)] | None = None
    model_name: ModelName | None = None
    deployment_name: DeploymentName | None = None
    api_version: ApiVersion | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    headers: Headers | None = None
    timeouts: Timeouts | None = None
    metadata: Metadata | None = None
    fallback_llm_ids: FallbackLlmIds | None = None
    reasoning_effort: ReasoningEffort | None = None
    reasoning_format: ReasoningFormat | None = None
    secret: SecretValue | None = None

    @field_validator("secret")
    @classmethod
    def _secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _check_secret(value)

    @field_validator("display_name", "llm_format", "urls", "model_name", "secret", "timeouts", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Leave a field out to keep it; these cannot be cleared (null is a 400, never a 500)."""
        if value is None:
            raise ValueError("may not be null: leave the field out to keep its value")
        return value


class ValidationSummary(ApiModel):
    compatible: bool | None = None
    checked_at: datetime | None = None
    summary: str | None = None
    error_code: str | None = None
    #: The URLs (indexes in ``urls``) whose ``continuation`` check passed: a stream broken after its
    #: first byte may be continued there (the text sent so far as a prefilled assistant turn).
    continuation_urls: list[int] = Field(default_factory=list)


class Llm(ApiModel):
    """The LLM object every route returns. It never holds the secret, only ``secretHint``."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    id: str
    display_name: str
    description: str | None = None
    llm_format: LlmFormat
    urls: list[LlmUrl]
    model_name: str
    deployment_name: str | None = None
    api_version: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    metadata: dict[str, str] = Field(default_factory=dict)
    fallback_llm_ids: list[str] = Field(default_factory=list)
    reasoning_effort: ReasoningEffort | None = None
    reasoning_format: ReasoningFormat | None = None
    secret_hint: str | None = None
    status: LlmStatus
    validation: ValidationSummary = Field(default_factory=ValidationSummary)
    is_default: bool = False
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: Beside ``status``: how the LLM is doing now (``GET /v1/llms/{id}`` only; never stored here).
    health: LlmHealth | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("headers", "metadata", "timeouts", "fallback_llm_ids", mode="before")
    @classmethod
    def _absent_is_default(cls, value: Any, info: Any) -> Any:
        if value is None:
            return {"timeouts": Timeouts(), "fallback_llm_ids": []}.get(info.field_name, {})
        return value


class LlmList(ApiModel):
    data: list[Llm]
    meta: PageMeta


def secret_hint(secret: str) -> str:
    """At most the last four characters, fewer for short keys, so a hint never reveals a key."""
    shown = min(4, len(secret) // 4)
    return "…" + secret[-shown:] if shown else "…"


def spec_fields(model: Any) -> dict[str, Any]:
    """The stored (non-secret) fields of a create/spec model, in snake_case."""
    return dict(model.model_dump(mode="json", exclude={"secret"}, exclude_none=True))


class StoredLlm(Llm):
    """What the table holds for a customer LLM: the public object plus ownership and secret bookkeeping."""

    account_id: str
    secret_ref: str
    pending_secret_hint: str | None = None

    def public(self) -> Llm:
        """What an API response shows; a URL stored before credentials were refused in URLs is
        shown redacted, like every URL the gateway shows."""
        public = Llm.model_validate(
            self.model_dump(exclude={"account_id", "secret_ref", "pending_secret_hint"})
        )
        public.urls = [LlmUrl(url=redact_url(u.url)) for u in public.urls]
        return public
