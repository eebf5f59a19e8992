"""Each function's services: adapters built from that function's settings, once per container.

A handler module holds one ``ServicesSlot`` (``wiring``) of its function's services class. Nothing is built at
import: the first request (or the stream app's start-up) builds the services from the function's
settings (``from_environ``), and every later request reuses them. The local stack and the tests
hand a slot services built from explicit settings values and AWS clients (``use``) instead.

The groups below (table, edge, outbound, credentials, events, tokens) each need one settings
group; each function's class combines the groups it needs and builds its domain objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.loops import HopMarker, OwnOrigins
from llm_gateway.settings import (
    ApiKeysSettings,
    AuthorizerSettings,
    CredentialSettings,
    EdgeSettings,
    EventSettings,
    HopSettings,
    OutboundSettings,
    RegistrySettings,
    RevalidationSchedulerSettings,
    SessionTokensSettings,
    StreamSettings,
    TableSettings,
    TokenSettings,
    WebhookDeliverySettings,
    WebhooksSettings,
)
from llm_gateway.wiring import Services as Services
from llm_gateway.wiring import ServicesSlot as ServicesSlot

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
    from llm_gateway.adapters.events import EventBridgePublisher
    from llm_gateway.adapters.health_store import DynamoHealthStore
    from llm_gateway.adapters.kms_signer import KmsSigner
    from llm_gateway.adapters.metrics import StreamMetrics
    from llm_gateway.adapters.queues import SqsWebhookQueue
    from llm_gateway.adapters.secrets import SecretsManagerCredentialStore
    from llm_gateway.adapters.session_state import DynamoSessionStateStore
    from llm_gateway.adapters.traffic_recorder import BufferedTrafficRecorder
    from llm_gateway.adapters.upstream_http import AiohttpUpstream
    from llm_gateway.adapters.webhook_store import DynamoWebhookRepository
    from llm_gateway.catalog import BuiltinLlm
    from llm_gateway.domain.conformance import HttpPort
    from llm_gateway.domain.conformance.budget import RunBudget
    from llm_gateway.domain.health import HealthService
    from llm_gateway.domain.ports import UrlGuard
    from llm_gateway.domain.proxy import StreamProxy
    from llm_gateway.domain.registry import Registry
    from llm_gateway.domain.revalidation import RevalidationScheduler
    from llm_gateway.domain.sessions import SessionAccess, SessionService
    from llm_gateway.domain.tokens import PublicKeySet, TokenPolicy, TokenVerifier
    from llm_gateway.domain.webhooks import WebhookDeliverer
    from llm_gateway.models.report import Report

if TYPE_CHECKING:
    from llm_gateway.fairness_wiring import Fairness

HEALTH_EVENT_SOURCE = "llm-gateway.health"


# --- groups ---------------------------------------------------------------------------------------


class TableServices(Services):
    settings: TableSettings

    @cached_property
    def account_repository(self) -> DynamoAccountRepository:
        from llm_gateway.adapters.dynamodb import DynamoAccountRepository

        return DynamoAccountRepository(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def llm_repository(self) -> DynamoLlmRepository:
        from llm_gateway.adapters.dynamodb import DynamoLlmRepository

        return DynamoLlmRepository(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def report_repository(self) -> DynamoReportRepository:
        from llm_gateway.adapters.dynamodb import DynamoReportRepository

        return DynamoReportRepository(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def validation_runs(self) -> DynamoValidationRuns:
        from llm_gateway.adapters.dynamodb import DynamoValidationRuns

        return DynamoValidationRuns(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def session_repository(self) -> DynamoSessionRepository:
        from llm_gateway.adapters.dynamodb import DynamoSessionRepository

        return DynamoSessionRepository(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def health_store(self) -> DynamoHealthStore:
        from llm_gateway.adapters.health_store import DynamoHealthStore

        return DynamoHealthStore(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def webhook_repository(self) -> DynamoWebhookRepository:
        from llm_gateway.adapters.webhook_store import DynamoWebhookRepository

        return DynamoWebhookRepository(self.aws.dynamodb(), self.settings.table_name)


class HopServices(Services):
    settings: HopSettings

    @cached_property
    def hop_marker(self) -> HopMarker:
        """This deployment's hop marker: sent on every outbound call, refused on every inbound one."""
        return HopMarker(stage=self.settings.stage, value=self.settings.hop_marker)


class EdgeServices(HopServices):
    """What ``api.resolve`` needs of a REST function: the body limit and the hop marker."""

    settings: EdgeSettings


