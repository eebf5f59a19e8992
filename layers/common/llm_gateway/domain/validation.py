"""Event-driven validation: run the conformance suite with the stored key, record and announce it.

A staged key (``AWSPENDING``) is validated on its own and promoted only when it passes; when it
fails, the current key stays in service and the report says why the rotation was refused.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from llm_gateway.domain.conformance.budget import RunBudget, validator_budget
from llm_gateway.domain.ownership import LlmReader, owned_llm, refuse_builtin
from llm_gateway.domain.ports import EventPublisher, LlmRepository, VersionConflict
from llm_gateway.errors import NotFound
from llm_gateway.models.llm import LlmStatus, StoredLlm, ValidationSummary
from llm_gateway.models.report import (
    CheckStatus,
    LatestReport,
    Report,
    ValidationRun,
    ValidationRunStatus,
)

LLM_VALIDATED = "LLM Validated"
#: ``POST /validate`` asks for a run through the same bus → queue → validator path as a registration.
LLM_VALIDATION_REQUESTED = "LLM Validation Requested"
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
#: A requested run that never reports (its message died) stops counting as pending after this;
#: a new request then queues a fresh run. Longer than three queue deliveries of a healthy run.
PENDING_RUN_EXPIRY = timedelta(minutes=15)
#: A staged key is probed with this share of the run's budget; the current key gets the rest.
STAGED_KEY_SHARE = 0.5

#: Runs the conformance suite against a stored config with the given key, within the budget.
Probe = Callable[[StoredLlm, str, RunBudget], Report]


def new_validation_id() -> str:
    return "val_" + uuid.uuid4().hex[:24]


class ValidationRuns(Protocol):
    """The latest requested run per LLM (at most one is pending: new requests join it)."""

    def claim(
        self,
        account_id: str,
        llm_id: str,
        run: ValidationRun,
        expires_at: datetime,
        finished_before: datetime | None = None,
    ) -> tuple[ValidationRun, bool]:
        """Store ``run`` unless another is pending (not done, not expired), or one finished at or
        after ``finished_before``: (that run, False), else (``run``, True)."""
        ...

    def pending(self, account_id: str, llm_id: str, now: datetime) -> ValidationRun | None: ...

    def mark(self, account_id: str, llm_id: str, validation_id: str, status: ValidationRunStatus) -> None:
        """Set the run's status, if it is still the latest requested one (else nothing)."""
        ...


