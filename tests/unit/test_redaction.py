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


# --- issue 9: a known key is found however an upstream echoes it ------------------------------------

import base64  # noqa: E402
import re  # noqa: E402
from urllib.parse import quote, quote_plus, unquote  # noqa: E402

from llm_gateway.redaction import redact_text, redact_url  # noqa: E402

_KEY_ALPHABET = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\")
#: Bytes that never occur in an ASCII key: what surrounds it cannot re-create it by accident.
_FILLER = st.binary(max_size=12).map(lambda b: bytes(0x80 | x for x in b))
_B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]+")


def _base64_leaks(text: str, key: str) -> bool:
    """Independent oracle: can a reader recover the key's middle by base64-decoding any run of
    base64 characters in ``text``, from any starting character, in either alphabet?"""
    middle = key.encode()[2:-2]
    for run in _B64_RUN.findall(text):
        for start in range(4):
            chunk = run[start:].rstrip("=")
            chunk = chunk[: len(chunk) // 4 * 4]
            for alphabet in (chunk, chunk.replace("-", "+").replace("_", "/")):
                try:
                    decoded = base64.b64decode(alphabet, validate=False)
                except ValueError:
                    continue
                if middle in decoded:
                    return True
    return False


@given(
    key=st.text(_KEY_ALPHABET, min_size=12, max_size=64),
    before=_FILLER,
    after=_FILLER,
    urlsafe=st.booleans(),
    padded=st.booleans(),
)
def test_a_key_echoed_base64_encoded_at_any_offset_is_redacted(
    key: str, before: bytes, after: bytes, urlsafe: bool, padded: bool
) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    blob = encode(before + key.encode() + after).decode()
    blob = blob if padded else blob.rstrip("=")
    assert _base64_leaks(f'{{"echo": "{blob}"}}', key), "the oracle must see the raw echo"
    assert not _base64_leaks(redact_text(f'{{"echo": "{blob}"}}', [key]), key)


@given(
    key=st.text(_KEY_ALPHABET, min_size=8, max_size=64),
    form=st.sampled_from(["upper", "lower", "swapcase", "quote", "quote_plus", "partial", "json"]),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_a_key_echoed_in_another_case_or_percent_or_json_escaped_is_redacted(
    key: str, form: str, before: str, after: str
) -> None:
    encoded = {
        "upper": key.upper(),
        "lower": key.lower(),
        "swapcase": key.swapcase(),
        "quote": quote(key, safe=""),
        "quote_plus": quote_plus(key, safe=""),
        "partial": quote(key[: len(key) // 2], safe="") + key[len(key) // 2 :],
        "json": json.dumps(key)[1:-1].replace("/", "\\/"),
    }[form]
    out = redact_text(before + encoded + after, [key])
    assert key.lower() not in _readable(out).lower()
    assert "[REDACTED]" in out


def _readable(text: str) -> str:
    """What a reader makes of ``text``: JSON escapes undone, then percent-decoding."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)
    return unquote(re.sub(r'\\([/"\\])', r"\1", text))


def test_the_report_endpoint_and_logs_cut_every_credential_parameter() -> None:
    url = "https://u:p@h.example/v1?code=c1&AUTH=a1&x-api-key=x1&subscription-key=s1&Sig=g1&alt=sse"
    shown = redact_url(url)
    assert shown == (
        "https://h.example/v1?code=[REDACTED]&AUTH=[REDACTED]&x-api-key=[REDACTED]"
        "&subscription-key=[REDACTED]&Sig=[REDACTED]&alt=sse"
    )
    logged = redact_text(f"calling {url} now")
    for value in ("u:p", "c1", "a1", "x1", "s1", "g1"):
        assert value not in logged
    assert "alt=sse" in logged
