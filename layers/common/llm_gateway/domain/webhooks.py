"""Webhooks: register, list, delete; fan an event out to an account's endpoints; deliver one, signed.

Signatures follow Standard Webhooks (standardwebhooks.com), so receivers verify them with any of
its libraries: headers ``webhook-id`` (the same on every retry), ``webhook-timestamp`` (this
attempt, Unix seconds) and ``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(secret,
"<id>.<timestamp>.<body>")), where the secret is the bytes behind ``whsec_<base64>``. The body is
``{"type", "timestamp", "data"}``.

Delivery: 2xx is done; 410 Gone disables the endpoint (nothing more is sent); anything else, or
no answer, is retried with a growing delay (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 12 h, ±10 %
jitter, ``Retry-After`` honoured), then the message goes to the dead-letter queue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from llm_gateway.domain.fairness import OutboundLimits, Slots, account_slot
from llm_gateway.domain.loops import OwnOrigins
from llm_gateway.domain.ports import LimitReached, UrlGuard
from llm_gateway.domain.registry import check_endpoint_urls
from llm_gateway.errors import Conflict, NotFound, TransportError, TransportKind
from llm_gateway.models.webhook import (
    NewWebhook,
    StoredWebhook,
    WebhookCreate,
    WebhookDelivery,
    WebhookList,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret
SECRET_BYTES = 32  # the spec asks for 24 to 64
MAX_WEBHOOKS_PER_ACCOUNT = 10
#: Seconds to wait before attempt n + 1 (n = attempts so far); SQS visibility tops out at 12 h.
RETRY_DELAYS_S = (5, 300, 1800, 7200, 18000, 36000, 43200)
MAX_RETRY_DELAY_S = 43200
#: Detail types on the bus -> Standard Webhooks event types.
EVENT_TYPES = {"LlmHealthChanged": "llm.health_changed"}


class WebhookRepository(Protocol):
    def add(self, webhook: StoredWebhook, limit: int) -> None:
        """Raises ``LimitReached`` when the account already has ``limit`` webhooks (atomically)."""
        ...

    def list(self, account_id: str) -> list[StoredWebhook]: ...
    def get(self, account_id: str, webhook_id: str) -> StoredWebhook | None: ...
    def delete(self, account_id: str, webhook_id: str) -> bool: ...
    def disable(self, account_id: str, webhook_id: str, reason: str) -> None: ...
    def note_timeout(self, account_id: str, webhook_id: str) -> int: ...
    def clear_timeouts(self, account_id: str, webhook_id: str) -> None: ...


class SecretStore(Protocol):
    """The LLM key store's interface (``SecretsManagerCredentialStore``), under its own folder."""

    def create(self, account_id: str, llm_id: str, secret: str) -> str: ...
    def read(self, account_id: str, llm_id: str, secret_ref: str) -> str: ...
    def delete(self, account_id: str, llm_id: str) -> None: ...


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def create_webhook(
    repo: WebhookRepository,
    store: SecretStore,
    guard: UrlGuard,
    account_id: str,
    request: WebhookCreate,
    own: OwnOrigins | None = None,
) -> NewWebhook:
    """The URL passes the LLM URL checks first (the gateway's own origins ``own`` included: a
    webhook there would make the gateway call itself); the secret is stored encrypted and shown once."""
    check_endpoint_urls(guard, [request], own)
    webhook_id = f"wh_{uuid.uuid4().hex}"
    secret = new_secret()
    secret_ref = store.create(account_id, webhook_id, secret)
    stored = StoredWebhook(
        id=webhook_id,
        url=request.url,
        description=request.description,
        event_types=list(dict.fromkeys(request.event_types)),
        created_at=datetime.now(UTC),
        account_id=account_id,
        secret_ref=secret_ref,
    )
    try:
        repo.add(stored, limit=MAX_WEBHOOKS_PER_ACCOUNT)
    except LimitReached:
        store.delete(account_id, webhook_id)
        raise Conflict(
            f"An account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first.",
            code="too_many_webhooks",
        ) from None
    except Exception:
        store.delete(account_id, webhook_id)
        raise
    return NewWebhook(**stored.public().model_dump(), secret=secret)


def list_webhooks(repo: WebhookRepository, account_id: str) -> WebhookList:
    return WebhookList(data=[w.public() for w in repo.list(account_id)])


def delete_webhook(repo: WebhookRepository, store: SecretStore, account_id: str, webhook_id: str) -> None:
    if not repo.delete(account_id, webhook_id):
        raise NotFound(f"No webhook with id {webhook_id!r}.", code="webhook_not_found")
    store.delete(account_id, webhook_id)