@dataclass
class ValidationRequests:
    """``POST /v1/llms/{id}/validate``: queue a run (or join the pending one) and say which it is."""

    runs: ValidationRuns
    events: EventPublisher
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: A run that finished less than this long ago is the answer to a new request (each run sends
    #: requests to the tenant's endpoint: a loop of requests must not become a loop of runs).
    min_interval: timedelta = timedelta(0)

    def request(self, llm: StoredLlm) -> ValidationRun:
        now = self.clock()
        run = ValidationRun(
            validation_id=new_validation_id(), status=ValidationRunStatus.QUEUED, requested_at=now
        )
        fresh = now - self.min_interval if self.min_interval else None
        pending, created = self.runs.claim(llm.account_id, llm.id, run, now + PENDING_RUN_EXPIRY, fresh)
        if not created:
            return pending
        try:
            self.events.publish(
                LLM_VALIDATION_REQUESTED,
                {
                    "accountId": llm.account_id,
                    "llmId": llm.id,
                    "version": llm.version,
                    "validationId": run.validation_id,
                },
            )
        except Exception:
            # Nothing will run it: do not leave a pending run that later requests would join.
            self.runs.mark(llm.account_id, llm.id, run.validation_id, ValidationRunStatus.DONE)
            raise
        return run

    def pending(self, account_id: str, llm_id: str) -> ValidationRun | None:
        return self.runs.pending(account_id, llm_id, self.clock())


class CredentialReader(Protocol):
    def read(self, account_id: str, llm_id: str, secret_ref: str, stage: str = CURRENT) -> str: ...
    def has_pending(self, account_id: str, llm_id: str) -> bool: ...
    def promote_pending(self, account_id: str, llm_id: str) -> None: ...
    def discard_pending(self, account_id: str, llm_id: str) -> None: ...


class ReportRepository(Protocol):
    def add(self, account_id: str, llm_id: str, report: Report) -> None: ...
    def latest(self, account_id: str, llm_id: str) -> Report | None: ...


def own_custom_llm(llms: LlmReader, account_id: str, llm_id: str) -> StoredLlm:
    """The caller's own LLM to validate: built-ins are the platform's (403), others' are 404."""
    refuse_builtin(llm_id, "validated")
    return owned_llm(llms, account_id, llm_id)


def request_validation(
    llms: LlmReader, requests: ValidationRequests, account_id: str, llm_id: str
) -> tuple[StoredLlm, ValidationRun]:
    """``POST /v1/llms/{id}/validate`` for the caller's own LLM: the queued (or joined) run."""
    llm = own_custom_llm(llms, account_id, llm_id)
    return llm, requests.request(llm)


def latest_report(
    llms: LlmReader,
    requests: ValidationRequests,
    reports: ReportRepository,
    account_id: str,
    llm_id: str,
) -> LatestReport | ValidationRun:
    """The latest report with the run still pending, or the pending run alone when no report exists."""
    own_custom_llm(llms, account_id, llm_id)
    pending = requests.pending(account_id, llm_id)
    report = reports.latest(account_id, llm_id)
    if report is None:
        if pending is not None:
            return pending
        raise NotFound("This LLM has not been validated yet.", code="validation_not_found")
    return LatestReport.model_validate(report.model_dump() | {"pending": pending})


def summarize(report: Report) -> ValidationSummary:
    failed = [c for c in report.checks if c.status is CheckStatus.FAIL]
    warned = [c for c in report.checks if c.status is CheckStatus.WARN]
    if failed:
        text = f"{len(failed)} check(s) failed: {failed[0].message}"
    else:
        text = f"All {len(report.checks)} checks passed" + (
            f" ({len(warned)} warning(s))." if warned else "."
        )
    return ValidationSummary(
        compatible=report.compatible,
        checked_at=report.checked_at,
        summary=text,
        error_code=report.error_code,
        continuation_urls=continuation_urls(report),
    )


def continuation_urls(report: Report) -> list[int]:
    """The URLs whose ``continuation`` check passed (``continuation`` alone, or ``continuation@N``)."""
    found = []
    for check in report.checks:
        name, _, position = check.id.partition("@")
        if name == "continuation" and check.status is CheckStatus.PASS:
            found.append(int(position) - 1 if position.isdigit() else 0)
    return sorted(found)


@dataclass
class Validator:
    llms: LlmRepository
    reports: ReportRepository
    credentials: CredentialReader
    events: EventPublisher
    probe: Probe
    runs: ValidationRuns | None = None

    def validate(
        self,
        account_id: str,
        llm_id: str,
        *,
        validation_id: str | None = None,
        budget: RunBudget | None = None,
    ) -> Report | None:
        """Validate the LLM as stored now, within ``budget`` (the validator's by default), as run
        ``validation_id`` (a requested run) or a new one; ``None`` when the LLM no longer exists."""
        run_id = validation_id or new_validation_id()
        if validation_id is not None and self.runs is not None:
            self.runs.mark(account_id, llm_id, validation_id, ValidationRunStatus.RUNNING)
        try:
            return self._validate(account_id, llm_id, run_id, budget or validator_budget())
        finally:
            if validation_id is not None and self.runs is not None:
                self.runs.mark(account_id, llm_id, validation_id, ValidationRunStatus.DONE)

    def _validate(self, account_id: str, llm_id: str, run_id: str, budget: RunBudget) -> Report | None:
        llm = self.llms.get(account_id, llm_id)
        if llm is None:
            return None
        rotation_note: str | None = None
        if self.credentials.has_pending(account_id, llm_id):
            staged_budget = budget.part(STAGED_KEY_SHARE, "the new key")
            budget = budget.part(1 - STAGED_KEY_SHARE, "the current key")
            staged = self.probe(
                llm, self.credentials.read(account_id, llm_id, llm.secret_ref, PENDING), staged_budget
            )
            staged.validation_id = run_id
            if staged.compatible:
                self.credentials.promote_pending(account_id, llm_id)
                staged.details = (staged.details or {}) | {
                    "rotation": "accepted",
                    "secretHint": llm.pending_secret_hint,
                }
                return self._record(llm, staged, new_hint=llm.pending_secret_hint)
            self.credentials.discard_pending(account_id, llm_id)
            rotation_note = _refusal(staged)
            staged.details = (staged.details or {}) | {
                "rotation": "refused",
                "reason": rotation_note,
                "secretHint": llm.pending_secret_hint,
            }
            self.reports.add(account_id, llm_id, staged)
        report = self.probe(llm, self.credentials.read(account_id, llm_id, llm.secret_ref, CURRENT), budget)
        report.validation_id = run_id
        if rotation_note is not None:
            report.details = (report.details or {}) | {
                "rotation": "refused",
                "reason": rotation_note,
                "secretHint": llm.secret_hint,
            }
        return self._record(llm, report, new_hint=None)

    def _record(self, llm: StoredLlm, report: Report, *, new_hint: str | None) -> Report:
        self.reports.add(llm.account_id, llm.id, report)
        summary = summarize(report)
        if report.details and report.details.get("rotation") == "refused":
            summary.summary = (
                f"New secret refused ({report.details['reason']}); the previous secret stays in service. "
                + (summary.summary or "")
            )
        updated = StoredLlm.model_validate(
            llm.model_dump()
            | {
                "status": LlmStatus.VALID if report.compatible else LlmStatus.INVALID,
                "validation": summary,
                "secret_hint": new_hint or llm.secret_hint,
                "pending_secret_hint": None,
            }
        )
        # Same version: validation is not a config change, so a client's If-Match stays good. If the
        # config changed meanwhile, its own event brings a fresh validation.
        with contextlib.suppress(VersionConflict):
            self.llms.replace(updated, expected_version=llm.version)
        self.events.publish(
            LLM_VALIDATED,
            {
                "accountId": llm.account_id,
                "llmId": llm.id,
                "version": llm.version,
                "compatible": report.compatible,
                "errorCode": report.error_code,
                "validationId": report.validation_id,
            },
        )
        return report


def _refusal(report: Report) -> str:
    failed = next((c for c in report.checks if c.status is CheckStatus.FAIL), None)
    return failed.message if failed else "the new secret did not pass validation"
