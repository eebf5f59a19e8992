"""Account API keys: random, shown once, stored and looked up only by their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime

from llm_gateway.domain.ports import AccountRepository
from llm_gateway.models.account import NewAccount

API_KEY_PREFIX = "llmgw_"


def hash_api_key(api_key: str) -> str:
    """SHA-256 is enough: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def create_account(accounts: AccountRepository, name: str) -> NewAccount:
    account_id = "acct_" + uuid.uuid4().hex[:20]
    api_key = new_api_key()
    accounts.create(account_id, name, hash_api_key(api_key), datetime.now(UTC))
    return NewAccount(account_id=account_id, api_key=api_key)


def parse_bearer(header_value: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>``; anything else is no key at all."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(API_KEY_PREFIX) or len(token) > 200:
        return None
    return token


def authenticate(accounts: AccountRepository, header_value: str | None) -> str | None:
    key = parse_bearer(header_value)
    return accounts.account_for_key_hash(hash_api_key(key)) if key else None
