"""The LLM registry: create, read, list, update, delete customer LLM configs.

Pure domain logic; storage, secrets, events and the SSRF guard arrive as ports.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from llm_gateway import validation_messages
from llm_gateway.catalog import builtin_llms, get_builtin
from llm_gateway.domain.loops import OwnOrigins, refuse_own_origin
from llm_gateway.domain.ownership import llm_not_found, owned_llm, refuse_builtin
from llm_gateway.domain.ports import (
    CredentialStore,
    EventPublisher,
    LimitReached,
    LlmRepository,
    UrlGuard,
    VersionConflict,
)
from llm_gateway.errors import (
    BadRequest,
    Conflict,
    EndpointUnresolvable,
    NotFound,
    PreconditionFailed,
)
from llm_gateway.models.common import PageMeta
from llm_gateway.models.llm import (
    SPEC_BY_FORMAT,
    AnyCreate,
    EndpointUrl,
    Llm,
    LlmFormat,
    LlmList,
    LlmStatus,
    LlmUpdate,
    StoredLlm,
    Timeouts,
    ValidationSummary,
    secret_hint,
    spec_fields,
)

LLM_REGISTERED = "LLM Registered"
LLM_UPDATED = "LLM Updated"
LLM_DELETED = "LLM Deleted"
MAX_LLMS_PER_ACCOUNT = 500
_UPDATE_RETRIES = 3


def _now() -> datetime:
    return datetime.now(UTC)


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors in people's words, without the offending input (it may be a secret)."""
    return list(validation_messages.describe(exc.errors(include_input=False, include_url=False)))


