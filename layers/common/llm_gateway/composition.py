"""Builds adapters from settings once per container and hands them to the domain.

Handlers call these factories; nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from llm_gateway.adapters import aws
from llm_gateway.adapters.events import EventBridgePublisher
from llm_gateway.adapters.secrets import SecretsManagerCredentialStore
from llm_gateway.domain.loops import HopMarker, OwnOrigins
from llm_gateway.settings import Settings, get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from llm_gateway.adapters.address_policy import AddressPolicy
    from llm_gateway.adapters.dynamodb import (
        DynamoAccountRepository,
        DynamoLlmRepository,
        DynamoReportRepository,
        DynamoSessionRepository,
        DynamoValidationRuns,
    )
    from llm_gateway.adapters.kms_signer import KmsSigner
    from llm_gateway.adapters.metrics import StreamMetrics
    from llm_gateway.adapters.session_state import DynamoSessionStateStore
    from llm_gateway.adapters.upstream_http import AiohttpUpstream
    from llm_gateway.catalog import BuiltinLlm
    from llm_gateway.domain.conformance import HttpPort
    from llm_gateway.domain.conformance.budget import RunBudget
    from llm_gateway.domain.ports import UrlGuard
    from llm_gateway.domain.proxy import StreamProxy
    from llm_gateway.domain.registry import Registry
    from llm_gateway.domain.sessions import SessionAccess, SessionService
    from llm_gateway.domain.tokens import PublicKeySet, TokenPolicy, TokenVerifier
    from llm_gateway.domain.validation import ValidationRequests, Validator
    from llm_gateway.models.report import Report


def require_settings() -> Settings:
    """Called when a handler module loads: a missing setting fails the function's init, naming
    the variable (``SettingsError``), not its first request."""
    return get_settings()


@lru_cache(maxsize=1)
def credential_store() -> SecretsManagerCredentialStore:
    s = get_settings()
    return SecretsManagerCredentialStore(aws.secretsmanager(), aws.kms(), s.credentials_key_id, s.stage)


@lru_cache(maxsize=1)
def llm_repository() -> DynamoLlmRepository:
    from llm_gateway.adapters.dynamodb import DynamoLlmRepository

    return DynamoLlmRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def account_repository() -> DynamoAccountRepository:
    from llm_gateway.adapters.dynamodb import DynamoAccountRepository

    return DynamoAccountRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def event_publisher() -> EventBridgePublisher:
    s = get_settings()
    return EventBridgePublisher(aws.events(), s.event_bus_name, s.event_source)


@lru_cache(maxsize=1)
def address_policy() -> AddressPolicy:
    """The one SSRF policy of registration, probes and the proxy: public https endpoints, plus the
    private origins the local stack lists; never the local stack's own services."""
    from llm_gateway.adapters.address_policy import AddressPolicy
    from llm_gateway.origins import format_origin

    s = get_settings()
    return AddressPolicy(
        private_origins=[format_origin(origin) for origin in s.private_origins],
        refused_local_ports=s.refused_local_ports,
    )


@lru_cache(maxsize=1)
def url_guard() -> UrlGuard:
    from llm_gateway.adapters.guarded_http import GuardedHttp

    return GuardedHttp(address_policy())


@lru_cache(maxsize=1)
def hop_marker() -> HopMarker:
    """This deployment's hop marker: sent on every outbound call, refused on every inbound one."""
    s = get_settings()
    return HopMarker(stage=s.stage, value=s.hop_marker)


def own_origins() -> OwnOrigins:
    """The gateway's own origins that settings name (a custom domain; the local stack's URL)."""
    return OwnOrigins.of(get_settings().own_origins)


@lru_cache(maxsize=1)
def registry() -> Registry:
    from llm_gateway.domain.registry import Registry

    return Registry(
        llms=llm_repository(),
        credentials=credential_store(),
        events=event_publisher(),
        url_guard=url_guard(),
        own_origins=own_origins(),
    )


