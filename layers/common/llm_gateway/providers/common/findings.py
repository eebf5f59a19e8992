"""How every spec's checks are written: findings collected per check id, then one ``Check`` per id.

A check id may collect several findings (one per offending event); the report shows the worst,
with "(and N more)". Messages and evidence pass through the one redaction on the way in, so no
spec can forget it, and evidence is trimmed to ``MAX_EVIDENCE_BYTES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.redaction import redact_text

__all__ = ["MAX_EVIDENCE_BYTES", "Findings", "conforms", "trim_evidence"]

MAX_EVIDENCE_BYTES = 512
_RANK = {CheckStatus.SKIP: 0, CheckStatus.PASS: 1, CheckStatus.WARN: 2, CheckStatus.FAIL: 3}


def trim_evidence(text: str | bytes, secrets: Sequence[str] = (), limit: int = MAX_EVIDENCE_BYTES) -> str:
    """Evidence as shown in a report: redacted first, then at most ``limit`` UTF-8 bytes."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    clean = redact_text(text, secrets)
    raw = clean.encode("utf-8")
    if len(raw) <= limit:
        return clean
    return raw[: limit - 3].decode("utf-8", "ignore") + "…"


def conforms(checks: Iterable[Check], outcome_ids: frozenset[str]) -> bool:
    """True when the response bytes follow the spec: every failed check only reports what the
    upstream said (``outcome_ids``, e.g. a well-formed 401). A report's ``compatible`` is stricter."""
    return not any(c.status == CheckStatus.FAIL and c.id not in outcome_ids for c in checks)


@dataclass(slots=True)
class _Finding:
    status: CheckStatus
    message: str
    hint: str | None
    evidence: str | None
    category: CheckCategory | None


@dataclass(slots=True)
class Findings:
    """Collects findings per check id; ``checks(ids)`` turns each id into one ``Check``.

    An id without findings is a pass (with its ``note``, or its entry in ``pass_messages``) or a
    skip; otherwise the worst finding decides status and text. ``categories`` names each id's
    category (a finding may override it); a failure without a hint gets ``fail_hint``.
    """

    secrets: Sequence[str]
    categories: Mapping[str, CheckCategory]
    pass_messages: Mapping[str, str] = field(default_factory=dict)
    fail_hint: str = "Fix the endpoint's response to follow the provider's streaming format."
    items: dict[str, list[_Finding]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    passed: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        check_id: str,
        status: CheckStatus,
        message: str,
        hint: str | None = None,
        evidence: str | bytes | None = None,
        category: CheckCategory | None = None,
    ) -> None:
        trimmed = trim_evidence(evidence, self.secrets) if evidence is not None else None
        self.items.setdefault(check_id, []).append(
            _Finding(status, redact_text(message, self.secrets), hint, trimmed, category)
        )

    def fail(self, check_id: str, message: str, hint: str, evidence: str | bytes | None = None) -> None:
        self.add(check_id, CheckStatus.FAIL, message, hint, evidence)

    def warn(
        self, check_id: str, message: str, hint: str | None = None, evidence: str | bytes | None = None
    ) -> None:
        self.add(check_id, CheckStatus.WARN, message, hint, evidence)

    def skip(self, check_id: str, reason: str) -> None:
        self.skipped[check_id] = reason

    def note(self, check_id: str, message: str) -> None:
        """A pass with a specific message (what was observed, when nothing is wrong)."""
        self.passed[check_id] = redact_text(message, self.secrets)

    def checks(self, ids: Iterable[str]) -> list[Check]:
        return [self._check(check_id) for check_id in ids]

    def _check(self, check_id: str) -> Check:
        category = self.categories[check_id]
        findings = self.items.get(check_id)
        if not findings:
            if check_id in self.skipped:
                return Check(id=check_id, category=category, status=CheckStatus.SKIP,
                             message=self.skipped[check_id])  # fmt: skip
            message = self.passed.get(check_id) or self.pass_messages[check_id]
            return Check(id=check_id, category=category, status=CheckStatus.PASS, message=message)
        worst = max(findings, key=lambda f: _RANK[f.status])
        same = sum(1 for f in findings if f.status == worst.status)
        message = worst.message + (f" (and {same - 1} more)" if same > 1 else "")
        hint = worst.hint
        if worst.status == CheckStatus.FAIL and not hint:
            hint = self.fail_hint
        return Check(
            id=check_id,
            category=worst.category or category,
            status=worst.status,
            message=message,
            hint=hint,
            evidence=worst.evidence,
        )
