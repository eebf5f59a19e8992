"""Event-driven validation: run the conformance suite with the stored key, record and announce it.

A staged key (``AWSPENDING``) is validated on its own and promoted only when it passes; when it
fails, the current key stays in service and the report says why the rotation was refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from llm_gateway.domain.ports import EventPublisher, LlmRepository, VersionConflict
from llm_gateway.models.llm import LlmStatus, StoredLlm, ValidationSummary
from llm_gateway.models.report import CheckStatus, Report

LLM_VALIDATED = "LLM Validated"
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"

#: Runs the conformance suite against a stored config with the given key.
Probe = Callable[[StoredLlm, str], Report]


class CredentialReader(Protocol):
    def read(self, account_id: str, llm_id: str, secret_ref: str, stage: str = CURRENT) -> str: ...
    def has_pending(self, account_id: str, llm_id: str) -> bool: ...
    def promote_pending(self, account_id: str, llm_id: str) -> None: ...
    def discard_pending(self, account_id: str, llm_id: str) -> None: ...


class ReportRepository(Protocol):
    def add(self, account_id: str, llm_id: str, report: Report) -> None: ...
    def latest(self, account_id: str, llm_id: str) -> Report | None: ...


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
        compatible=report.compatible, checked_at=report.checked_at, summary=text, error_code=report.error_code
    )


@dataclass
class Validator:
    llms: LlmRepository
    reports: ReportRepository
    credentials: CredentialReader
    events: EventPublisher
    probe: Probe

    def validate(self, account_id: str, llm_id: str) -> Report | None:
        """Validate the LLM as stored now; ``None`` when it no longer exists (nothing to do)."""
        llm = self.llms.get(account_id, llm_id)
        if llm is None:
            return None
        rotation_note: str | None = None
        if self.credentials.has_pending(account_id, llm_id):
            staged = self.probe(llm, self.credentials.read(account_id, llm_id, llm.secret_ref, PENDING))
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
        report = self.probe(llm, self.credentials.read(account_id, llm_id, llm.secret_ref, CURRENT))
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
            },
        )
        return report


def _refusal(report: Report) -> str:
    failed = next((c for c in report.checks if c.status is CheckStatus.FAIL), None)
    return failed.message if failed else "the new secret did not pass validation"