class OutboundServices(HopServices):
    settings: OutboundSettings

    @cached_property
    def address_policy(self) -> AddressPolicy:
        """The one SSRF policy of registration, probes and the proxy: public https endpoints, plus
        the private origins the local stack lists; never the local stack's own services."""
        from llm_gateway.adapters.address_policy import AddressPolicy
        from llm_gateway.origins import format_origin

        s = self.settings
        return AddressPolicy(
            private_origins=[format_origin(origin) for origin in s.private_origins],
            refused_local_ports=s.refused_local_ports,
        )

    @cached_property
    def url_guard(self) -> UrlGuard:
        from llm_gateway.adapters.guarded_http import GuardedHttp

        return GuardedHttp(self.address_policy)

    @cached_property
    def own_origins(self) -> OwnOrigins:
        """The gateway's own origins that settings name (a custom domain; the local stack's URL)."""
        return OwnOrigins.of(self.settings.own_origins)

    @cached_property
    def probe_http(self) -> HttpPort:
        """One guarded client per container for the conformance probes (pooled, never redirected)."""
        return probe_port(self.address_policy, self.hop_marker.headers)


class CredentialServices(Services):
    settings: CredentialSettings

    @cached_property
    def credential_store(self) -> SecretsManagerCredentialStore:
        from llm_gateway.adapters.secrets import SecretsManagerCredentialStore

        s = self.settings
        return SecretsManagerCredentialStore(
            self.aws.secretsmanager(), self.aws.kms(), s.credentials_key_id, s.stage
        )

    @cached_property
    def webhook_secrets(self) -> SecretsManagerCredentialStore:
        """Webhook signing secrets: KMS-sealed per tenant like LLM keys, under ``webhooks/``."""
        from llm_gateway.adapters.secrets import SecretsManagerCredentialStore

        s = self.settings
        return SecretsManagerCredentialStore(
            self.aws.secretsmanager(), self.aws.kms(), s.credentials_key_id, s.stage, folder="webhooks/"
        )


class EventServices(Services):
    settings: EventSettings

    @cached_property
    def event_publisher(self) -> EventBridgePublisher:
        from llm_gateway.adapters.events import EventBridgePublisher

        return EventBridgePublisher(
            self.aws.events(), self.settings.event_bus_name, self.settings.event_source
        )

    @cached_property
    def health_events(self) -> EventBridgePublisher:
        """``LlmHealthChanged`` goes out under its own source (the validation rule never sees it)."""
        from llm_gateway.adapters.events import EventBridgePublisher

        return EventBridgePublisher(self.aws.events(), self.settings.event_bus_name, HEALTH_EVENT_SOURCE)


class TokenServices(Services):
    settings: TokenSettings

    @cached_property
    def token_policy(self) -> TokenPolicy:
        from llm_gateway.domain.tokens import TokenPolicy

        return TokenPolicy(issuer=self.settings.token_issuer, audience=self.settings.token_audience)

    @cached_property
    def token_signer(self) -> KmsSigner:
        """KMS ``Sign`` on the token signing key; its public key is read on first use only."""
        from llm_gateway.adapters.kms_signer import KmsSigner

        return KmsSigner(self.aws.kms(), self.settings.token_signing_key_id)

    @cached_property
    def public_key_set(self) -> PublicKeySet:
        """The verification keys, loaded once per container (one ``GetPublicKey``), then offline."""
        from llm_gateway.domain.tokens import PublicKeySet

        return PublicKeySet({self.token_signer.key_id: self.token_signer.public_key})

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Offline ES256 verification against ``public_key_set`` (loaded once per container)."""
        from llm_gateway.domain.tokens import TokenVerifier

        return TokenVerifier(self.public_key_set, self.token_policy)


# --- builders shared by several functions and the CLI ---------------------------------------------


def probe_port(policy: AddressPolicy, hop_headers: Mapping[str, str] | None = None) -> HttpPort:
    """The conformance probes' HTTP: one guarded, never-redirected client (``check`` too). No
    keep-alive: each exchange opens its own connection, the one its wall-clock deadline may cut."""
    import httpx

    from llm_gateway.adapters.guarded_http import GuardedHttp
    from llm_gateway.adapters.probe_http import ProbeHttpClient
    from llm_gateway.domain.conformance import HttpPort

    guarded = GuardedHttp(policy, limits=httpx.Limits(max_connections=100, max_keepalive_connections=0))
    return HttpPort(
        client=ProbeHttpClient(guarded.sync_client(), hop_headers=dict(hop_headers or {})), guard=guarded
    )


def config_probe(http: HttpPort) -> Callable[[Any, str, RunBudget], Report]:
    """Runs the conformance suite on any LLM-shaped config (stored, or an unsaved create body),
    within the run's budget."""
    from llm_gateway.domain.conformance import EndpointConfig, run_conformance

    return lambda llm, api_key, budget: run_conformance(
        EndpointConfig.from_llm(llm), api_key, http, budget=budget
    )


