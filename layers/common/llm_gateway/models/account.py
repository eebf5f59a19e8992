"""Accounts and their API keys (stored only as a hash)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from llm_gateway.models.common import ApiModel


class Account(ApiModel):
    account_id: str
    name: str
    created_at: datetime


class NewAccount(ApiModel):
    """Returned once, at creation: the only time the API key is visible."""

    account_id: str
    api_key: str


#: A label people recognise in a list: printable text, no control characters, not only spaces. Not
#: stripped: the server refuses exactly what the document's pattern refuses (a leading form feed too).
ApiKeyName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
    ),
]


class ApiKeyCreate(ApiModel):
    name: ApiKeyName


class ApiKey(ApiModel):
    """One of an account's API keys as the API shows it: never the key, only its last characters."""

    id: str
    name: str
    hint: str = Field(description="The key's last 4 characters, after an ellipsis (…wxyz).")
    created_at: datetime
    last_used_at: datetime | None = Field(
        default=None, description="When the key last authenticated a request (to the minute)."
    )


class NewApiKey(ApiKey):
    """Returned once, by ``POST /v1/api-keys``: the only time the key itself is visible."""

    key: str


class ApiKeyList(ApiModel):
    data: list[ApiKey]


class StoredApiKey(ApiKey):
    """What the table keeps for a key: the public fields and the SHA-256 the authorizer looks up."""

    key_hash: str

    def public(self) -> ApiKey:
        return ApiKey.model_validate(self.model_dump(exclude={"key_hash"}))


class KeyOwner(ApiModel):
    """Who a presented key belongs to. ``key_id`` is None for keys made before keys had ids."""

    account_id: str
    key_id: str | None = None