def reset() -> None:
    """Forget every cached adapter and the settings (tests change the environment between cases)."""
    if traffic_recorder.cache_info().currsize:  # its thread and counts belong to the old environment
        traffic_recorder().close(flush=False)
    for value in list(globals().values()):
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()
    aws.client.cache_clear()


@lru_cache(maxsize=1)
def idempotency_store() -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY#create-llm",
        expiry_attr="ttl",
        boto3_client=aws.dynamodb(),
    )


# --- session tokens -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def token_policy() -> TokenPolicy:
    from llm_gateway.domain.tokens import TokenPolicy

    s = get_settings()
    return TokenPolicy(issuer=s.token_issuer, audience=s.token_audience)


@lru_cache(maxsize=1)
def token_signer() -> KmsSigner:
    """KMS ``Sign`` on the token signing key; its public key is read on first use only."""
    from llm_gateway.adapters.kms_signer import KmsSigner

    return KmsSigner(aws.kms(), get_settings().token_signing_key_id)


@lru_cache(maxsize=1)
def public_key_set() -> PublicKeySet:
    """The verification keys, loaded once per container (one ``GetPublicKey``), then offline."""
    from llm_gateway.domain.tokens import PublicKeySet

    signer = token_signer()
    return PublicKeySet({signer.key_id: signer.public_key})


@lru_cache(maxsize=1)
def session_repository() -> DynamoSessionRepository:
    from llm_gateway.adapters.dynamodb import DynamoSessionRepository

    return DynamoSessionRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def session_service() -> SessionService:
    from llm_gateway.domain.sessions import SessionService

    return SessionService(
        sessions=session_repository(), llms=llm_repository(), signer=token_signer(), policy=token_policy()
    )


@lru_cache(maxsize=1)
def session_state_store() -> DynamoSessionStateStore:
    from llm_gateway.adapters.session_state import DynamoSessionStateStore

    return DynamoSessionStateStore(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def session_access() -> SessionAccess:
    """For the stream proxy: the session, config and key of a request, confirmed by one read.

    The stream function's role needs ``dynamodb:BatchGetItem`` on the table (one strongly
    consistent read per request), ``secretsmanager:GetSecretValue`` + ``kms:Decrypt`` for keys, and
    ``kms:GetPublicKey`` on the signing key (read once, at init); it never signs.
    """
    from llm_gateway.domain.sessions import SessionAccess

    return SessionAccess(
        store=session_state_store(),
        read_key=stored_key,
        builtin_endpoint=builtin_endpoint,
        leeway_seconds=token_policy().leeway_seconds,
    )


@lru_cache(maxsize=1)
def stream_token_verifier() -> TokenVerifier:
    """Offline ES256 verification against ``public_key_set()`` (loaded once per container)."""
    from llm_gateway.domain.tokens import TokenVerifier

    return TokenVerifier(public_key_set(), token_policy())


# --- stream proxy ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def upstream_transport() -> AiohttpUpstream:
    from llm_gateway.adapters.guarded_http import AddressGuard
    from llm_gateway.adapters.upstream_http import AiohttpUpstream

    return AiohttpUpstream(AddressGuard(address_policy()), hop_headers=hop_marker().headers)


def stored_key(account_id: str, llm_id: str) -> str:
    """An LLM's current key (Secrets Manager + KMS); the stream's ``SessionAccess`` keeps it in
    memory for as long as the LLM's revision stays the same."""
    return credential_store().read_current(account_id, llm_id)


def builtin_endpoint(builtin: BuiltinLlm) -> tuple[list[str], str]:
    """A built-in's URLs and the platform key (a platform secret named after the built-in)."""
    settings = get_settings()
    urls = [u.url for u in builtin.urls]
    if settings.builtin_base_url:
        urls = [_rebase(url, settings.builtin_base_url) for url in urls]
    name = f"{settings.platform_secret_prefix}{builtin.id}"
    return urls, aws.secretsmanager().get_secret_value(SecretId=name)["SecretString"]


def _rebase(url: str, base: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    target, original = urlsplit(base), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, original.path, original.query, ""))


