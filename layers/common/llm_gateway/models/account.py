"""Accounts and their API keys (stored only as a hash)."""

from __future__ import annotations

from datetime import datetime

from llm_gateway.models.common import ApiModel


class Account(ApiModel):
    account_id: str
    name: str
    created_at: datetime


class NewAccount(ApiModel):
    """Returned once, at creation: the only time the API key is visible."""

    account_id: str
    api_key: str