def message_id(event_id: str, webhook_id: str) -> str:
    digest = hashlib.sha256(f"{event_id}:{webhook_id}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


def fan_out(repo: WebhookRepository, envelope: Mapping[str, Any]) -> list[WebhookDelivery]:
    """One delivery per enabled endpoint of the event's account that takes its type."""
    event_type = EVENT_TYPES.get(str(envelope.get("detail-type")))
    detail = envelope.get("detail") or {}
    account_id = str(detail.get("accountId") or "")
    if event_type is None or not account_id:
        return []
    payload = json.dumps(
        {"type": event_type, "timestamp": envelope.get("time") or detail.get("since"), "data": detail},
        separators=(",", ":"),
    )
    return [
        WebhookDelivery(
            account_id=account_id,
            webhook_id=hook.id,
            message_id=message_id(str(envelope.get("id") or payload), hook.id),
            payload=payload,
        )
        for hook in repo.list(account_id)
        if hook.enabled and event_type in hook.event_types
    ]


class WebhookSender(Protocol):
    def post(self, url: str, body: str, headers: Mapping[str, str]) -> tuple[int, float | None]:
        """``(status, Retry-After seconds)``; raises ``TransportError`` when no answer came."""
        ...


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    #: Seconds until the next attempt when it must be retried; ``None`` when it must not.
    retry_in_s: int | None = None
    status: int | None = None


def retry_delay(
    attempts: int, retry_after_s: float | None = None, jitter: Callable[[], float] = random.random
) -> int:
    """Backoff after ``attempts`` failed attempts, ±10 % jitter; ``Retry-After`` when it is longer."""
    base = RETRY_DELAYS_S[min(max(attempts, 1), len(RETRY_DELAYS_S)) - 1]
    delay = base * (0.9 + 0.2 * jitter())
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return int(max(1, min(MAX_RETRY_DELAY_S, delay)))


@dataclass
class WebhookDeliverer:
    repo: WebhookRepository
    store: SecretStore
    sender: WebhookSender
    clock: Callable[[], float]
    #: Per-account delivery slots and per-target budgets (``domain.fairness``); ``Deferred`` when
    #: either has no room.
    slots: Slots | None = None
    limits: OutboundLimits | None = None
    #: Deliveries in a row without a complete answer within ``deadline_s`` that disable an endpoint.
    timeouts_before_disable: int = 5
    deadline_s: float = 15.0

    def deliver(self, delivery: WebhookDelivery, attempts: int) -> DeliveryResult:
        """One attempt (``attempts`` counts this one). A deleted or disabled endpoint is done."""
        hook = self.repo.get(delivery.account_id, delivery.webhook_id)
        if hook is None or not hook.enabled:
            return DeliveryResult(delivered=False)
        with account_slot(self.slots, hook.account_id, "webhook deliveries"):
            if self.limits is not None:
                self.limits.admit_or_defer([hook.url], 1)
            return self._attempt(hook, delivery, attempts)

    def _attempt(self, hook: StoredWebhook, delivery: WebhookDelivery, attempts: int) -> DeliveryResult:
        secret = self.store.read(hook.account_id, hook.id, hook.secret_ref)
        headers = signed_headers(secret, delivery.message_id, int(self.clock()), delivery.payload)
        try:
            status, retry_after = self.sender.post(hook.url, delivery.payload, headers)
        except TransportError as exc:
            if exc.kind is TransportKind.TIMEOUT and self._timed_out_for_good(hook):
                return DeliveryResult(delivered=False)
            return DeliveryResult(delivered=False, retry_in_s=retry_delay(attempts))
        if hook.consecutive_timeouts:
            self.repo.clear_timeouts(hook.account_id, hook.id)
        if 200 <= status < 300:
            return DeliveryResult(delivered=True, status=status)
        if status == 410:
            self.repo.disable(hook.account_id, hook.id, "the endpoint answered 410 Gone")
            return DeliveryResult(delivered=False, status=status)
        return DeliveryResult(delivered=False, retry_in_s=retry_delay(attempts, retry_after), status=status)

    def _timed_out_for_good(self, hook: StoredWebhook) -> bool:
        """Count a timeout; at ``timeouts_before_disable`` in a row the endpoint is disabled, saying
        why in ``GET /v1/webhooks`` (a slow receiver must not hold delivery slots for ever)."""
        count = self.repo.note_timeout(hook.account_id, hook.id)
        if count < self.timeouts_before_disable:
            return False
        self.repo.disable(
            hook.account_id,
            hook.id,
            f"disabled after {count} deliveries in a row got no complete answer within "
            f"{self.deadline_s:g} s; answer faster (2xx first, work after), then delete the "
            "webhook and add it again",
        )
        return True
