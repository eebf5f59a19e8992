"""Sessions: mint a session token for a persona, revoke it, and gate every stream call on it.

Pure domain code: storage, the signer and the clock arrive as ports. The token carries only ids
and times (``tokens.SessionClaims``); everything the stream needs (the persona, which LLM and at
which version) lives in a ``SessionRecord`` keyed by the token's ``sid``, with a DynamoDB TTL at
the token's expiry.

Order of a mint: resolve the LLM (built-in or the caller's own, ``valid`` only), write the
session record, then sign. A failure to sign leaves an orphan record that no token names and the
TTL removes; a token never exists without its record, so ``SessionGate`` can always refuse it.

``SessionGate`` (the ``SessionCheck`` of the stream verifier) decides, after the signature and
claims verified offline:

- the record is missing or past its expiry → 403 ``session_inactive``;
- the record was revoked → 403 ``session_revoked``;
- the record does not belong to the token's ``sub``/``llm`` → 403 ``session_inactive``;
- the LLM was deleted (or is no longer the account's) → 403 ``session_inactive`` (SECURITY 15);
- the LLM's version changed since the mint → the session runs on the **current** config, as
  long as that config is ``valid``: a fixed typo or a rotated key reaches live sessions at once,
  and a change that put the LLM back to ``pending``/``invalid`` stops them (409, the same codes as
  the mint) instead of streaming to an endpoint nobody has validated. Pinning the old version
  would need a copy of every old config and secret; the version recorded at mint is kept for
  audit and for the stream's logs (``ActiveSession.llm_changed``).

Records (with their LLM) are cached in memory for a few seconds per container, so a revoke or a
delete takes effect everywhere within ``cache_ttl_seconds`` while a busy session costs one read
per window instead of two per request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from llm_gateway.cache import TtlCache
from llm_gateway.catalog import BuiltinLlm, get_builtin
from llm_gateway.domain.tokens import (
    SessionClaims,
    SessionInactive,
    SessionRevoked,
    Signer,
    TokenMinter,
    TokenPolicy,
    TokenVerifier,
)
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.models.llm import Llm, LlmStatus, StoredLlm
from llm_gateway.models.session import PersonaConfig, SessionRecord, SessionTokenRequest, SessionTokenResponse

SESSION_ID_PREFIX: Final = "sess_"
BRAIN_TYPE_WARNING: Final = (
    "personaConfig.brainType is deprecated and will be removed; send personaConfig.llmId instead."
)
DEFAULT_CACHE_TTL_SECONDS: Final = 5.0
_CACHE_MAX_ENTRIES: Final = 10_000

Clock = Callable[[], float]
"""Seconds since the epoch."""


# --- ports --------------------------------------------------------------------------------------


class SessionRepository(Protocol):
    def put(self, record: SessionRecord) -> None:
        """Store a new record (never overwrite); the store expires it at ``record.expires_at``."""
        ...

    def get(self, session_id: str) -> SessionRecord | None: ...

    def revoke(self, account_id: str, session_id: str, revoked_at: datetime) -> bool:
        """Mark the account's session revoked; False when there is no such session *for this account*."""
        ...


class LlmReader(Protocol):
    def get(self, account_id: str, llm_id: str) -> StoredLlm | None: ...


# --- errors -------------------------------------------------------------------------------------


def llm_not_found(llm_id: str) -> NotFound:
    # The same answer for "missing" and "another account's": ids must not leak across accounts.
    return NotFound(f"No LLM with id {llm_id!r}.", code="llm_not_found")


def session_not_found(session_id: str) -> NotFound:
    return NotFound(f"No session with id {session_id!r}.", code="session_not_found")


def _require_usable(llm: Llm) -> None:
    """Only ``valid`` LLMs may start (or keep running) a session."""
    if llm.status == LlmStatus.PENDING:
        raise Conflict(
            f"LLM {llm.id!r} is still being validated; retry when its status is 'valid' "
            f"(GET /v1/llms/{llm.id}/validation).",
            code="llm_validation_pending",
        )
    if llm.status == LlmStatus.INVALID:
        summary = (llm.validation.summary or "the conformance suite failed").rstrip(".")
        raise Conflict(
            f"LLM {llm.id!r} failed validation: {summary}. Fix it, then POST /v1/llms/{llm.id}/validate.",
            code="llm_invalid",
            details={"errorCode": llm.validation.error_code} if llm.validation.error_code else None,
        )


@dataclass(frozen=True, slots=True)
class ResolvedLlm:
    llm: Llm
    """The current config: a ``StoredLlm`` for the account's own LLMs, the catalog's for built-ins."""
    builtin: BuiltinLlm | None = None

    @property
    def client_side(self) -> bool:
        return bool(self.builtin and self.builtin.client_side)


def resolve_llm(llms: LlmReader, account_id: str, llm_id: str) -> ResolvedLlm:
    """A built-in (legacy ids included: they are catalog entries) or one of the account's own LLMs."""
    builtin = get_builtin(llm_id)
    if builtin is not None:
        return ResolvedLlm(builtin.to_llm(), builtin)
    stored = llms.get(account_id, llm_id)
    if stored is None or stored.account_id != account_id:
        raise llm_not_found(llm_id)
    return ResolvedLlm(stored)


# --- minting and revocation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MintResult:
    response: SessionTokenResponse
    deprecated_alias_used: bool
    """True when the caller named the LLM with ``brainType``: the handler adds ``Deprecation``."""


def new_session_id() -> str:
    return SESSION_ID_PREFIX + uuid.uuid4().hex


