"""Requested validation runs with in-memory fakes: POST /validate queues one run (or joins the pending
one), the validator reports under that run's id within its budget, and the run settles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llm_gateway.domain.conformance.budget import RunBudget
from llm_gateway.domain.validation import (
    LLM_VALIDATED,
    LLM_VALIDATION_REQUESTED,
    PENDING_RUN_EXPIRY,
    ValidationRequests,
    Validator,
)
from llm_gateway.models.llm import StoredLlm
from llm_gateway.models.report import Report, ValidationRun, ValidationRunStatus
from tests.unit.test_registry_domain import Events, MemoryLlms

ACCOUNT = "acct-a"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class MemoryRuns:
    """``ValidationRuns`` with the DynamoDB adapter's rules: one pending run per LLM at a time."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], tuple[ValidationRun, datetime]] = {}
        self.marks: list[tuple[str, ValidationRunStatus]] = []

    def claim(
        self,
        account_id: str,
        llm_id: str,
        run: ValidationRun,
        expires_at: datetime,
        finished_before: datetime | None = None,
    ) -> tuple[ValidationRun, bool]:
        pending = self.pending(account_id, llm_id, run.requested_at)
        if pending is not None:
            return pending, False
        self.items[(account_id, llm_id)] = (run, expires_at)
        return run, True

    def pending(self, account_id: str, llm_id: str, now: datetime) -> ValidationRun | None:
        found = self.items.get((account_id, llm_id))
        if found is None or found[0].status is ValidationRunStatus.DONE or found[1] < now:
            return None
        return found[0]

    def mark(self, account_id: str, llm_id: str, validation_id: str, status: ValidationRunStatus) -> None:
        self.marks.append((validation_id, status))
        found = self.items.get((account_id, llm_id))
        if found is not None and found[0].validation_id == validation_id:
            self.items[(account_id, llm_id)] = (found[0].model_copy(update={"status": status}), found[1])


class Reports:
    def __init__(self) -> None:
        self.added: list[Report] = []

    def add(self, account_id: str, llm_id: str, report: Report) -> None:
        self.added.append(report)

    def latest(self, account_id: str, llm_id: str) -> Report | None:
        return self.added[-1] if self.added else None


class Credentials:
    def __init__(self, pending: str | None = None) -> None:
        self.staged = pending

    def read(self, account_id: str, llm_id: str, secret_ref: str, stage: str = "AWSCURRENT") -> str:
        return self.staged if stage == "AWSPENDING" and self.staged else "current-key"

    def has_pending(self, account_id: str, llm_id: str) -> bool:
        return self.staged is not None

    def promote_pending(self, account_id: str, llm_id: str) -> None:
        self.staged = None

    def discard_pending(self, account_id: str, llm_id: str) -> None:
        self.staged = None


def stored_llm(llm_id: str = "llm-1") -> StoredLlm:
    return StoredLlm.model_validate(
        {
            "id": llm_id,
            "displayName": "bot",
            "llmFormat": "openai",
            "modelName": "m",
            "version": 3,
            "urls": [{"url": "https://api.example.com/v1"}],
            "status": "valid",
            "accountId": ACCOUNT,
            "secretRef": "arn:secret",
        }  # fmt: skip
    )


def report(compatible: bool) -> Report:
    checks = [] if compatible else [{"id": "http_status", "category": "auth", "status": "fail", "message": "401",
                                     "hint": "fix the key"}]  # fmt: skip
    return Report.model_validate(
        {
            "compatible": compatible,
            "llmFormat": "openai",
            "endpoint": "https://api.example.com/v1",
            "checkedAt": NOW.isoformat(),
            "checks": checks,
        }  # fmt: skip
    )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


# --- POST /validate -------------------------------------------------------------------------------


def test_a_request_queues_one_run_through_the_bus_and_later_requests_join_it() -> None:
    runs, events, clock = MemoryRuns(), Events(), Clock()
    requests = ValidationRequests(runs=runs, events=events, clock=clock)
    llm = stored_llm()
    first = requests.request(llm)
    assert first.status is ValidationRunStatus.QUEUED and first.validation_id.startswith("val_")
    assert events.sent == [
        (LLM_VALIDATION_REQUESTED,
         {"accountId": ACCOUNT, "llmId": "llm-1", "version": 3, "validationId": first.validation_id})
    ]  # fmt: skip
    clock.now += timedelta(seconds=5)
    assert requests.request(llm).validation_id == first.validation_id  # joined, nothing new queued
    assert len(events.sent) == 1
    assert requests.pending(ACCOUNT, "llm-1") == first