@lru_cache(maxsize=1)
def stream_proxy() -> StreamProxy:
    from llm_gateway.domain.proxy import StreamProxy

    return StreamProxy(
        verify_token=stream_token_verifier().verify, sessions=session_access(), transport=upstream_transport()
    )


@lru_cache(maxsize=1)
def stream_metrics() -> StreamMetrics:
    from llm_gateway.adapters.metrics import StreamMetrics

    return StreamMetrics()


# --- validation -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def probe_http() -> HttpPort:
    """One guarded client per container for the conformance probes (never redirected). No
    keep-alive: each exchange opens its own connection, the one its wall-clock deadline may cut."""
    import httpx

    from llm_gateway.adapters.guarded_http import GuardedHttp
    from llm_gateway.adapters.probe_http import ProbeHttpClient
    from llm_gateway.domain.conformance import HttpPort

    guarded = GuardedHttp(
        address_policy(), limits=httpx.Limits(max_connections=100, max_keepalive_connections=0)
    )
    return HttpPort(
        client=ProbeHttpClient(guarded.sync_client(), hop_headers=hop_marker().headers), guard=guarded
    )


def config_probe() -> Callable[[Any, str, RunBudget], Report]:
    """Runs the conformance suite on any LLM-shaped config (stored, or an unsaved create body),
    within the run's budget."""
    from llm_gateway.domain.conformance import EndpointConfig, run_conformance

    return lambda llm, api_key, budget: run_conformance(
        EndpointConfig.from_llm(llm), api_key, probe_http(), budget=budget
    )


@lru_cache(maxsize=1)
def report_repository() -> DynamoReportRepository:
    from llm_gateway.adapters.dynamodb import DynamoReportRepository

    s = get_settings()
    return DynamoReportRepository(aws.dynamodb(), s.table_name, keep=s.reports_per_llm)


@lru_cache(maxsize=1)
def validator() -> Validator:
    from llm_gateway.domain.validation import Validator

    return Validator(
        llms=llm_repository(),
        reports=report_repository(),
        credentials=credential_store(),
        events=event_publisher(),
        probe=config_probe(),
        runs=validation_runs(),
    )


