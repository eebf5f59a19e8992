"""SECURITY 10: credential headers are redacted in any casing, wherever they sit in a log record."""

from __future__ import annotations

import io
import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.observability import REDACTED, RedactingFormatter, redact

SENSITIVE = ["Authorization", "x-api-key", "api-key", "Cookie", "x-goog-api-key", "Proxy-Authorization"]


def any_casing(name: str) -> st.SearchStrategy[str]:
    return st.tuples(*[st.sampled_from([c.lower(), c.upper()]) for c in name]).map("".join)


@given(
    name=st.sampled_from(SENSITIVE).flatmap(any_casing),
    value=st.text(min_size=1, max_size=40),
    depth=st.integers(min_value=0, max_value=4),
)
def test_sensitive_names_are_redacted_at_any_depth(name: str, value: str, depth: int) -> None:
    record: object = {name: value, "keep": "visible"}
    for _ in range(depth):
        record = {"nested": [record]}
    redacted = redact(record)
    inner = redacted
    for _ in range(depth):
        inner = inner["nested"][0]  # type: ignore[index]
    assert inner == {name: REDACTED, "keep": "visible"}


@given(
    key=st.from_regex(r"[A-Za-z0-9_\-]{8,40}", fullmatch=True),
    param=st.sampled_from(["key", "api_key", "apiKey", "token"]),
)
def test_keys_in_query_strings_and_bearer_values_are_cut(key: str, param: str) -> None:
    text = f"GET https://generativelanguage.googleapis.com/v1beta/models/x:streamGenerateContent?alt=sse&{param}={key} Bearer {key}"
    assert key not in redact(text)


def test_the_logger_formatter_redacts_before_serialising() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter())
    logger = logging.getLogger("redaction-test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning(
        "calling upstream", extra={"headers": {"AUTHORIZATION": "Bearer sk-canary-1", "X-Trace": "t"}}
    )
    line = json.loads(stream.getvalue())
    assert line["headers"] == {"AUTHORIZATION": REDACTED, "X-Trace": "t"}
    assert "sk-canary-1" not in stream.getvalue()
