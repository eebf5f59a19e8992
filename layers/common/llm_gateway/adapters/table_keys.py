"""The table's keys, shared by the registry's repositories and the stream's reads (which import
only this, not the repositories and their models)."""

from __future__ import annotations

import hashlib

SESSION_SK = "SESSION"


def account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def llm_sk(llm_id: str) -> str:
    return f"LLM#{llm_id}"


def session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def llm_revision(doc: str) -> str:
    """A short hash of an LLM item's document: equal revisions, equal documents."""
    return hashlib.blake2b(doc.encode(), digest_size=8).hexdigest()
