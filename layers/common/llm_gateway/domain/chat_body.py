"""The stream endpoint's request body: every body the gateway cannot use is a 400 ``invalid_request``
that names the wrong field, decided here, before any upstream request is built.

pydantic-core parses and validates in one pass (no intermediate ``json.loads``), and its JSON
parser already refuses what would break later: nesting deeper than its recursion limit, invalid
UTF-8 and lone surrogates (text no upstream body could be encoded with). Only when that parser
refuses a body does the slow path run, to say *which* field held the bad text. Non-finite numbers
(``NaN``) are refused too: the upstream body must be strict JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from llm_gateway import validation_messages
from llm_gateway.errors import InvalidRequest
from llm_gateway.models.chat import ChatRequest

_LEAD = "The body is not a valid Chat Completions request"
#: Deeper than this is refused on the slow path too (pydantic-core's own limit is about 200).
MAX_DEPTH = 128
_NOT_STRUCTURE = re.compile(r"[^\[\]{}]+")


def parse_chat(body: bytes) -> ChatRequest:
    """The chat request in ``body``; raises ``InvalidRequest`` naming the wrong field."""
    if not body.strip():
        raise _invalid([{"field": "", "message": "a JSON body is required", "type": "missing"}])
    try:
        chat = ChatRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise _invalid(_why_not_json(body)) from None
        raise _invalid(validation_messages.describe(errors, json_names=False)) from None
    if (b"NaN" in body or b"Infinity" in body) and (where := _non_finite(chat)) is not None:
        raise _invalid([{"field": where, "message": "must be a finite number", "type": "finite_number"}])
    return chat


def _invalid(details: list[dict[str, str]]) -> InvalidRequest:
    return InvalidRequest(validation_messages.headline(details, _LEAD), details=details)


def _why_not_json(body: bytes) -> list[dict[str, str]]:
    """The error path only: find the field whose text cannot be encoded, or say what is wrong."""
    try:
        text = body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return [{"field": "", "message": "the body is not valid UTF-8", "type": "invalid_encoding"}]
    if _too_deep(text):
        return [{"field": "", "message": f"JSON nests deeper than {MAX_DEPTH} levels", "type": "too_deep"}]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return [{"field": "", "message": "the body is not valid JSON", "type": "json_invalid"}]
    where = _first_unencodable(data, "")
    if where is not None:
        return [
            {
                "field": where,
                "message": "holds text that is not valid Unicode (a lone surrogate)",
                "type": "invalid_unicode",
            }
        ]
    return [{"field": "", "message": "the body is not valid JSON", "type": "json_invalid"}]


def _too_deep(text: str) -> bool:
    """Nesting depth of the JSON text, brackets inside strings ignored; C-speed passes only: escapes
    are cut first, then everything but structure, then each pass removes one level of pairs."""
    cleaned = text.replace("\\\\", "").replace('\\"', "")
    structure = "".join(cleaned.split('"')[::2])  # outside strings
    brackets = _NOT_STRUCTURE.sub("", structure)
    for _ in range(MAX_DEPTH + 1):
        shorter = brackets.replace("[]", "").replace("{}", "")
        if shorter == brackets:
            return False
        brackets = shorter
    return bool(brackets)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _first_unencodable(value: Any, where: str) -> str | None:
    """The path of the first string (value or key) that UTF-8 cannot encode (depth is bounded)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(body)"
        return None
    items: Any = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, item in items:
        if isinstance(key, str) and _first_unencodable(key, "") is not None:
            return _path(where, "(a key)")
        found = _first_unencodable(item, _path(where, key))
        if found is not None:
            return found
    return None


def _non_finite(chat: ChatRequest) -> str | None:
    """The path of the first NaN or infinity in the request (free-form objects may hold one)."""

    def walk(value: Any, where: str) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return where
        items: Any = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        for key, item in items:
            found = walk(item, _path(where, key))
            if found is not None:
                return found
        return None

    return walk(chat.model_dump(exclude_none=True), "")
