"""What the domain needs from the outside world. Adapters implement these; tests may fake them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from llm_gateway.models.llm import StoredLlm


class VersionConflict(Exception):
    """A conditional write lost against a concurrent one (or a stale ``If-Match``)."""


class AlreadyExists(Exception):
    """A conditional create found the item already there."""


class LlmRepository(Protocol):
    def create(self, llm: StoredLlm) -> None: ...
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


class AccountRepository(Protocol):
    def create(self, account_id: str, name: str, key_hash: str, created_at: datetime) -> None: ...
    def account_for_key_hash(self, key_hash: str) -> str | None: ...
