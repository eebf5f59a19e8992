"""Sessions: mint a session token for a persona, revoke it, and gate every stream call on it.

Pure domain code: storage, the signer and the clock arrive as ports. The token carries only ids
and times (``tokens.SessionClaims``); everything the stream needs (the persona, which LLM and at
which version) lives in a ``SessionRecord`` keyed by the token's ``sid``, with a DynamoDB TTL at
the token's expiry.

Order of a mint: resolve the LLM (built-in or the caller's own, ``valid`` only), write the
session record, then sign. A failure to sign leaves an orphan record that no token names and the
TTL removes; a token never exists without its record, so the stream can always refuse it.

``SessionAccess`` decides for the stream, after the signature and claims verified offline:

- the record is missing or past its expiry → 403 ``session_inactive``;
- the record was revoked → 403 ``session_revoked``;
- the record does not belong to the token's ``sub``/``llm`` → 403 ``session_inactive``;
- the LLM was deleted (or is no longer the account's) → 403 ``session_inactive`` (SECURITY 15);
- the LLM changed since the mint → the session runs on the **current** config, as long as that
  config is ``valid``: a fixed typo or a rotated key reaches live sessions at once, and a change
  that put the LLM back to ``pending``/``invalid`` stops them (409, the same codes as the mint)
  instead of streaming to an endpoint nobody has validated. The version recorded at mint is kept
  for audit and for the stream's logs (``ActiveSession.llm_changed``).

Each of these holds from the very next request, in every container: every stream request makes one
strongly consistent freshness read, which runs while the upstream request is being opened (see
``SessionAccess``); memory only saves the reads of what does not change.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, Protocol, TypeVar

from llm_gateway.cache import BoundedMap, SingleFlight, TtlCache, retrieved
from llm_gateway.catalog import BuiltinLlm, get_builtin
from llm_gateway.domain.tokens import (
    SessionClaims,
    SessionInactive,
    SessionRevoked,
    Signer,
    TokenMinter,
    TokenPolicy,
)
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.models.llm import Llm, LlmStatus, StoredLlm, secret_hint
from llm_gateway.models.session import PersonaConfig, SessionRecord, SessionTokenRequest, SessionTokenResponse

SESSION_ID_PREFIX: Final = "sess_"
BRAIN_TYPE_WARNING: Final = (
    "personaConfig.brainType is deprecated and will be removed; send personaConfig.llmId instead."
)
_MAX_ENTRIES: Final = 10_000

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
class LlmRef:
    """A stored LLM (built-ins have none: their config is the catalog's)."""

    account_id: str
    llm_id: str


@dataclass(frozen=True, slots=True)
class Freshness:
    """What one strongly consistent read says about a session and its stored LLM, now."""

    session_found: bool
    revoked: bool = False
    llm_found: bool = True
    llm_revision: str | None = None
    """The stored LLM's content revision; ``None`` for a built-in, or an item older than revisions
    (then the config is read again: correct, only slower)."""
    url_breakers: Mapping[str, float] = field(default_factory=dict)
    """The LLM's URL breakers other containers opened (URL key -> open-until epoch seconds), read
    in the same request: what one container learns about a URL, every container knows."""


@dataclass(frozen=True, slots=True)
class RevisedLlm:
    """A stored LLM config and the revision it was read at (any write makes a new revision)."""

    llm: StoredLlm
    revision: str


@dataclass(frozen=True, slots=True)
class Loaded:
    """Whole items from one strongly consistent read: the record (``revoked`` applied) and the LLM."""

    record: SessionRecord | None = None
    llm: RevisedLlm | None = None
    url_breakers: Mapping[str, float] = field(default_factory=dict)


class SessionStateStore(Protocol):
    async def check(self, session_id: str, llm: LlmRef | None) -> Freshness:
        """One strongly consistent read of only what decides freshness (``revoked``, the revision);
        on the event loop: it runs on every request, beside the relay of other streams."""
        ...

    def load(self, session_id: str | None, llm: LlmRef | None) -> Loaded:
        """One strongly consistent read of the whole items (the session's, the LLM's, or both)."""
        ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and with which key the upstream is called."""

    urls: tuple[str, ...]
    api_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """What a verified stream request runs on: the token, its session, the LLM's config and key.

    ``pending`` is this request's freshness read while it is still running: nothing may reach the
    client before ``SessionAccess.settle`` has passed it.
    """

    claims: SessionClaims
    record: SessionRecord
    llm: Llm
    builtin: BuiltinLlm | None = None
    endpoint: Endpoint | None = field(default=None, repr=False)
    revision: str | None = None
    pending: asyncio.Future[Freshness] | None = field(default=None, repr=False, compare=False)
    #: Open URL breakers shared by other containers, from this request's read (once it is in).
    url_breakers: Mapping[str, float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def client_side(self) -> bool:
        return bool(self.builtin and self.builtin.client_side)

    @property
    def llm_changed(self) -> bool:
        """The LLM was updated after the mint; the session runs on the new (valid) config."""
        return self.llm.version != self.record.llm_version

    @property
    def llm_ref(self) -> LlmRef | None:
        return None if self.builtin is not None else LlmRef(self.claims.account_id, self.claims.llm_id)

    def upstream_view(self) -> tuple[object, ...]:
        """Everything the upstream request is built from: equal views make the same request."""
        llm = self.llm
        return (self.endpoint, llm.llm_format, llm.model_name, llm.deployment_name, llm.api_version,
                llm.temperature, llm.max_tokens, llm.headers, llm.timeouts, llm.reasoning_effort,
                llm.reasoning_format)  # fmt: skip

    def require_server_side(self) -> None:
        """The stream endpoint's refusal for client-side LLMs (``CUSTOMER_CLIENT_V1``)."""
        if self.client_side:
            raise Conflict(
                f"LLM {self.llm.id!r} runs on the client: there is no server-side stream for this session.",
                code="client_side_llm",
            )


def _retrieved(future: asyncio.Future[Freshness]) -> None:
    retrieved(future)


@dataclass
class SessionAccess:
    """Per container: what a stream request runs on, from memory when it can be, never stale.

    Memory holds only what does not change (a session record; an LLM config and its key at one
    revision) and revocations (a session never un-revokes). Every request makes exactly one
    strongly consistent freshness read (``SessionStateStore.check``, e.g. one ``BatchGetItem``):

    - warm: ``begin`` answers from memory at once and starts the read; the proxy opens the upstream
      concurrently and ``settle`` decides before the first byte: revoked, missing, deleted → 403
      (the upstream request is aborted); another revision → the config and key are read again;
    - cold: the session, the config and the key are read concurrently, shared by concurrent
      requests (single flight); the request that started the whole-item read has its freshness
      from it, a request that joined a read already under way makes its own ``check``.
    """

    store: SessionStateStore
    read_key: Callable[[str, str], str]
    """The stored LLM's current key, by account and LLM id (Secrets Manager + KMS)."""
    builtin_endpoint: Callable[[BuiltinLlm], tuple[list[str], str]]
    clock: Clock = time.time
    leeway_seconds: int = 0
    platform_key_ttl_seconds: float = 60.0
    """Built-ins' platform keys are the operator's, not a customer config: a minute per container."""
    max_entries: int = _MAX_ENTRIES
    _records: BoundedMap[str, SessionRecord] = field(init=False, repr=False)
    _revoked: BoundedMap[str, bool] = field(init=False, repr=False)
    _llms: BoundedMap[LlmRef, RevisedLlm] = field(init=False, repr=False)
    _keys: BoundedMap[LlmRef, tuple[str, str]] = field(init=False, repr=False)
    _builtins: TtlCache[str, Endpoint] = field(init=False, repr=False)
    _loads: SingleFlight[tuple[str | None, LlmRef | None], Loaded] = field(init=False, repr=False)
    _key_loads: SingleFlight[LlmRef, str] = field(init=False, repr=False)
    _builtin_loads: SingleFlight[str, tuple[list[str], str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._records = BoundedMap(self.max_entries, clock=self.clock)
        self._revoked = BoundedMap(self.max_entries, clock=self.clock)
        self._llms = BoundedMap(self.max_entries, clock=self.clock)
        self._keys = BoundedMap(self.max_entries, clock=self.clock)
        self._builtins = TtlCache(self.platform_key_ttl_seconds, max_entries=256)
        self._loads, self._key_loads, self._builtin_loads = SingleFlight(), SingleFlight(), SingleFlight()

    def forget(self) -> None:
        """Drop everything held in memory (a new container, as far as this object can tell)."""
        for memo in (self._records, self._revoked, self._llms, self._keys, self._builtins):
            memo.clear()

    # -- a request's way in

    async def begin(self, claims: SessionClaims) -> ActiveSession:
        """The session for a verified token, with its freshness read under way (or done).

        Raises 403 at once for a revocation already seen, a record that does not match the token
        or has expired; a client-side or not-``valid`` LLM waits for the read (then 403 or 409).
        """
        if self._revoked.get(claims.session_id):
            raise SessionRevoked("This session was revoked.")
        builtin = get_builtin(claims.llm_id)
        ref = None if builtin is not None else LlmRef(claims.account_id, claims.llm_id)
        session = self._from_memory(claims, builtin, ref) or await self._load(claims, builtin, ref)
        if session.client_side or session.llm.status != LlmStatus.VALID:
            session = await self.settle(session)
            _require_usable(session.llm)
        return session

    async def settle(self, session: ActiveSession) -> ActiveSession:
        """Wait for the request's freshness read; the session as it stands now.

        Raises 403 ``session_revoked`` / ``session_inactive`` (also for a deleted LLM) or 409 when
        the LLM's current config is not ``valid``. When the LLM changed, the returned session has
        the new config and key (compare ``upstream_view`` to know whether the request changes).
        """
        if session.pending is None:
            return session
        fresh = await session.pending
        claims, ref = session.claims, session.llm_ref
        if not fresh.session_found:
            self._records.discard(claims.session_id)
            raise SessionInactive("This session is not active.")
        if fresh.revoked:
            self._remember_revoked(claims)
            raise SessionRevoked("This session was revoked.")
        if ref is None or (fresh.llm_revision is not None and fresh.llm_revision == session.revision):
            return replace(session, pending=None, url_breakers=fresh.url_breakers)
        if not fresh.llm_found:
            self._forget_llm(ref)
            raise SessionInactive("The LLM of this session was deleted.")
        return replace(await self._reload(session, ref), url_breakers=fresh.url_breakers)

    # -- memory

    def _from_memory(
        self, claims: SessionClaims, builtin: BuiltinLlm | None, ref: LlmRef | None
    ) -> ActiveSession | None:
        record = self._records.get(claims.session_id)
        if record is None:
            return None
        if builtin is not None:
            endpoint = None if builtin.client_side else self._builtins.peek(builtin.id)
            if endpoint is None and not builtin.client_side:
                return None
            llm: Llm = builtin.to_llm()
            revision = None
        else:
            assert ref is not None
            revised, key = self._llms.get(ref), self._keys.get(ref)
            if revised is None or key is None or key[0] != revised.revision:
                return None
            llm, revision = revised.llm, revised.revision
            endpoint = Endpoint(tuple(u.url for u in revised.llm.urls), key[1])
        self._check_record(claims, record)
        pending = asyncio.get_running_loop().create_task(self._check_after_upstream(claims.session_id, ref))
        pending.add_done_callback(_retrieved)
        return ActiveSession(claims, record, llm, builtin, endpoint, revision, pending)

    async def _check_after_upstream(self, session_id: str, ref: LlmRef | None) -> Freshness:
        """The freshness read, two loop turns late: the upstream request the caller opens from memory
        goes out first (the read is needed only before the first byte is relayed, and building and
        sending it first cost that request ~0.5 ms of its time to first token). Two turns: the
        proxy opens its task, which starts the first attempt as a task of its own (the failover
        may hedge it)."""
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return await self.store.check(session_id, ref)

    async def _load(
        self, claims: SessionClaims, builtin: BuiltinLlm | None, ref: LlmRef | None
    ) -> ActiveSession:
        """A container's first request for this session or LLM: every missing read at once."""
        sid = claims.session_id
        record = self._records.get(sid)
        revised = self._llms.get(ref) if ref is not None else None
        cached_key = self._keys.get(ref) if ref is not None else None
        doc_key = (sid if record is None else None, ref if ref is not None and revised is None else None)
        docs: Awaitable[Loaded] | None = None
        led = False
        if doc_key != (None, None):
            docs, led = self._loads.start(doc_key, lambda: self.store.load(*doc_key))
        # The read this request started covers all it needs: it is this request's freshness read.
        covered = led and doc_key == (sid, ref)
        pending: asyncio.Future[Freshness] | None = None
        if not covered:
            pending = asyncio.get_running_loop().create_task(self.store.check(sid, ref))
            pending.add_done_callback(_retrieved)
        key: Awaitable[str] | None = None
        if ref is not None and cached_key is None:
            key, _ = self._key_loads.start(ref, lambda: self.read_key(ref.account_id, ref.llm_id))
        platform: Awaitable[tuple[list[str], str]] | None = None
        if builtin is not None and not builtin.client_side and self._builtins.peek(builtin.id) is None:
            platform, _ = self._builtin_loads.start(builtin.id, lambda: self.builtin_endpoint(builtin))
        # Failures are raised where their read is used: a deleted LLM is a 403, not a missing key.
        loaded, read_key, platform_endpoint = await asyncio.gather(
            _maybe(docs), _maybe(key), _maybe(platform), return_exceptions=True
        )

        loaded = _unwrap(loaded)
        record = self._record_from(claims, record, loaded)
        if builtin is not None:
            endpoint = await self._platform_endpoint(builtin, _unwrap(platform_endpoint))
            return ActiveSession(claims, record, builtin.to_llm(), builtin, endpoint, None, pending)
        assert ref is not None
        if revised is None:
            assert loaded is not None
            if loaded.llm is None:
                self._forget_llm(ref)
                raise SessionInactive("The LLM of this session was deleted.")
            revised = loaded.llm
            self._llms.put(ref, revised)
        api_key = await self._key_for(ref, revised, _unwrap(read_key), cached_key)
        endpoint = Endpoint(tuple(u.url for u in revised.llm.urls), api_key)
        breakers = loaded.url_breakers if loaded is not None else {}
        return ActiveSession(
            claims, record, revised.llm, None, endpoint, revised.revision, pending, url_breakers=breakers
        )

    def _record_from(
        self, claims: SessionClaims, record: SessionRecord | None, loaded: Loaded | None
    ) -> SessionRecord:
        """The record from memory or from the read just made, checked against the token."""
        if record is None:
            assert loaded is not None
            if loaded.record is None:
                raise SessionInactive("This session is not active.")
            if loaded.record.revoked:  # a revocation is final, whoever read it
                self._remember_revoked(claims)
                raise SessionRevoked("This session was revoked.")
            record = loaded.record
            self._check_record(claims, record)
            self._records.put(
                claims.session_id, record, expires_at=record.expires_at.timestamp() + self.leeway_seconds
            )
        else:
            self._check_record(claims, record)
        return record

    async def _platform_endpoint(
        self, builtin: BuiltinLlm, read: tuple[list[str], str] | None
    ) -> Endpoint | None:
        if read is not None:
            self._builtins.put(builtin.id, Endpoint(tuple(read[0]), read[1]))
        if builtin.client_side:
            return None
        endpoint = self._builtins.peek(builtin.id)
        if endpoint is None:  # expired since: read it now
            urls, platform_key = await asyncio.to_thread(self.builtin_endpoint, builtin)
            endpoint = Endpoint(tuple(urls), platform_key)
        return endpoint

    async def _key_for(
        self, ref: LlmRef, revised: RevisedLlm, read: str | None, cached: tuple[str, str] | None
    ) -> str:
        """The key that goes with this revision of the config (remembered with it)."""
        if read is None:
            assert cached is not None
            read = cached[1] if cached[0] == revised.revision else await self._fresh_key(ref)
        elif revised.llm.secret_hint is not None and secret_hint(read) != revised.llm.secret_hint:
            # Read alongside the config, the key may be of another generation (a rotation landed
            # between the two reads): read it again, now that the config read is done.
            read = await self._fresh_key(ref)
        self._keys.put(ref, (revised.revision, read))
        return read

    async def _reload(self, session: ActiveSession, ref: LlmRef) -> ActiveSession:
        """The LLM changed since it was read: its config and key again, both read after the check."""
        after = time.monotonic()
        docs, _ = self._loads.start((None, ref), lambda: self.store.load(None, ref), started_after=after)
        key, _ = self._key_loads.start(
            ref, lambda: self.read_key(ref.account_id, ref.llm_id), started_after=after
        )
        loaded, api_key = await asyncio.gather(docs, key, return_exceptions=True)
        loaded = _unwrap(loaded)
        if loaded.llm is None:
            self._forget_llm(ref)
            raise SessionInactive("The LLM of this session was deleted.")
        revised, api_key = loaded.llm, _unwrap(api_key)
        self._llms.put(ref, revised)
        self._keys.put(ref, (revised.revision, api_key))
        _require_usable(revised.llm)
        endpoint = Endpoint(tuple(u.url for u in revised.llm.urls), api_key)
        return replace(session, llm=revised.llm, revision=revised.revision, endpoint=endpoint, pending=None)

    async def _fresh_key(self, ref: LlmRef) -> str:
        key, _ = await self._key_loads.load(
            ref, lambda: self.read_key(ref.account_id, ref.llm_id), started_after=time.monotonic()
        )
        return key

    def _check_record(self, claims: SessionClaims, record: SessionRecord) -> None:
        if record.account_id != claims.account_id or record.llm_id != claims.llm_id:
            raise SessionInactive("This session is not active.")
        if self.clock() >= record.expires_at.timestamp() + self.leeway_seconds:
            raise SessionInactive("This session has expired.")

    def _remember_revoked(self, claims: SessionClaims) -> None:
        self._records.discard(claims.session_id)
        self._revoked.put(claims.session_id, True, expires_at=claims.expires_at + self.leeway_seconds)

    def _forget_llm(self, ref: LlmRef) -> None:
        self._llms.discard(ref)
        self._keys.discard(ref)


T = TypeVar("T")


async def _maybe(awaitable: Awaitable[T] | None) -> T | None:
    return None if awaitable is None else await awaitable


def _unwrap(result: T | BaseException) -> T:
    if isinstance(result, BaseException):
        raise result
    return result
