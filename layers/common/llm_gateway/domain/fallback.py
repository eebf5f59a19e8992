"""Fallback LLMs (``fallbackLlmIds``): when every URL of the session's LLM failed before the first
byte, or the conversation is too long for its context, the same request goes to the next fallback.

The fallback is read at that moment with one strongly consistent read (its config, with its key
read alongside): a deleted one, one that is no longer ``valid``, or a client-side built-in is
skipped, exactly as the session's own LLM would be refused. The session itself (revocation,
expiry) was already settled for this request. The persona's system prompt is already in the chat.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from llm_gateway.catalog import get_builtin
from llm_gateway.domain.failover import FailureKind, failure_kind
from llm_gateway.domain.sessions import ActiveSession, Endpoint, LlmRef, SessionAccess
from llm_gateway.domain.streaming import UpstreamFailure
from llm_gateway.errors import ErrorCode
from llm_gateway.models.llm import LlmStatus

#: Failures a fallback may rescue: the LLM's URLs all failed, or its context is too small.
_RESCUED = frozenset({FailureKind.TRANSIENT, FailureKind.CONFIG, FailureKind.SPENT})


def falls_back(failure: UpstreamFailure) -> bool:
    return failure.code == ErrorCode.UPSTREAM_CONTEXT_LENGTH_EXCEEDED or failure_kind(failure) in _RESCUED


async def fallback_session(
    access: SessionAccess, session: ActiveSession, llm_id: str
) -> ActiveSession | None:
    """``session`` running on the fallback ``llm_id`` as it is stored now; None when it cannot answer."""
    builtin = get_builtin(llm_id)
    if builtin is not None:
        if builtin.client_side:
            return None
        urls, platform_key = await asyncio.to_thread(access.builtin_endpoint, builtin)
        endpoint = Endpoint(tuple(urls), platform_key)
        return replace(session, llm=builtin.to_llm(), builtin=builtin, endpoint=endpoint, revision=None)
    ref = LlmRef(session.claims.account_id, llm_id)
    loaded, api_key = await asyncio.gather(
        asyncio.to_thread(access.store.load, None, ref),
        asyncio.to_thread(access.read_key, ref.account_id, ref.llm_id),
        return_exceptions=True,
    )
    if isinstance(loaded, BaseException) or loaded.llm is None or isinstance(api_key, BaseException):
        return None
    llm = loaded.llm.llm
    if llm.status != LlmStatus.VALID or llm.account_id != session.claims.account_id:
        return None
    endpoint = Endpoint(tuple(u.url for u in llm.urls), api_key)
    return replace(
        session,
        llm=llm,
        builtin=None,
        endpoint=endpoint,
        revision=loaded.llm.revision,
        pending=None,
        url_breakers=loaded.url_breakers,
    )