def test_a_settled_or_expired_run_lets_a_new_one_start() -> None:
    runs, events, clock = MemoryRuns(), Events(), Clock()
    requests = ValidationRequests(runs=runs, events=events, clock=clock)
    first = requests.request(stored_llm())
    runs.mark(ACCOUNT, "llm-1", first.validation_id, ValidationRunStatus.DONE)
    assert requests.pending(ACCOUNT, "llm-1") is None
    second = requests.request(stored_llm())
    assert second.validation_id != first.validation_id
    clock.now += PENDING_RUN_EXPIRY + timedelta(seconds=1)  # its message died somewhere
    assert requests.pending(ACCOUNT, "llm-1") is None
    assert requests.request(stored_llm()).validation_id not in (first.validation_id, second.validation_id)
    assert len(events.sent) == 3


def test_a_request_the_bus_refuses_leaves_no_pending_run() -> None:
    class Refusing(Events):
        def publish(self, detail_type: str, detail: Any) -> None:
            raise RuntimeError("bus down")

    runs = MemoryRuns()
    requests = ValidationRequests(runs=runs, events=Refusing(), clock=Clock())
    with pytest.raises(RuntimeError):
        requests.request(stored_llm())
    assert requests.pending(ACCOUNT, "llm-1") is None


# --- the validator ------------------------------------------------------------------------------


def validator(credentials: Credentials, outcomes: list[bool]) -> tuple[Validator, list[tuple[str, RunBudget]], Events, MemoryRuns, Reports]:  # fmt: skip
    llms = MemoryLlms()
    llms.create(stored_llm(), limit=500)
    probes: list[tuple[str, RunBudget]] = []

    def probe(llm: StoredLlm, key: str, budget: RunBudget) -> Report:
        probes.append((key, budget))
        return report(outcomes[len(probes) - 1])

    events, runs, reports = Events(), MemoryRuns(), Reports()
    return Validator(llms, reports, credentials, events, probe, runs), probes, events, runs, reports


def test_a_requested_run_reports_under_its_id_and_settles() -> None:
    checker, probes, events, runs, reports = validator(Credentials(), [True])
    runs.claim(ACCOUNT, "llm-1", ValidationRun(validation_id="val_x", status=ValidationRunStatus.QUEUED,
                                               requested_at=NOW), NOW + PENDING_RUN_EXPIRY)  # fmt: skip
    budget = RunBudget(12, "the test budget")
    result = checker.validate(ACCOUNT, "llm-1", validation_id="val_x", budget=budget)
    assert result is not None and result.validation_id == "val_x"
    assert probes == [("current-key", budget)]
    assert runs.marks == [("val_x", ValidationRunStatus.RUNNING), ("val_x", ValidationRunStatus.DONE)]
    assert runs.pending(ACCOUNT, "llm-1", NOW) is None
    assert [r.validation_id for r in reports.added] == ["val_x"]
    assert events.sent[-1][0] == LLM_VALIDATED and events.sent[-1][1]["validationId"] == "val_x"


def test_a_registration_run_gets_its_own_id_and_the_validators_default_budget() -> None:
    checker, probes, events, runs, _ = validator(Credentials(), [True])
    result = checker.validate(ACCOUNT, "llm-1")
    assert result is not None and result.validation_id and result.validation_id.startswith("val_")
    assert probes[0][1].label.startswith("the validator's")
    assert runs.marks == []
    assert events.sent[-1][1]["validationId"] == result.validation_id


def test_a_staged_key_and_the_current_one_share_the_budget() -> None:
    checker, probes, _, _, reports = validator(Credentials(pending="new-key"), [False, True])
    result = checker.validate(ACCOUNT, "llm-1", budget=RunBudget(60, "the validator's 60 s budget"))
    assert [key for key, _ in probes] == ["new-key", "current-key"]
    assert [b.seconds for _, b in probes] == [30, 30]
    assert "the new key" in probes[0][1].label and "the current key" in probes[1][1].label
    assert result is not None and result.details and result.details["rotation"] == "refused"
    assert len({r.validation_id for r in reports.added}) == 1  # both reports belong to one run


def test_a_deleted_llm_settles_its_run_and_reports_nothing() -> None:
    checker, probes, events, runs, _ = validator(Credentials(), [True])
    checker.llms.delete(ACCOUNT, "llm-1")
    assert checker.validate(ACCOUNT, "llm-1", validation_id="val_gone") is None
    assert probes == [] and events.sent == []
    assert runs.marks[-1] == ("val_gone", ValidationRunStatus.DONE)