def health_service(
    store: DynamoHealthStore, events: EventBridgePublisher, revalidation_interval_s: int | None = None
) -> HealthService:
    from llm_gateway.domain.health import HealthService

    return HealthService(store=store, events=events, revalidation_interval_s=revalidation_interval_s)


# --- one class per function -----------------------------------------------------------------------


class AuthorizerServices(TableServices):
    settings_model = AuthorizerSettings
    settings: AuthorizerSettings


class ApiKeysServices(EdgeServices, TableServices):
    settings_model = ApiKeysSettings
    settings: ApiKeysSettings


class RegistryServices(EdgeServices, TableServices, CredentialServices, EventServices, OutboundServices):
    settings_model = RegistrySettings
    settings: RegistrySettings

    @cached_property
    def registry(self) -> Registry:
        from llm_gateway.domain.registry import Registry

        return Registry(
            llms=self.llm_repository,
            credentials=self.credential_store,
            events=self.event_publisher,
            url_guard=self.url_guard,
            own_origins=self.own_origins,
        )

    @cached_property
    def health_service(self) -> HealthService:
        return health_service(self.health_store, self.health_events, self.settings.revalidation_interval_s)

    @cached_property
    def idempotency_store(self) -> DynamoDBPersistenceLayer:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(
            table_name=self.settings.table_name,
            key_attr="PK",
            sort_key_attr="SK",
            static_pk_value="IDEMPOTENCY#create-llm",
            expiry_attr="ttl",
            boto3_client=self.aws.dynamodb(),
        )


class SessionTokensServices(EdgeServices, TableServices, TokenServices):
    settings_model = SessionTokensSettings
    settings: SessionTokensSettings

    @cached_property
    def session_service(self) -> SessionService:
        from llm_gateway.domain.sessions import SessionService

        return SessionService(
            sessions=self.session_repository,
            llms=self.llm_repository,
            signer=self.token_signer,
            policy=self.token_policy,
        )


class WebhooksServices(EdgeServices, TableServices, CredentialServices, OutboundServices):
    settings_model = WebhooksSettings
    settings: WebhooksSettings


class WebhookDeliveryServices(OutboundServices, TableServices, CredentialServices):
    settings_model = WebhookDeliverySettings
    settings: WebhookDeliverySettings

    @cached_property
    def webhook_queue(self) -> SqsWebhookQueue:
        from llm_gateway.adapters.queues import SqsWebhookQueue

        return SqsWebhookQueue(self.aws.sqs(), self.settings.webhook_queue_url)

    @cached_property
    def webhook_deliverer(self) -> WebhookDeliverer:
        import time

        from llm_gateway.adapters.guarded_http import GuardedHttp
        from llm_gateway.adapters.webhook_http import DELIVERY_TIMEOUT, GuardedWebhookSender
        from llm_gateway.domain.webhooks import WebhookDeliverer

        guarded, s = GuardedHttp(self.address_policy), self.settings
        deadline = s.webhook_delivery_deadline_seconds
        return WebhookDeliverer(
            repo=self.webhook_repository,
            store=self.webhook_secrets,
            sender=GuardedWebhookSender(
                lambda: guarded.async_client(timeout=DELIVERY_TIMEOUT),
                hop_headers=self.hop_marker.headers,
                deadline_s=deadline,
            ),
            clock=time.time,
            slots=self.fairness.slots("WEBHOOK", deadline + 5),
            limits=self.fairness.outbound_limits,
            timeouts_before_disable=s.webhook_timeouts_before_disable,
            deadline_s=deadline,
        )

    @cached_property
    def fairness(self) -> Fairness:
        from llm_gateway.fairness_wiring import Fairness

        s = self.settings
        return Fairness(
            self.aws, s.table_name, self.url_guard,
            per_minute=s.target_requests_per_minute, account_slots=s.webhook_account_concurrency,
        )  # fmt: skip


class RevalidationSchedulerServices(TableServices):
    settings_model = RevalidationSchedulerSettings
    settings: RevalidationSchedulerSettings

    @cached_property
    def revalidation_scheduler(self) -> RevalidationScheduler:
        from datetime import UTC, datetime

        from llm_gateway.adapters.queues import SqsRevalidationQueue
        from llm_gateway.adapters.shared_limits import DynamoRevalidationMarks
        from llm_gateway.domain.revalidation import RevalidationScheduler

        s = self.settings
        return RevalidationScheduler(
            candidates=self.llm_repository,
            queue=SqsRevalidationQueue(self.aws.sqs(), s.revalidation_queue_url),
            interval_s=s.revalidation_interval_s,
            now=lambda: datetime.now(UTC),
            marks=DynamoRevalidationMarks(self.aws.dynamodb(), s.table_name),
        )


