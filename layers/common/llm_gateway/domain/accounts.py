"""Account API keys: random, shown once, stored and looked up only by their SHA-256.

An account holds 1 to ``MAX_API_KEYS`` keys, each with an id, a name and its last four
characters, so people can tell them apart, rotate them and revoke a leaked one. The authorizer
records when a key was last used, at most once a minute per key (``LAST_USED_RESOLUTION``), so
a busy key does not turn every request into a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from llm_gateway.domain.ports import AccountRepository, LastKey, TooManyKeys
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.models.account import ApiKeyList, NewAccount, NewApiKey, StoredApiKey

API_KEY_PREFIX = "llmgw_"
MAX_API_KEYS = 10
FIRST_KEY_NAME = "default"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_api_key(api_key: str) -> str:
    """SHA-256 is enough: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def key_hint(api_key: str) -> str:
    """The last four characters: enough to recognise a key, useless to guess one (256 bits)."""
    return "…" + api_key[-4:]


def _new_key(name: str, now: datetime) -> tuple[str, StoredApiKey]:
    api_key = new_api_key()
    stored = StoredApiKey(
        id="key_" + uuid.uuid4().hex[:20],
        name=name,
        hint=key_hint(api_key),
        created_at=now,
        key_hash=hash_api_key(api_key),
    )
    return api_key, stored


def create_account(accounts: AccountRepository, name: str) -> NewAccount:
    account_id = "acct_" + uuid.uuid4().hex[:20]
    now = datetime.now(UTC)
    api_key, first = _new_key(FIRST_KEY_NAME, now)
    accounts.create(account_id, name, first, now)
    return NewAccount(account_id=account_id, api_key=api_key)


def list_api_keys(accounts: AccountRepository, account_id: str) -> ApiKeyList:
    keys = sorted(accounts.list_keys(account_id), key=lambda k: (k.created_at, k.id))
    return ApiKeyList(data=[k.public() for k in keys])


def create_api_key(accounts: AccountRepository, account_id: str, name: str) -> NewApiKey:
    api_key, stored = _new_key(name, datetime.now(UTC))
    try:
        accounts.add_key(account_id, stored, MAX_API_KEYS)
    except TooManyKeys:
        raise Conflict(
            f"An account holds at most {MAX_API_KEYS} API keys. Revoke one you no longer use first.",
            code="api_key_limit_reached",
            details={"limit": MAX_API_KEYS},
        ) from None
    return NewApiKey(**stored.public().model_dump(), key=api_key)


def revoke_api_key(accounts: AccountRepository, account_id: str, key_id: str) -> None:
    try:
        deleted = accounts.delete_key(account_id, key_id)
    except LastKey:
        raise Conflict(
            "This is the account's only API key. Create another one before revoking it.",
            code="last_api_key",
        ) from None
    if not deleted:
        raise api_key_not_found(key_id)


def api_key_not_found(key_id: str) -> NotFound:
    """The same answer for another account's key and a made-up id (SECURITY 17)."""
    return NotFound(f"No API key {key_id}.", code="api_key_not_found")


def parse_bearer(header_value: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>``; anything else is no key at all."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(API_KEY_PREFIX) or len(token) > 200:
        return None
    return token


def authenticate(
    accounts: AccountRepository, header_value: str | None, now: datetime | None = None
) -> str | None:
    """The account a presented key belongs to (None for a missing, unknown or revoked key).

    Recording the use is bookkeeping: if that write fails the request is still authenticated.
    """
    key = parse_bearer(header_value)
    owner = accounts.owner_of_key(hash_api_key(key)) if key else None
    if owner is None:
        return None
    if owner.key_id is not None:
        used_at = now or datetime.now(UTC)
        with contextlib.suppress(Exception):
            accounts.touch_key(owner.account_id, owner.key_id, used_at, used_at - LAST_USED_RESOLUTION)
    return owner.account_id
