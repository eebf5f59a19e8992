"""Webhooks: Standard Webhooks signatures (checked with the reference library), fan-out, and what one
delivery attempt does with each kind of answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from llm_gateway.domain.webhooks import (
    MAX_RETRY_DELAY_S,
    RETRY_DELAYS_S,
    SECRET_PREFIX,
    WebhookDeliverer,
    fan_out,
    message_id,
    new_secret,
    retry_delay,
    sign,
    signed_headers,
)
from llm_gateway.errors import TransportError, TransportKind
from llm_gateway.models.webhook import StoredWebhook, WebhookCreate, WebhookDelivery

NOW = 1_764_064_800


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX))) == 32
    assert new_secret() != secret


def test_the_reference_library_verifies_our_signature() -> None:
    secret, body = new_secret(), json.dumps({"type": "llm.health_changed", "data": {"state": "failing"}})
    headers = signed_headers(secret, "msg_1", int(datetime.now(UTC).timestamp()), body)
    assert Verifier(secret).verify(body, headers) == json.loads(body)


def test_a_changed_body_or_another_secret_does_not_verify() -> None:
    secret, body = new_secret(), '{"type":"llm.health_changed"}'
    headers = signed_headers(secret, "msg_1", int(datetime.now(UTC).timestamp()), body)
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(body.replace("health", "wealth"), headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(new_secret()).verify(body, headers)


def test_the_signature_is_v1_base64_hmac_of_id_timestamp_body() -> None:
    """The spec's own scheme, computed independently of the library."""
    import hashlib
    import hmac

    key = bytes(range(32))
    secret = SECRET_PREFIX + base64.b64encode(key).decode()
    expected = hmac.new(key, b"msg_x.1700000000.{}", hashlib.sha256).digest()
    assert sign(secret, "msg_x", 1_700_000_000, "{}") == "v1," + base64.b64encode(expected).decode()


def _hook(**overrides: Any) -> StoredWebhook:
    fields: dict[str, Any] = {
        "id": "wh_1",
        "url": "https://hooks.example.com/x",
        "event_types": ["llm.health_changed"],
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "account_id": "acct_1",
        "secret_ref": "arn:secret",
    }
    return StoredWebhook.model_validate(fields | overrides)


class Repo:
    def __init__(self, *hooks: StoredWebhook) -> None:
        self.hooks = {h.id: h for h in hooks}
        self.disabled: list[str] = []

    def list(self, account_id: str) -> list[StoredWebhook]:
        return [h for h in self.hooks.values() if h.account_id == account_id]

    def get(self, account_id: str, webhook_id: str) -> StoredWebhook | None:
        hook = self.hooks.get(webhook_id)
        return hook if hook and hook.account_id == account_id else None

    def disable(self, account_id: str, webhook_id: str, reason: str) -> None:
        self.disabled.append(webhook_id)


ENVELOPE = {
    "id": "evt-1",
    "detail-type": "LlmHealthChanged",
    "time": "2026-11-25T10:15:00Z",
    "detail": {"accountId": "acct_1", "llmId": "llm-1", "state": "failing"},
}


def test_an_event_fans_out_to_the_accounts_enabled_endpoints_only() -> None:
    repo = Repo(
        _hook(id="wh_1"),
        _hook(id="wh_2", enabled=False),
        _hook(id="wh_3", account_id="acct_other"),
    )
    deliveries = fan_out(repo, ENVELOPE)
    assert [d.webhook_id for d in deliveries] == ["wh_1"]
    payload = json.loads(deliveries[0].payload)
    assert payload == {
        "type": "llm.health_changed",
        "timestamp": "2026-11-25T10:15:00Z",
        "data": ENVELOPE["detail"],
    }


def test_the_message_id_is_stable_per_event_and_endpoint() -> None:
    assert message_id("evt-1", "wh_1") == message_id("evt-1", "wh_1")
    assert message_id("evt-1", "wh_1") != message_id("evt-1", "wh_2")
    assert message_id("evt-1", "wh_1").startswith("msg_")
    assert "." not in message_id("evt-1", "wh_1")  # the spec forbids dots in the id