@dataclass
class SessionService:
    sessions: SessionRepository
    llms: LlmReader
    signer: Signer
    policy: TokenPolicy
    clock: Clock = time.time

    def mint(self, account_id: str, request: SessionTokenRequest) -> MintResult:
        persona = request.persona_config
        llm_id = persona.resolved_llm_id  # both given and different is a 400 in the model already
        warnings = [BRAIN_TYPE_WARNING] if persona.brain_type is not None else []
        resolved = resolve_llm(self.llms, account_id, llm_id)
        # CUSTOMER_CLIENT_V1 mints like any other: the stream endpoint answers 409 client_side_llm.
        _require_usable(resolved.llm)

        now = int(self.clock())
        lifetime = self.policy.lifetime(persona.max_session_length_seconds)
        session_id = new_session_id()
        record = SessionRecord(
            session_id=session_id,
            account_id=account_id,
            llm_id=llm_id,
            llm_version=resolved.llm.version,
            persona=_normalised(persona, llm_id),
            client_label=request.client_label,
            created_at=datetime.fromtimestamp(now, UTC),
            expires_at=datetime.fromtimestamp(now + lifetime, UTC),
        )
        self.sessions.put(record)
        # A minter frozen at ``now`` so the token's exp is exactly the record's expiry.
        minted = TokenMinter(self.signer, self.policy, clock=lambda: now).mint(
            account_id=account_id, session_id=session_id, llm_id=llm_id, ttl_seconds=lifetime
        )
        response = SessionTokenResponse(
            session_token=minted.token,
            session_id=session_id,
            expires_at=record.expires_at,
            warnings=warnings,
        )
        return MintResult(response, deprecated_alias_used=bool(warnings))

    def revoke(self, account_id: str, session_id: str) -> None:
        """Idempotent for the owner; another account's (or no) session is the same 404."""
        if not self.sessions.revoke(account_id, session_id, datetime.fromtimestamp(self.clock(), UTC)):
            raise session_not_found(session_id)


def _normalised(persona: PersonaConfig, llm_id: str) -> PersonaConfig:
    """Stored with the resolved ``llmId`` only, whichever name the caller used."""
    return persona.model_copy(update={"llm_id": llm_id, "brain_type": None})


# --- the stream side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """What a verified stream request runs on: the token, its session, and the LLM's current config."""

    claims: SessionClaims
    record: SessionRecord
    llm: Llm
    builtin: BuiltinLlm | None = None

    @property
    def client_side(self) -> bool:
        return bool(self.builtin and self.builtin.client_side)

    @property
    def llm_changed(self) -> bool:
        """The LLM was updated after the mint; the session runs on the new (valid) config."""
        return self.llm.version != self.record.llm_version

    def require_server_side(self) -> None:
        """The stream endpoint's refusal for client-side LLMs (``CUSTOMER_CLIENT_V1``)."""
        if self.client_side:
            raise Conflict(
                f"LLM {self.llm.id!r} runs on the client: there is no server-side stream for this session.",
                code="client_side_llm",
            )


@dataclass
class SessionGate:
    """``SessionCheck`` for ``TokenVerifier``: the session record and its LLM must still hold.

    ``cache_ttl_seconds`` bounds how long a revoke or delete can go unnoticed by a container
    that recently served the session (0 disables the cache).
    """

    sessions: SessionRepository
    llms: LlmReader
    clock: Clock = time.time
    leeway_seconds: int = 0
    cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS
    monotonic: Clock = time.monotonic
    _cache: TtlCache[str, tuple[SessionRecord, ResolvedLlm]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cache = TtlCache(self.cache_ttl_seconds, max_entries=_CACHE_MAX_ENTRIES, clock=self.monotonic)

    def __call__(self, claims: SessionClaims) -> None:
        self.load(claims)

    def load(self, claims: SessionClaims) -> ActiveSession:
        record, resolved = self._lookup(claims)
        if record.revoked:
            raise SessionRevoked("This session was revoked.")
        if record.account_id != claims.account_id or record.llm_id != claims.llm_id:
            raise SessionInactive("This session is not active.")
        if self.clock() >= record.expires_at.timestamp() + self.leeway_seconds:
            raise SessionInactive("This session has expired.")
        _require_usable(resolved.llm)
        return ActiveSession(claims=claims, record=record, llm=resolved.llm, builtin=resolved.builtin)

    def cached(self, claims: SessionClaims) -> ActiveSession | None:
        """The gate's answer from a fresh cache entry, without any I/O; ``None`` on a miss."""
        if self._cache.peek(claims.session_id) is None:
            return None
        return self.load(claims)

    def forget(self, session_id: str | None = None) -> None:
        if session_id is None:
            self._cache.clear()
        else:
            self._cache.discard(session_id)

    def _lookup(self, claims: SessionClaims) -> tuple[SessionRecord, ResolvedLlm]:
        hit = self._cache.peek(claims.session_id)
        if hit is not None:
            return hit
        record = self.sessions.get(claims.session_id)
        if record is None:
            self.forget(claims.session_id)
            raise SessionInactive("This session is not active.")
        try:
            resolved = resolve_llm(self.llms, record.account_id, record.llm_id)
        except NotFound:
            self.forget(claims.session_id)
            raise SessionInactive("The LLM of this session was deleted.") from None
        if not record.revoked:
            self._cache.put(claims.session_id, (record, resolved))
        return record, resolved


@dataclass(frozen=True)
class StreamTokenVerifier:
    """What the stream proxy calls per request: offline token check, then the session gate.

    ``verify`` raises 401 (``TokenInvalid``) for a bad token, 403 for a revoked/expired session
    or a deleted LLM, 409 when the LLM's current config is not ``valid``; otherwise it returns the
    ``ActiveSession`` (persona, system prompt, the LLM's current config).
    """

    tokens: TokenVerifier
    gate: SessionGate

    def verify(self, token: str) -> ActiveSession:
        return self.gate.load(self.tokens.verify(token))
