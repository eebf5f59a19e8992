"""Hints for an error the upstream reported inside a 200 stream, for every spec.

An error event is a different failure from the same error before the first byte: before any token
it should have been a non-2xx answer (clients, retries and failover only see the status); after
tokens the answer was cut mid-sentence, and what to fix depends on why.
"""

from __future__ import annotations

from llm_gateway.errors import ErrorCode

__all__ = ["stream_error_hint"]

_BEFORE_TOKENS = (
    "Report an error found before generating as a non-2xx HTTP answer with a JSON error body, not as "
    "an event inside a 200 stream: clients, retries and the gateway's failover only read the status."
)
_AFTER_TOKENS = {
    ErrorCode.UPSTREAM_RATE_LIMITED: (
        "The endpoint started the answer, then stopped it with a rate-limit or quota error: raise the "
        "key's limits (tokens per minute) or its quota, since a limit hit mid-answer cuts users off."
    ),
    ErrorCode.UPSTREAM_BAD_REQUEST: (
        "The endpoint started the answer, then rejected it mid-stream (typically a content filter on the "
        "output or the model's context length): review the filter policy and the model's limits."
    ),
    ErrorCode.UPSTREAM_UNAUTHORIZED: (
        "The endpoint started the answer, then reported an authentication error mid-stream: check that "
        "the key stays valid (expiry, rotation) on every backend behind the URL."
    ),
}
_FAILED_WHILE_GENERATING = (
    "The endpoint started the answer, then failed while generating and sent an error event: look in "
    "its logs for the failure at the time of this report (overload, a crashed worker) and validate again."
)


def stream_error_hint(code: ErrorCode, *, after_tokens: bool) -> str:
    """The hint for an error event, by whether tokens were already sent and the error's gateway code."""
    if not after_tokens:
        return _BEFORE_TOKENS
    return _AFTER_TOKENS.get(code, _FAILED_WHILE_GENERATING)
