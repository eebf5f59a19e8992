"""Per-account limits with API Gateway usage plans.

Every account owns one API Gateway API key in the stage's usage plan. The API reads keys from the
authorizer (``ApiKeySourceType: AUTHORIZER``): clients never send this key, the authorizer returns
it as ``usageIdentifierKey`` and API Gateway throttles each account on its own token bucket. The
key value is therefore an identifier, not a credential, and is derived from the account id so the
authorizer needs no extra lookup on its path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

#: API Gateway key values are 20-128 alphanumeric characters.
USAGE_KEY_PREFIX = "llmgw"


def usage_key_value(account_id: str) -> str:
    """The account's usage-plan key value: stable, alphanumeric, 37 characters."""
    return USAGE_KEY_PREFIX + hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:32]


class UsagePlans(Protocol):
    """API Gateway's API keys and usage plans."""

    def create_key(self, name: str, value: str, account_id: str) -> str:
        """Create an enabled API key with this value; return its id."""
        ...

    def add_to_plan(self, usage_plan_id: str, key_id: str) -> None: ...


class UsageKeyStore(Protocol):
    def save_usage_key(self, account_id: str, usage_plan_id: str, key_id: str) -> None: ...


@dataclass(frozen=True)
class UsageKey:
    account_id: str
    usage_plan_id: str
    key_id: str


def enroll_account(plans: UsagePlans, store: UsageKeyStore, account_id: str, usage_plan_id: str) -> UsageKey:
    """Give the account its API key in the plan, and remember which key that is."""
    key_id = plans.create_key(f"account-{account_id}", usage_key_value(account_id), account_id)
    plans.add_to_plan(usage_plan_id, key_id)
    store.save_usage_key(account_id, usage_plan_id, key_id)
    return UsageKey(account_id=account_id, usage_plan_id=usage_plan_id, key_id=key_id)