@lru_cache(maxsize=1)
def validation_runs() -> DynamoValidationRuns:
    from llm_gateway.adapters.dynamodb import DynamoValidationRuns

    return DynamoValidationRuns(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def validation_requests() -> ValidationRequests:
    from datetime import timedelta

    from llm_gateway.domain.validation import ValidationRequests

    return ValidationRequests(
        runs=validation_runs(),
        events=event_publisher(),
        min_interval=timedelta(seconds=get_settings().validate_min_interval_seconds),
    )


# --- per-account usage plans ----------------------------------------------------------------------

if TYPE_CHECKING:
    from llm_gateway.adapters.dynamodb import DynamoUsageKeyRepository
    from llm_gateway.adapters.usage_plans import ApiGatewayUsagePlans


def usage_plans() -> ApiGatewayUsagePlans:
    """API Gateway keys and usage plans (account creation only, never on a request path)."""
    from llm_gateway.adapters.usage_plans import ApiGatewayUsagePlans

    return ApiGatewayUsagePlans(aws.apigateway())


def usage_key_repository() -> DynamoUsageKeyRepository:
    from llm_gateway.adapters.dynamodb import DynamoUsageKeyRepository

    return DynamoUsageKeyRepository(aws.dynamodb(), get_settings().table_name)


# --- health: re-validation, passive traffic health, webhooks --------------------------------------

if TYPE_CHECKING:
    from llm_gateway.adapters.health_store import DynamoHealthStore
    from llm_gateway.adapters.queues import SqsWebhookQueue
    from llm_gateway.adapters.traffic_recorder import BufferedTrafficRecorder
    from llm_gateway.adapters.webhook_store import DynamoWebhookRepository
    from llm_gateway.domain.health import HealthService
    from llm_gateway.domain.revalidation import RevalidationScheduler, Revalidator
    from llm_gateway.domain.webhooks import WebhookDeliverer

HEALTH_EVENT_SOURCE = "llm-gateway.health"


@lru_cache(maxsize=1)
def health_store() -> DynamoHealthStore:
    from llm_gateway.adapters.health_store import DynamoHealthStore

    return DynamoHealthStore(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def health_service() -> HealthService:
    """Publishes ``LlmHealthChanged`` under its own source (the validation rule never sees it)."""
    from llm_gateway.domain.health import HealthService

    events = EventBridgePublisher(aws.events(), get_settings().event_bus_name, HEALTH_EVENT_SOURCE)
    return HealthService(
        store=health_store(), events=events, revalidation_interval_s=revalidation_interval_s()
    )


@lru_cache(maxsize=1)
def traffic_recorder() -> BufferedTrafficRecorder:
    """The stream app's recorder: built without touching AWS; its thread starts on the first stream."""
    from llm_gateway.adapters.traffic_recorder import BufferedTrafficRecorder
    from llm_gateway.catalog import builtin_llms

    settings = get_settings()
    return BufferedTrafficRecorder(
        lambda batch: health_service().record_traffic(batch),
        interval_s=settings.health_flush_seconds,
        max_pending=settings.health_flush_streams,
        skip_llms=frozenset(builtin_llms()),
    )


def light_probe() -> Callable[[Any, str], Report]:
    """The re-validation probe set: one streaming request per URL, no wrong-key probe."""
    from llm_gateway.domain.conformance import EndpointConfig, run_conformance
    from llm_gateway.domain.conformance.budget import validator_budget

    return lambda llm, api_key: run_conformance(
        EndpointConfig.from_llm(llm), api_key, probe_http(), light=True, budget=validator_budget(None)
    )


@lru_cache(maxsize=1)
def revalidator() -> Revalidator:
    from llm_gateway.domain.revalidation import Revalidator

    return Revalidator(
        llms=llm_repository(),
        reports=report_repository(),
        credentials=credential_store(),
        probe=light_probe(),
        health=health_service(),
        full_validation=lambda account, llm: validator().validate(account, llm),
        interval_s=revalidation_interval_s(),
    )


def revalidation_interval_s() -> int:
    return max(1, round(get_settings().revalidation_interval_minutes * 60))


@lru_cache(maxsize=1)
def revalidation_scheduler() -> RevalidationScheduler:
    from datetime import UTC, datetime

    from llm_gateway.adapters.queues import SqsRevalidationQueue
    from llm_gateway.domain.revalidation import RevalidationScheduler
    from llm_gateway.settings import SettingsError

    settings = get_settings()
    queue_url = settings.revalidation_queue_url or settings.validation_queue_url
    if not queue_url:
        raise SettingsError("missing required environment variable(s): REVALIDATION_QUEUE_URL")
    return RevalidationScheduler(
        candidates=llm_repository(),
        queue=SqsRevalidationQueue(aws.sqs(), queue_url),
        interval_s=revalidation_interval_s(),
        now=lambda: datetime.now(UTC),
        marks=revalidation_marks(),
    )


@lru_cache(maxsize=1)
def webhook_repository() -> DynamoWebhookRepository:
    from llm_gateway.adapters.webhook_store import DynamoWebhookRepository

    return DynamoWebhookRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def webhook_secrets() -> SecretsManagerCredentialStore:
    """Webhook signing secrets: KMS-sealed per tenant like LLM keys, under ``webhooks/``."""
    s = get_settings()
    return SecretsManagerCredentialStore(
        aws.secretsmanager(), aws.kms(), s.credentials_key_id, s.stage, folder="webhooks/"
    )


@lru_cache(maxsize=1)
def webhook_queue() -> SqsWebhookQueue:
    from llm_gateway.adapters.queues import SqsWebhookQueue
    from llm_gateway.settings import SettingsError

    url = get_settings().webhook_queue_url
    if not url:
        raise SettingsError("missing required environment variable(s): WEBHOOK_QUEUE_URL")
    return SqsWebhookQueue(aws.sqs(), url)


@lru_cache(maxsize=1)
def webhook_deliverer() -> WebhookDeliverer:
    import time

    from llm_gateway.adapters.guarded_http import GuardedHttp
    from llm_gateway.adapters.webhook_http import DELIVERY_TIMEOUT, GuardedWebhookSender
    from llm_gateway.domain.webhooks import WebhookDeliverer

    guarded = GuardedHttp(address_policy())
    s = get_settings()
    return WebhookDeliverer(
        repo=webhook_repository(),
        store=webhook_secrets(),
        sender=GuardedWebhookSender(
            lambda: guarded.async_client(timeout=DELIVERY_TIMEOUT),
            hop_headers=hop_marker().headers,
            deadline_s=s.webhook_delivery_deadline_seconds,
        ),
        clock=time.time,
        slots=webhook_slots(),
        limits=outbound_limits(),
        timeouts_before_disable=s.webhook_timeouts_before_disable,
        deadline_s=s.webhook_delivery_deadline_seconds,
    )


def warm_stream_clients() -> None:
    """Stream function init: the clients a request uses, built now (the stream app then opens the
    DynamoDB connection with a read of a key that never exists: the same read as a request's, so
    the role needs nothing more)."""
    upstream_transport()
    aws.secretsmanager()
    session_state_store()


# --- fairness: per-account slots, per-target budgets, deferrals (domain.fairness) -----------------

if TYPE_CHECKING:
    from llm_gateway.adapters.queues import SqsDeferrals
    from llm_gateway.adapters.shared_limits import DynamoAccountSlots, DynamoRevalidationMarks
    from llm_gateway.domain.fairness import OutboundLimits

#: A slot's lease outlives any holder: the validator's Lambda timeout (template.yaml, 90 s).
VALIDATION_SLOT_HOLD_S = 95.0


@lru_cache(maxsize=2)
def validation_slots(revalidation: bool = False) -> DynamoAccountSlots:
    """Scheduled runs have slots of their own: an account's slow re-validations never hold up its
    registrations and key rotations."""
    from llm_gateway.adapters.shared_limits import DynamoAccountSlots

    s = get_settings()
    kind = "REVALIDATION" if revalidation else "VALIDATION"
    return DynamoAccountSlots(
        aws.dynamodb(), s.table_name, kind, s.validation_account_concurrency, VALIDATION_SLOT_HOLD_S
    )


@lru_cache(maxsize=1)
def webhook_slots() -> DynamoAccountSlots:
    from llm_gateway.adapters.shared_limits import DynamoAccountSlots

    s = get_settings()
    hold = s.webhook_delivery_deadline_seconds + 5
    return DynamoAccountSlots(aws.dynamodb(), s.table_name, "WEBHOOK", s.webhook_account_concurrency, hold)


def _target_of(url: str) -> str | None:
    """The first checked address the URL's host resolves to, and the port: the key of its request
    budget (names aliased to one server share it; other ports of one address are other services)."""
    from llm_gateway.errors import EndpointBlocked

    try:
        target = url_guard().check_url(url)  # type: ignore[attr-defined]
    except EndpointBlocked:
        return None
    address = str(target.addresses[0]) if target.addresses else target.host
    return f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"


@lru_cache(maxsize=1)
def outbound_limits() -> OutboundLimits:
    from llm_gateway.adapters.shared_limits import DynamoTargetBudget
    from llm_gateway.domain.fairness import OutboundLimits

    s = get_settings()
    budget = DynamoTargetBudget(aws.dynamodb(), s.table_name, s.target_requests_per_minute)
    return OutboundLimits(budget=budget, target_of=_target_of, per_minute=s.target_requests_per_minute)


@lru_cache(maxsize=1)
def revalidation_marks() -> DynamoRevalidationMarks:
    from llm_gateway.adapters.shared_limits import DynamoRevalidationMarks

    return DynamoRevalidationMarks(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def deferrals() -> SqsDeferrals:
    from llm_gateway.adapters.queues import SqsDeferrals

    return SqsDeferrals(aws.sqs())


def validation_queue_for(revalidation: bool) -> str:
    """Where a deferred validation goes back to: scheduled runs to their own queue."""
    s = get_settings()
    return str((s.revalidation_queue_url if revalidation else None) or s.validation_queue_url)