@dataclass
class Registry:
    llms: LlmRepository
    credentials: CredentialStore
    events: EventPublisher
    url_guard: UrlGuard
    #: The gateway's own origins known from settings; a request adds the ones it arrived on.
    own_origins: OwnOrigins = field(default_factory=OwnOrigins)

    # ------------------------------------------------------------------ create
    def create(
        self,
        account_id: str,
        request: AnyCreate,
        *,
        own: OwnOrigins | None = None,
    ) -> Llm:
        self._check_urls(request.urls, own)
        self._check_fallbacks(account_id, None, request.fallback_llm_ids)
        llm_id = str(uuid.uuid4())
        now = _now()
        secret = request.secret.get_secret_value()
        secret_ref = self.credentials.create(account_id, llm_id, secret)
        stored = StoredLlm.model_validate(
            {
                **spec_fields(request),
                "id": llm_id,
                "account_id": account_id,
                "secret_ref": secret_ref,
                "secret_hint": secret_hint(secret),
                "status": LlmStatus.PENDING,
                "validation": ValidationSummary(summary="Validation is queued."),
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        try:
            # AlreadyExists on a uuid4 collision: never overwrite. The limit is a condition of the
            # same write, so concurrent registrations cannot pass it together.
            self.llms.create(stored, limit=MAX_LLMS_PER_ACCOUNT)
        except LimitReached:
            self.credentials.delete(account_id, llm_id)
            raise Conflict(
                f"An account can register at most {MAX_LLMS_PER_ACCOUNT} LLMs; delete one first.",
                code="llm_limit_reached",
            ) from None
        except Exception:
            self.credentials.delete(account_id, llm_id)  # no orphan secret, whatever went wrong
            raise
        self.events.publish(LLM_REGISTERED, _event_detail(stored))
        return stored.public()

    def check_replay(self, account_id: str, llm_id: str) -> None:
        """An idempotent replay answers with the LLM it created; if that LLM has been deleted
        since, the key cannot be honoured: 409, never a dead id."""
        if self.llms.get(account_id, llm_id) is None:
            raise Conflict(
                f"This Idempotency-Key already created LLM {llm_id}, which has since been deleted. "
                "Send the request with a new Idempotency-Key to register it again.",
                code="idempotency_key_reused",
                details={"llmId": llm_id},
            )

    # ------------------------------------------------------------------ read
    def get(self, account_id: str, llm_id: str) -> Llm:
        builtin = get_builtin(llm_id)
        if builtin is not None:
            return builtin.to_llm()
        return self._own(account_id, llm_id).public()

    def list(
        self, account_id: str, *, page: int, per_page: int, search: str | None, include_defaults: bool
    ) -> LlmList:
        items: list[Llm] = [b.to_llm() for b in builtin_llms().values()] if include_defaults else []
        own = sorted(self.llms.list(account_id), key=lambda r: r.created_at or _now(), reverse=True)
        items.extend(r.public() for r in own)
        if search:
            needle = search.casefold()
            items = [
                i
                for i in items
                if needle in i.display_name.casefold()
                or needle in i.model_name.casefold()
                or needle in (i.description or "").casefold()
                or needle == i.id.casefold()
            ]
        start = (page - 1) * per_page
        return LlmList(
            data=items[start : start + per_page],
            meta=PageMeta(page=page, per_page=per_page, total=len(items)),
        )

    # ------------------------------------------------------------------ update
    def update(
        self,
        account_id: str,
        llm_id: str,
        patch: LlmUpdate,
        if_match: int | None,
        *,
        own: OwnOrigins | None = None,
    ) -> Llm:
        self._refuse_builtin(llm_id, "changed")
        changes = patch.model_dump(exclude_unset=True, exclude={"secret"})
        new_secret = patch.secret.get_secret_value() if patch.secret is not None else None
        self._check_urls(patch.urls or [], own)
        self._check_fallbacks(account_id, llm_id, patch.fallback_llm_ids)
        for attempt in range(_UPDATE_RETRIES):
            current = self._own(account_id, llm_id)
            if if_match is not None and current.version != if_match:
                raise PreconditionFailed(
                    f"The LLM is at version {current.version}, not {if_match}. Fetch it again and retry.",
                    details={"currentVersion": current.version},
                )
            updated, upstream_changed = self._apply(current, changes, new_secret)
            if new_secret is not None:
                self.credentials.stage_pending(account_id, llm_id, new_secret)
            try:
                self.llms.replace(updated, expected_version=current.version)
            except VersionConflict:
                if if_match is not None or attempt == _UPDATE_RETRIES - 1:
                    raise PreconditionFailed(
                        "The LLM was changed by another request. Fetch it again and retry."
                    ) from None
                continue
            if upstream_changed or new_secret is not None:  # a rename needs no revalidation
                detail = _event_detail(updated) | {"secretStaged": new_secret is not None}
                self.events.publish(LLM_UPDATED, detail)
            return updated.public()
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply(
        self, current: StoredLlm, changes: dict[str, Any], new_secret: str | None
    ) -> tuple[StoredLlm, bool]:
        """Merge a partial update and re-check the whole config against its spec's rules.

        Returns the new record and whether the upstream call changed (then ``status`` goes back
        to ``pending`` until revalidation). A new secret leaves ``status`` alone: the current key
        stays in service until the new one passes, and the summary says one is pending."""
        merged = {
            **current.model_dump(
                mode="json",
                include={
                    "display_name", "description", "llm_format", "urls", "model_name", "deployment_name",
                    "api_version", "temperature", "max_tokens", "headers", "timeouts", "metadata",
                    "fallback_llm_ids",
                    "reasoning_effort", "reasoning_format",
                },
            ),
            **{k: v for k, v in changes.items()},
        }  # fmt: skip
        merged["fallback_llm_ids"] = merged.get("fallback_llm_ids") or None  # stored: [] when none
        spec_model = SPEC_BY_FORMAT[LlmFormat(merged["llm_format"])]
        try:
            spec = spec_model.model_validate(merged)
        except ValidationError as exc:
            details = validation_errors(exc)
            raise validation_messages.bad_request(details, "The updated LLM config is not valid") from None
        upstream_changed = _upstream_view(spec) != _upstream_view(current)
        if upstream_changed:
            validation = ValidationSummary(summary="Revalidation is queued.")
        elif new_secret:
            validation = current.validation.model_copy(
                update={
                    "summary": f"A new key ({secret_hint(new_secret)}) is pending validation; "
                    f"the current key ({current.secret_hint}) stays in service until it passes."
                }
            )
        else:
            validation = current.validation
        updated = StoredLlm.model_validate(
            current.model_dump()
            | {
                **{k: getattr(spec, k) for k in spec_model.model_fields},
                "status": LlmStatus.PENDING if upstream_changed else current.status,
                "validation": validation,
                "pending_secret_hint": secret_hint(new_secret) if new_secret else current.pending_secret_hint,
                "version": current.version + 1,
                "updated_at": _now(),
            }
        )
        return updated, upstream_changed

    # ------------------------------------------------------------------ delete
    def delete(self, account_id: str, llm_id: str) -> None:
        self._refuse_builtin(llm_id, "deleted")
        current = self._own(account_id, llm_id)
        if not self.llms.delete(account_id, llm_id):
            raise _not_found(llm_id)
        self.credentials.delete(account_id, llm_id)
        self.events.publish(LLM_DELETED, _event_detail(current))

    # ------------------------------------------------------------------ helpers
    def _check_urls(self, urls: Sequence[EndpointUrl], own: OwnOrigins | None) -> None:
        check_endpoint_urls(self.url_guard, urls, self.own_origins | (own or OwnOrigins()))

    def _check_fallbacks(self, account_id: str, llm_id: str | None, ids: Sequence[str] | None) -> None:
        """Each fallback is a built-in (server-side) or a ``valid`` LLM of this account, and no chain
        of fallbacks leads back to ``llm_id``."""
        for fallback in ids or []:
            builtin = get_builtin(fallback)
            if builtin is not None:
                if builtin.client_side:
                    raise _bad_fallback(fallback, "runs on the client, so it cannot answer for the gateway")
                continue
            stored = self.llms.get(account_id, fallback)
            if stored is None or stored.account_id != account_id:
                raise _bad_fallback(fallback, "is not an LLM of this account")
            if stored.status != LlmStatus.VALID:
                raise _bad_fallback(fallback, f"is {stored.status.value}, not valid")
            if llm_id is not None and self._reaches(account_id, fallback, llm_id, depth=4):
                raise _bad_fallback(fallback, "falls back (directly or not) to this LLM: no cycles")
        if llm_id is not None and llm_id in (ids or []):
            raise _bad_fallback(llm_id, "is this LLM itself")

    def _reaches(self, account_id: str, start: str, target: str, depth: int) -> bool:
        if start == target:
            return True
        stored = self.llms.get(account_id, start) if depth and get_builtin(start) is None else None
        return any(
            self._reaches(account_id, nxt, target, depth - 1)
            for nxt in (stored.fallback_llm_ids if stored else [])
        )

    def _own(self, account_id: str, llm_id: str) -> StoredLlm:
        return owned_llm(self.llms, account_id, llm_id)

    @staticmethod
    def _refuse_builtin(llm_id: str, verb: str) -> None:
        refuse_builtin(llm_id, verb)


#: What shapes the upstream call: a change here sends the LLM back to validation. ``temperature``
#: and ``maxTokens`` count: they are sent upstream, and a model may refuse them. ``displayName``,
#: ``description`` and ``metadata`` are ours alone.
UPSTREAM_FIELDS = frozenset(
    {
        "llm_format", "urls", "model_name", "deployment_name", "api_version", "headers", "timeouts",
        "temperature", "max_tokens", "reasoning_effort", "reasoning_format",
    }
)  # fmt: skip


def _upstream_view(config: Any) -> dict[str, Any]:
    """The upstream-relevant fields, with "absent" and "default" made equal (no header = {})."""
    view = dict(config.model_dump(mode="json", include=UPSTREAM_FIELDS))
    view["headers"] = view.get("headers") or {}
    view["timeouts"] = view.get("timeouts") or Timeouts().model_dump(mode="json")
    return view


def check_endpoint_urls(
    url_guard: UrlGuard, urls: Sequence[EndpointUrl], own: OwnOrigins | None = None
) -> None:
    """Refuse the gateway's own origins and blocked addresses now; a name that does not resolve
    yet is validation's to report."""
    for endpoint in urls:
        refuse_own_origin(endpoint.url, own or OwnOrigins())
        with contextlib.suppress(EndpointUnresolvable):
            url_guard.check(endpoint.url)


def _bad_fallback(llm_id: str, why: str) -> BadRequest:
    return BadRequest(
        f"fallbackLlmIds: {llm_id} {why}.",
        code="invalid_fallback",
        details=[{"field": "fallbackLlmIds", "message": f"{llm_id} {why}", "type": "invalid_fallback"}],
    )


def _not_found(llm_id: str) -> NotFound:
    return llm_not_found(llm_id)


def _event_detail(llm: StoredLlm) -> dict[str, Any]:
    """What other functions need to act on a change; never the secret."""
    return {"accountId": llm.account_id, "llmId": llm.id, "version": llm.version, "llmFormat": llm.llm_format}
