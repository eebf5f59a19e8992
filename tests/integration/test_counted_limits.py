"""Per-account limits as conditions of the write (moto in-process): the limit holds, deletes give
the room back, and items from before the counter delete cleanly. (Concurrent creates are tested
through the local stack, tests/e2e/test_tenant_isolation_e2e.py: in-process moto applies a
transaction in unlocked steps, which DynamoDB and the local stack's moto never do.)"""

from __future__ import annotations

from datetime import UTC, datetime

from llm_gateway.domain.ports import LimitReached
from llm_gateway.models.llm import StoredLlm
from llm_gateway.models.webhook import StoredWebhook
from tests.integration.conftest import AwsStack

ACCOUNT = "acct_limits"


def llm(llm_id: str, account: str = ACCOUNT) -> StoredLlm:
    return StoredLlm.model_validate(
        {
            "id": llm_id,
            "displayName": "bot",
            "llmFormat": "openai",
            "modelName": "m",
            "version": 1,
            "urls": [{"url": "https://api.example.com/v1"}],
            "status": "pending",
            "accountId": account,
            "secretRef": "arn:secret",
        }  # fmt: skip
    )


def webhook(webhook_id: str) -> StoredWebhook:
    return StoredWebhook(
        id=webhook_id, url="https://hooks.example.com/x", event_types=["llm.health_changed"],
        created_at=datetime.now(UTC), account_id=ACCOUNT, secret_ref="arn:secret",
    )  # fmt: skip


def _attempt(create: object, item: object, limit: int) -> bool:
    try:
        create(item, limit=limit)  # type: ignore[operator]
    except LimitReached:
        return False
    return True


def test_llm_creates_stop_exactly_at_the_limit(aws: AwsStack) -> None:
    repo = aws.registry.llm_repository
    results = [_attempt(repo.create, llm(f"llm-{i}"), 3) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert len(repo.list(ACCOUNT)) == 3
    assert repo.list("acct_other") == [], "another account's count is its own"
    _attempt(repo.create, llm("other-1", "acct_other"), 3)
    assert len(repo.list("acct_other")) == 1

    victim = repo.list(ACCOUNT)[0]
    assert repo.delete(ACCOUNT, victim.id)
    assert not repo.delete(ACCOUNT, victim.id), "a second delete finds nothing (and uncounts nothing)"
    assert _attempt(repo.create, llm("llm-again"), 3), "a delete gives its place back"
    assert not _attempt(repo.create, llm("llm-one-too-many"), 3)


def test_webhook_creates_stop_exactly_at_the_limit(aws: AwsStack) -> None:
    repo = aws.webhooks.webhook_repository
    results = [_attempt(repo.add, webhook(f"wh_{i}"), 10) for i in range(12)]
    assert results.count(True) == 10 and results[-2:] == [False, False]
    assert len(repo.list(ACCOUNT)) == 10
    assert repo.delete(ACCOUNT, "wh_0")
    assert _attempt(repo.add, webhook("wh_again"), 10)


def test_an_item_from_before_the_counter_deletes_without_going_negative(aws: AwsStack) -> None:
    repo = aws.registry.llm_repository
    legacy = llm("legacy")
    aws.client("dynamodb").put_item(TableName=aws.env["TABLE_NAME"], Item=repo._item(legacy))
    assert repo.delete(ACCOUNT, "legacy")
    assert repo.get(ACCOUNT, "legacy") is None
    assert _attempt(repo.create, llm("a"), 1)
    assert not _attempt(repo.create, llm("b"), 1), "the counter did not go below zero"


def test_the_limit_is_per_kind(aws: AwsStack) -> None:
    assert _attempt(aws.registry.llm_repository.create, llm("one"), 1)
    assert _attempt(aws.webhooks.webhook_repository.add, webhook("wh_one"), 1)


def test_reports_are_capped_per_llm_newest_kept(aws: AwsStack) -> None:
    from datetime import timedelta

    from llm_gateway.adapters.dynamodb import DynamoReportRepository
    from llm_gateway.models.report import Report

    repo = DynamoReportRepository(aws.client("dynamodb"), aws.env["TABLE_NAME"], keep=3)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for n in range(6):
        report = Report(
            compatible=bool(n % 2), llm_format="openai", endpoint="https://api.example.com/v1",
            checked_at=start + timedelta(minutes=n), checks=[],
        )  # fmt: skip
        repo.add(ACCOUNT, "llm-1", report)
    repo.add(ACCOUNT, "llm-2", report)
    items = [i["SK"]["S"] for i in aws.scan_table() if i["SK"]["S"].startswith("REPORT#llm-1#")]
    assert len(items) == 3
    assert min(items) > f"REPORT#llm-1#{(start + timedelta(minutes=2)).isoformat()}", "the oldest went"
    latest = repo.latest(ACCOUNT, "llm-1")
    assert latest is not None and latest.checked_at == start + timedelta(minutes=5)
    assert any(i["SK"]["S"].startswith("REPORT#llm-2#") for i in aws.scan_table()), "per LLM"