def test_other_events_fan_out_to_nobody() -> None:
    assert fan_out(Repo(_hook()), {**ENVELOPE, "detail-type": "LLM Validated"}) == []


class Secrets:
    def read(self, account_id: str, llm_id: str, secret_ref: str) -> str:
        return SECRET

    def create(self, account_id: str, llm_id: str, secret: str) -> str:
        return "arn"

    def delete(self, account_id: str, llm_id: str) -> None:
        pass


SECRET = new_secret()


class Sender:
    def __init__(self, answer: tuple[int, float | None] | TransportError) -> None:
        self.answer = answer
        self.posts: list[tuple[str, str, dict[str, str]]] = []

    def post(self, url: str, body: str, headers: Mapping[str, str]) -> tuple[int, float | None]:
        self.posts.append((url, body, dict(headers)))
        if isinstance(self.answer, TransportError):
            raise self.answer
        return self.answer


DELIVERY = WebhookDelivery(account_id="acct_1", webhook_id="wh_1", message_id="msg_1", payload='{"a":1}')


def _deliver(answer: Any, attempts: int = 1, repo: Repo | None = None) -> tuple[Any, Sender, Repo]:
    repo = repo or Repo(_hook())
    sender = Sender(answer)
    result = WebhookDeliverer(repo, Secrets(), sender, clock=lambda: NOW).deliver(DELIVERY, attempts)
    return result, sender, repo


def test_a_2xx_is_delivered_signed_with_this_attempts_timestamp() -> None:
    result, sender, _ = _deliver((204, None))
    assert result.delivered and result.retry_in_s is None
    url, body, headers = sender.posts[0]
    assert (url, body) == ("https://hooks.example.com/x", '{"a":1}')
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"] == sign(SECRET, "msg_1", NOW, '{"a":1}')


@pytest.mark.parametrize("status", [500, 404, 429, 302])
def test_other_answers_are_retried_with_backoff(status: int) -> None:
    result, _, _ = _deliver((status, None), attempts=3)
    assert not result.delivered and result.status == status
    assert 0.9 * RETRY_DELAYS_S[2] <= (result.retry_in_s or 0) <= 1.1 * RETRY_DELAYS_S[2]


def test_no_answer_is_retried() -> None:
    result, _, _ = _deliver(TransportError(TransportKind.CONNECT, "refused"))
    assert result.retry_in_s is not None and result.retry_in_s <= 6


def test_410_gone_disables_the_endpoint_for_good() -> None:
    result, _, repo = _deliver((410, None))
    assert result.retry_in_s is None and not result.delivered
    assert repo.disabled == ["wh_1"]


def test_a_deleted_or_disabled_endpoint_gets_nothing() -> None:
    for repo in (Repo(), Repo(_hook(enabled=False))):
        result, sender, _ = _deliver((200, None), repo=repo)
        assert result.retry_in_s is None and sender.posts == []


def test_backoff_grows_honours_retry_after_and_stays_under_12_hours() -> None:
    delays = [retry_delay(n, jitter=lambda: 0.5) for n in range(1, 12)]
    assert delays == sorted(delays) and delays[0] == 5 and max(delays) <= MAX_RETRY_DELAY_S
    assert retry_delay(1, retry_after_s=120, jitter=lambda: 0.5) == 120
    assert retry_delay(1, retry_after_s=10**9) == MAX_RETRY_DELAY_S


def test_a_webhook_url_follows_the_llm_url_rules() -> None:
    from pydantic import ValidationError

    for bad in (
        "https://user:pw@hooks.example.com/x",
        "ftp://hooks.example.com",
        "https://h.example.com/x#f",
    ):
        with pytest.raises(ValidationError):
            WebhookCreate(url=bad)
    assert WebhookCreate(url="https://hooks.example.com/x").event_types == ["llm.health_changed"]
