"""Whose LLM is this: one rule for every function that takes an LLM id from a caller.

Another account's LLM is answered exactly as a missing one (ids must not leak across accounts);
built-ins belong to the platform and are read-only.
"""

from __future__ import annotations

from typing import Protocol

from llm_gateway.catalog import get_builtin
from llm_gateway.errors import Forbidden, NotFound
from llm_gateway.models.llm import StoredLlm


class LlmReader(Protocol):
    def get(self, account_id: str, llm_id: str) -> StoredLlm | None: ...


def llm_not_found(llm_id: str) -> NotFound:
    return NotFound(f"No LLM with id {llm_id!r}.", code="llm_not_found")


def refuse_builtin(llm_id: str, verb: str) -> None:
    """403 for a built-in: the platform changes, deletes and validates those."""
    if get_builtin(llm_id) is not None:
        raise Forbidden(f"Built-in LLM {llm_id} is read-only and cannot be {verb}.", code="builtin_read_only")


def owned_llm(llms: LlmReader, account_id: str, llm_id: str) -> StoredLlm:
    """The caller's own LLM, or ``llm_not_found`` (missing and another account's look the same)."""
    stored = llms.get(account_id, llm_id)
    if stored is None or stored.account_id != account_id:
        raise llm_not_found(llm_id)
    return stored
