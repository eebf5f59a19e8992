"""Pydantic's validation errors rewritten for the people who read them.

Every field is named by its JSON name (``urls[0].url``), an unknown ``llmFormat`` lists the allowed
values, a body without ``llmFormat`` still lists every other missing field, and nothing of
pydantic's vocabulary (``Value error,``, discriminator tags, enum reprs) reaches a client. The
offending input is never echoed: it may be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from pydantic.alias_generators import to_camel

from llm_gateway.errors import BadRequest, CredentialInUrl

#: Location parts that say where pydantic looked, not which field a customer got wrong.
_LOC_SOURCES = frozenset({"body", "query", "path", "header"})
_QUOTED = re.compile(r"'([^']*)'")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_HEADLINE_ITEMS = 3
#: How pydantic names the branches of a plain union in an error's location (``content.str``).
_TYPE_BRANCHES = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def describe(errors: Iterable[Mapping[str, Any]], *, json_names: bool = True) -> list[dict[str, str]]:
    """``[{field, message, type}]``, one entry per problem, in a stable order, no duplicates.

    ``json_names=False`` keeps field names as the model spells them (the chat body is snake_case)."""
    out: list[dict[str, str]] = []
    for error in errors:
        for entry in _describe_one(error, json_names):
            last = out[-1] if out else None
            if last and last["field"] == entry["field"] and _alternative_types(last, entry):
                # One value, several accepted types (a union): one sentence, "a string or a list".
                last["message"] += " or " + entry["message"].removeprefix("must be ")
            elif entry not in out:
                out.append(entry)
    return out


def _alternative_types(first: dict[str, str], second: dict[str, str]) -> bool:
    return first["type"].endswith("_type") and second["type"].endswith("_type")


def headline(details: list[dict[str, str]], lead: str = "The request is not valid") -> str:
    """One sentence naming the first few problems: the error's ``message``."""
    if not details:
        return f"{lead}."
    items = [_sentence(d) for d in details[:_HEADLINE_ITEMS]]
    more = len(details) - _HEADLINE_ITEMS
    return f"{lead}: " + "; ".join(items) + (f" (and {more} more)." if more > 0 else ".")


def bad_request(details: list[dict[str, str]], lead: str = "The request is not valid") -> BadRequest:
    """The 400 for these problems: ``credential_in_url`` when a URL carries a credential (the code
    a client can act on), else ``validation_error``."""
    message = headline(details, lead)
    if any(d["type"] == "credential_in_url" for d in details):
        return CredentialInUrl(message, details=details)
    return BadRequest(message, details=details)


def _sentence(detail: dict[str, str]) -> str:
    field, message = detail["field"], detail["message"]
    if not field:
        return message.rstrip(".")
    leaf = re.split(r"[.\[]", field)[-1]
    if detail["type"] in ("value_error", "assertion_error"):
        return message if message.startswith(leaf) else f"{field}: {message}"
    return f"{field} {message}"


# ---------------------------------------------------------------------------------------------


def _describe_one(error: Mapping[str, Any], json_names: bool = True) -> list[dict[str, str]]:
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    field = field_name(error.get("loc", ()), camel=json_names)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _discriminator_problem(kind, ctx, error.get("input"), field)
    if kind == "missing" and not field:
        return [_entry("", "a JSON body is required", kind)]
    if kind in ("model_type", "model_attributes_type", "dict_type") and not field:
        return [_entry("", "the body must be a JSON object", kind)]
    return [_entry(field, _message(kind, ctx, str(error.get("msg", ""))), kind)]


def field_name(loc: Iterable[Any], *, camel: bool = True) -> str:
    """``('body', 'openai', 'urls', 0, 'url')`` → ``urls[0].url``; a Python name that slipped in
    (a model validated by field name, ``first_token_ms``) becomes its JSON name (``firstTokenMs``)."""
    parts = list(loc)
    if parts and parts[0] in _LOC_SOURCES:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif isinstance(part, str) and not _is_union_branch(part):
            part = to_camel(part) if camel and _SNAKE.fullmatch(part) else part
            name += f".{part}" if name else part
    return name


def _is_union_branch(part: str) -> bool:
    """A discriminated union's branch name (``openai``) or a validator wrapper (``function-after[…]``)."""
    return (
        part in _union_tags()
        or part.startswith(("function-", "json-or-python["))
        or part in _TYPE_BRANCHES
        or "[" in part
    )


def _entry(field: str, message: str, kind: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": kind}


def _message(kind: str, ctx: Mapping[str, Any], msg: str) -> str:
    simple = {
        "missing": "is required",
        "extra_forbidden": "is not a known field (field names are camelCase, e.g. displayName)",
        "none_required": "does not apply to this llmFormat; leave it out",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "dict_type": "must be a JSON object",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "json_invalid": "is not valid JSON",
    }
    if kind in simple:
        return simple[kind]
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"needs at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} items"
    bounds = {
        "greater_than_equal": ("ge", "must be at least"),
        "greater_than": ("gt", "must be greater than"),
        "less_than_equal": ("le", "must be at most"),
        "less_than": ("lt", "must be less than"),
    }
    if kind in bounds:
        key, words = bounds[kind]
        return f"{words} {ctx.get(key)}"
    if kind == "string_pattern_mismatch":
        return f"has characters that are not allowed (it must match {ctx.get('pattern')})"
    if kind in ("enum", "literal_error"):
        return f"must be one of {', '.join(_QUOTED.findall(str(ctx.get('expected', ''))))}"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return msg.replace("Input should be", "must be")


# --------------------------------------------------------------------------------------------- llmFormat


def _discriminator_problem(
    kind: str, ctx: Mapping[str, Any], given: Any, parent: str
) -> list[dict[str, str]]:
    """An unknown or absent ``llmFormat``: say which values exist, then list every other required
    field that is missing (found by validating the body again as the first format)."""
    names = _QUOTED.findall(str(ctx.get("discriminator", "")))
    alias = names[-1] if names else "llmFormat"
    field = f"{parent}.{alias}" if parent else alias
    allowed = ", ".join(_union_tags())
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))[:40]
        out = [_entry(field, f"must be one of {allowed} (not {tag!r})", "enum")]
    else:
        out = [_entry(field, f"is required: one of {allowed}", "missing")]
    if isinstance(given, Mapping) and alias == "llmFormat":
        out += [e for e in _missing_besides_format(given) if e not in out]
    return out


def _missing_besides_format(body: Mapping[str, Any]) -> list[dict[str, str]]:
    from pydantic import ValidationError

    first = _union_tags()[0]
    try:
        _create_adapter().validate_python({**body, "llmFormat": first})
    except ValidationError as exc:
        return [
            _entry(field_name(e["loc"]), "is required", "missing")
            for e in exc.errors(include_input=False, include_url=False)
            if e["type"] == "missing"
        ]
    return []


@lru_cache(maxsize=1)
def _union_tags() -> tuple[str, ...]:
    from llm_gateway.models.llm import LlmFormat

    return tuple(f.value for f in LlmFormat)


@lru_cache(maxsize=1)
def _create_adapter() -> Any:
    from pydantic import TypeAdapter

    from llm_gateway.models.llm import LlmCreate

    return TypeAdapter(LlmCreate)