class StreamServices(OutboundServices, TableServices, CredentialServices, TokenServices, EventServices):
    """The stream function's role needs ``dynamodb:BatchGetItem`` on the table (one strongly
    consistent read per request), ``secretsmanager:GetSecretValue`` + ``kms:Decrypt`` for keys, and
    ``kms:GetPublicKey`` on the signing key (read once, at init); it never signs."""

    settings_model = StreamSettings
    settings: StreamSettings

    @cached_property
    def session_state_store(self) -> DynamoSessionStateStore:
        from llm_gateway.adapters.session_state import DynamoSessionStateStore

        return DynamoSessionStateStore(self.aws.dynamodb(), self.settings.table_name)

    @cached_property
    def session_access(self) -> SessionAccess:
        """The session, config and key of a request, confirmed by one read."""
        from llm_gateway.domain.sessions import SessionAccess

        return SessionAccess(
            store=self.session_state_store,
            read_key=self.stored_key,
            builtin_endpoint=self.builtin_endpoint,
            leeway_seconds=self.token_policy.leeway_seconds,
        )

    def stored_key(self, account_id: str, llm_id: str) -> str:
        """An LLM's current key (Secrets Manager + KMS); ``SessionAccess`` keeps it in memory for
        as long as the LLM's revision stays the same."""
        return self.credential_store.read_current(account_id, llm_id)

    def builtin_endpoint(self, builtin: BuiltinLlm) -> tuple[list[str], str]:
        """A built-in's URLs and the platform key (a platform secret named after the built-in)."""
        s = self.settings
        urls = [u.url for u in builtin.urls]
        if s.builtin_base_url:
            urls = [_rebase(url, s.builtin_base_url) for url in urls]
        name = f"{s.platform_secret_prefix}{builtin.id}"
        return urls, self.aws.secretsmanager().get_secret_value(SecretId=name)["SecretString"]

    @cached_property
    def upstream_transport(self) -> AiohttpUpstream:
        from llm_gateway.adapters.guarded_http import AddressGuard
        from llm_gateway.adapters.upstream_http import AiohttpUpstream

        return AiohttpUpstream(AddressGuard(self.address_policy), hop_headers=self.hop_marker.headers)

    @cached_property
    def stream_proxy(self) -> StreamProxy:
        from llm_gateway.domain.proxy import StreamProxy
        from llm_gateway.domain.token_memory import RememberedVerifications as Remembered

        return StreamProxy(  # verify_token (remembered per token until it expires), sessions, transport
            Remembered(self.token_verifier.verify).verify, self.session_access, self.upstream_transport
        )

    @cached_property
    def stream_metrics(self) -> StreamMetrics:
        from llm_gateway.adapters.metrics import StreamMetrics

        s = self.settings
        return StreamMetrics(enabled=not s.metrics_disabled, namespace=s.metrics_namespace)

    @cached_property
    def health_service(self) -> HealthService:
        return health_service(self.health_store, self.health_events)

    @cached_property
    def traffic_recorder(self) -> BufferedTrafficRecorder:
        """Built without touching AWS; its thread starts on the first stream."""
        from llm_gateway.adapters.traffic_recorder import BufferedTrafficRecorder
        from llm_gateway.catalog import builtin_llms

        s = self.settings
        return BufferedTrafficRecorder(
            lambda batch: self.health_service.record_traffic(batch),
            interval_s=s.health_flush_seconds,
            max_pending=s.health_flush_streams,
            skip_llms=frozenset(builtin_llms()),
        )

    def warm_clients(self) -> None:
        """Stream function init: the clients a request uses, built now (the stream app then opens
        the DynamoDB connection with a read of a key that never exists: the same read as a
        request's, so the role needs nothing more)."""
        _ = self.upstream_transport, self.session_state_store, self.hop_marker, self.stream_metrics
        self.aws.secretsmanager()
        warm_request_models()

    def close(self) -> None:
        if "traffic_recorder" in self.__dict__:  # its thread and counts belong to these services
            self.traffic_recorder.close(flush=False)


def warm_request_models() -> None:
    """The models a stream request validates, built at init: API models build on first use
    (``defer_build``), so a function pays only for those it uses, and the stream pays here."""
    from llm_gateway.models.llm import StoredLlm
    from llm_gateway.models.session import SessionRecord

    for model in (StoredLlm, SessionRecord):
        model.model_rebuild()


def _rebase(url: str, base: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    target, original = urlsplit(base), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, original.path, original.query, ""))


# The validator's services live in their own module (this one's size); they are this module's too.
from llm_gateway.validation_services import ValidationApiServices, ValidatorServices  # noqa: E402

__all__ = ["ValidationApiServices", "ValidatorServices"]
