"""What the domain needs from the outside world. Adapters implement these; tests may fake them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: the authorizer, for one, never loads the LLM models
    from llm_gateway.models.account import KeyOwner, StoredApiKey
    from llm_gateway.models.llm import StoredLlm


class VersionConflict(Exception):
    """A conditional write lost against a concurrent one (or a stale ``If-Match``)."""


class AlreadyExists(Exception):
    """A conditional create found the item already there."""


class LimitReached(Exception):
    """The account already holds ``limit`` items of this kind (a conditional count refused one more)."""

    def __init__(self, account_id: str, what: str, limit: int) -> None:
        super().__init__(f"{account_id}: {what} at {limit}")
        self.limit = limit


class LlmRepository(Protocol):
    def create(self, llm: StoredLlm, limit: int) -> None:
        """Raises ``LimitReached`` when the account already has ``limit`` LLMs (atomically)."""
        ...

    def get(self, account_id: str, llm_id: str) -> StoredLlm | None: ...
    def list(self, account_id: str) -> list[StoredLlm]: ...
    def replace(self, llm: StoredLlm, expected_version: int) -> None: ...
    def delete(self, account_id: str, llm_id: str) -> bool: ...


class CredentialStore(Protocol):
    def create(self, account_id: str, llm_id: str, secret: str) -> str: ...
    def stage_pending(self, account_id: str, llm_id: str, secret: str) -> None: ...
    def delete(self, account_id: str, llm_id: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class UrlGuard(Protocol):
    """Raises ``EndpointBlocked`` when a URL may not be called (scheme, port, resolved address), and
    its subclass ``EndpointUnresolvable`` when the host has no address (yet)."""

    def check(self, url: str) -> None: ...


class TooManyKeys(Exception):
    """The account already holds the most API keys it may."""


class LastKey(Exception):
    """Revoking this key would leave the account with none (and locked out for good)."""


class AccountRepository(Protocol):
    def create(self, account_id: str, name: str, first_key: StoredApiKey, created_at: datetime) -> None: ...
    def owner_of_key(self, key_hash: str) -> KeyOwner | None: ...
    def add_key(self, account_id: str, key: StoredApiKey, max_keys: int) -> None:
        """Raises ``TooManyKeys`` when the account already has ``max_keys``."""
        ...

    def list_keys(self, account_id: str) -> list[StoredApiKey]: ...
    def delete_key(self, account_id: str, key_id: str) -> bool:
        """False when the account has no such key; raises ``LastKey`` for its only key."""
        ...

    def touch_key(self, account_id: str, key_id: str, used_at: datetime, stale_before: datetime) -> None:
        """Record a use, unless one after ``stale_before`` is already recorded (bounded writes)."""
        ...
