"""Google Gemini (Developer API, ``streamGenerateContent?alt=sse``): URLs, request building, spec
checks of raw responses, and translation of the stream into OpenAI ``chat.completion.chunk`` events.

Pure functions and small state machines: no I/O, no framework. The translator sits on the proxy's
hot path, so it does one ``json.loads`` per upstream event and writes pre-framed bytes.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import FORBIDDEN_HEADERS
from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.providers.sse import SseEvent, SseLimitExceeded, SseObservations, SseParser, parse_sse

__all__ = [
    "DEFAULT_API_BASE",
    "OUTCOME_CHECK_IDS",
    "GeminiRequestError",
    "GeminiStreamTranslator",
    "UpstreamRequest",
    "build_request",
    "check_response",
    "classify_error",
    "conforms",
    "map_finish_reason",
    "stream_url",
]

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
MAX_EVIDENCE_BYTES = 512

# Gemini 3 rejects replayed function calls without a thought signature; this documented value
# tells the API to skip that validation when the client did not keep the real signature.
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads

_VERSION_SEGMENT = re.compile(r"^v\d+(?:(?:alpha|beta)\d*)?$")
_GOOGLE_API_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{20,}")
_GRPC_STATUS = re.compile(r"^[A-Z][A-Z_]{0,40}$")


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


def _model_path(model_name: str) -> str:
    """``models/{model}``; a name already prefixed (``models/…``, ``tunedModels/…``) is kept."""
    name = model_name.strip().strip("/")
    if name.startswith(("models/", "tunedModels/")):
        prefix, _, rest = name.partition("/")
        return f"{prefix}/{quote(rest, safe='-._~@+')}"
    return f"models/{quote(name, safe='-._~@+')}"


def stream_url(url: str, model_name: str) -> str:
    """The streaming URL for a registered Gemini URL, always with ``alt=sse`` and never a key.

    Accepts the API base (with or without ``/v1beta`` or ``/v1``) or a full model-method URL
    (``…/models/{model}:streamGenerateContent`` or ``:generateContent``). A ``key=`` query
    parameter is dropped: the key travels only in the ``x-goog-api-key`` header.
    """
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path = path[: path.rindex(":")] + ":streamGenerateContent"
    elif re.search(r"/(?:models|tunedModels)/[^/]+$", path):
        path += ":streamGenerateContent"
    else:
        if last in ("models", "tunedModels"):
            path = path[: -len(last)].rstrip("/")
            last = path.rsplit("/", 1)[-1]
        if not _VERSION_SEGMENT.match(last):
            path += "/" + DEFAULT_API_VERSION
        path += "/" + _model_path(model_name) + ":streamGenerateContent"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in ("key", "alt")
    ]
    query.append(("alt", "sse"))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def _api_version(url: str) -> str:
    segments = urlsplit(url).path.split("/")
    return next((s for s in segments if _VERSION_SEGMENT.match(s)), DEFAULT_API_VERSION)


# --------------------------------------------------------------------------------------------
# Request building
# --------------------------------------------------------------------------------------------


class GeminiRequestError(ValueError):
    """The chat request holds something Gemini cannot take (a client error, not an upstream one)."""


def build_request(
    *,
    url: str,
    model_name: str,
    api_key: str,
    chat: ChatRequest,
    temperature: float | None = None,
    max_tokens: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> UpstreamRequest:
    """Translate an OpenAI chat request into a Gemini ``streamGenerateContent`` request.

    ``temperature``/``max_tokens``/``extra_headers`` come from the LLM config. The request's
    temperature wins over the config's; the config's ``max_tokens`` is a ceiling.
    """
    final_url = stream_url(url, model_name)
    payload = translate_chat(
        chat, temperature=temperature, max_tokens=max_tokens, api_version=_api_version(final_url)
    )
    out_headers: dict[str, str] = {}
    for name, value in (extra_headers or {}).items():
        lower = name.lower()
        if lower in FORBIDDEN_HEADERS or lower.startswith(("proxy-", "x-amz-")):
            continue  # never let config headers replace auth or transport headers
        out_headers[lower] = value
    out_headers["content-type"] = "application/json"
    out_headers["accept"] = "text/event-stream"
    out_headers["x-goog-api-key"] = api_key
    return UpstreamRequest("POST", final_url, out_headers, _dumps(payload).encode("utf-8"))


def translate_chat(
    chat: ChatRequest,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    api_version: str = DEFAULT_API_VERSION,
) -> dict[str, Any]:
    """The ``GenerateContentRequest`` JSON body for an OpenAI chat request."""
    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    for message in chat.messages:
        role = message.role
        if role in ("system", "developer"):
            system_parts.extend(_text_only_parts(message.content, role))
        elif role == "user":
            _append_content(contents, "user", _user_parts(message.content))
        elif role == "assistant":
            _append_content(contents, "model", _assistant_parts(message, call_names))
        elif role in ("tool", "function"):
            _append_content(contents, "user", [_function_response_part(message, call_names)])
        else:
            raise GeminiRequestError(f"message role {role!r} is not supported")

    payload: dict[str, Any] = {}
    if not contents and system_parts:
        # Gemini needs at least one content turn; a system-only prompt becomes the user turn.
        contents, system_parts = [{"role": "user", "parts": system_parts}], []
    payload["contents"] = contents
    if system_parts:
        payload["systemInstruction"] = {"parts": system_parts}

    declarations = _function_declarations(chat.tools, api_version)
    if declarations:
        payload["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(chat.tool_choice)
        if tool_config:
            payload["toolConfig"] = tool_config

    generation: dict[str, Any] = {}
    temp = chat.temperature if chat.temperature is not None else temperature
    if temp is not None:
        generation["temperature"] = temp
    limits = [v for v in (chat.max_completion_tokens or chat.max_tokens, max_tokens) if v is not None]
    if limits:
        generation["maxOutputTokens"] = min(limits)
    if generation:
        payload["generationConfig"] = generation
    return payload


def _append_content(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the previous one of the same role (Gemini wants alternation,
    and all function responses of one step in a single turn)."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _text_of(item: Mapping[str, Any]) -> str:
    text = item.get("text")
    if not isinstance(text, str):
        raise GeminiRequestError("a text content part must have a string `text`")
    return text


def _text_only_parts(content: Any, role: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, Mapping) and item.get("type") == "text":
                text = _text_of(item)
                if text:
                    parts.append({"text": text})
            else:
                raise GeminiRequestError(f"{role} messages may only hold text parts")
        return parts
    raise GeminiRequestError(f"{role} message content must be a string or a list of parts")


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return _text_only_parts(content, "user")
    if not isinstance(content, list):
        raise GeminiRequestError("user message content must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for item in content:
        if not isinstance(item, Mapping):
            raise GeminiRequestError("content parts must be objects")
        kind = item.get("type")
        if kind == "text":
            text = _text_of(item)
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            image = item.get("image_url")
            address = image.get("url") if isinstance(image, Mapping) else image
            if not isinstance(address, str):
                raise GeminiRequestError("image_url parts need a url")
            parts.append(_media_part(address))
        elif kind == "input_audio":
            audio = item.get("input_audio")
            if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
                raise GeminiRequestError("input_audio parts need base64 `data`")
            fmt = str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": audio["data"]}})
        else:
            raise GeminiRequestError(f"content part type {kind!r} is not supported for Gemini")
    return parts


def _media_part(address: str) -> dict[str, Any]:
    """A data URL becomes inline bytes; any other URL is passed as a file reference."""
    if address.startswith("data:"):
        header, _, data = address[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not mime:
            raise GeminiRequestError("data URLs must be base64 with a media type")
        return {"inlineData": {"mimeType": mime, "data": data}}
    return {"fileData": {"fileUri": address}}


def _assistant_parts(message: ChatMessage, call_names: dict[str, str]) -> list[dict[str, Any]]:
    content = message.content
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif isinstance(content, list):
        for item in content:
            if isinstance(item, Mapping) and item.get("type") in ("text", "refusal"):
                text = item.get("text") if item.get("type") == "text" else item.get("refusal")
                if isinstance(text, str) and text:
                    parts.append({"text": text})
            else:
                raise GeminiRequestError("assistant messages may only hold text parts")
    elif content is not None:
        raise GeminiRequestError("assistant message content must be a string or a list of parts")

    first_call = True
    for call in message.tool_calls or []:
        function = call.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise GeminiRequestError("assistant tool_calls need function.name")
        name = function["name"]
        part: dict[str, Any] = {"functionCall": {"name": name, "args": _call_args(function.get("arguments"))}}
        signature = _thought_signature(call)
        if signature or first_call:
            part["thoughtSignature"] = signature or SKIP_THOUGHT_SIGNATURE
        first_call = False
        parts.append(part)
        if isinstance(call.get("id"), str):
            call_names[call["id"]] = name
    return parts


def _call_args(arguments: Any) -> dict[str, Any]:
    """OpenAI carries arguments as a JSON string; Gemini wants an object."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, str):
        try:
            parsed = _loads(arguments)
        except ValueError:
            return {"arguments": arguments}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {"value": arguments}


def _thought_signature(call: Mapping[str, Any]) -> str | None:
    """The signature we handed out in ``extra_content.google`` (same place as Gemini's own
    OpenAI-compatible endpoint), if the client kept it."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, Mapping) else None
    signature = google.get("thought_signature") if isinstance(google, Mapping) else None
    return signature if isinstance(signature, str) and signature else None


def _function_response_part(message: ChatMessage, call_names: Mapping[str, str]) -> dict[str, Any]:
    name = (call_names.get(message.tool_call_id or "") if message.tool_call_id else None) or message.name
    if not name:
        raise GeminiRequestError("a tool message must answer a tool_call_id of an earlier assistant message")
    content = message.content
    if isinstance(content, list):
        text = "".join(
            item.get("text", "")
            for item in content
            if isinstance(item, Mapping) and item.get("type") == "text"
        )
    elif content is None:
        text = ""
    else:
        text = content if isinstance(content, str) else _dumps(content)
    response: dict[str, Any]
    try:
        parsed = _loads(text) if text else None
    except ValueError:
        parsed = text
    response = parsed if isinstance(parsed, dict) else {"result": parsed}
    return {"functionResponse": {"name": name, "response": response}}


def _function_declarations(
    tools: Sequence[Mapping[str, Any]] | None, api_version: str
) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools or []:
        if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), Mapping):
            continue  # Gemini has no equivalent of other OpenAI tool types
        function = tool["function"]
        if not isinstance(function.get("name"), str):
            raise GeminiRequestError("every function tool needs a name")
        declaration: dict[str, Any] = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, Mapping):
            if api_version == "v1":
                declaration["parameters"] = _openapi_schema(parameters)
            else:  # v1beta takes full JSON Schema (additionalProperties, $defs, …) as is
                declaration["parametersJsonSchema"] = dict(parameters)
        declarations.append(declaration)
    return declarations


_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def _openapi_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI subset ``parameters`` accepts (v1 has no ``parametersJsonSchema``)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if kinds:
                out["type"] = kinds[0]
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {k: _openapi_schema(v) for k, v in value.items() if isinstance(v, Mapping)}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _openapi_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_openapi_schema(v) for v in value if isinstance(v, Mapping)]
        else:
            out[key] = value
    return out


def _tool_config(tool_choice: Any) -> dict[str, Any] | None:
    if tool_choice is None:
        return None
    if isinstance(tool_choice, str):
        mode = {"none": "NONE", "auto": "AUTO", "required": "ANY"}.get(tool_choice)
        return {"functionCallingConfig": {"mode": mode}} if mode else None
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}}
    return None


# --------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------

UPSTREAM_UNAUTHORIZED = "upstream_unauthorized"
UPSTREAM_MODEL_NOT_FOUND = "upstream_model_not_found"
UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
UPSTREAM_BAD_REQUEST = "upstream_bad_request"
UPSTREAM_SERVER_ERROR = "upstream_server_error"
UPSTREAM_TIMEOUT = "upstream_timeout"
UPSTREAM_PROTOCOL_ERROR = "upstream_protocol_error"

_AUTH_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        "CREDENTIALS_MISSING",
    }
)
_CODE_BY_RPC_STATUS = {
    "UNAUTHENTICATED": UPSTREAM_UNAUTHORIZED,
    "PERMISSION_DENIED": UPSTREAM_UNAUTHORIZED,
    "NOT_FOUND": UPSTREAM_MODEL_NOT_FOUND,
    "RESOURCE_EXHAUSTED": UPSTREAM_RATE_LIMITED,
    "DEADLINE_EXCEEDED": UPSTREAM_TIMEOUT,
    "INVALID_ARGUMENT": UPSTREAM_BAD_REQUEST,
    "FAILED_PRECONDITION": UPSTREAM_BAD_REQUEST,
    "OUT_OF_RANGE": UPSTREAM_BAD_REQUEST,
    "ALREADY_EXISTS": UPSTREAM_BAD_REQUEST,
}


def _error_object(body: Any) -> dict[str, Any] | None:
    """The ``error`` object of a Gemini error body, if the body is one."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = _loads(body)
        except ValueError:
            return None
    if isinstance(body, list) and len(body) == 1:  # some proxies wrap errors in an array
        body = body[0]
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return dict(body["error"])
    return None


def _error_reasons(error: Mapping[str, Any]) -> set[str]:
    details = error.get("details")
    if not isinstance(details, list):
        return set()
    return {str(d["reason"]) for d in details if isinstance(d, Mapping) and isinstance(d.get("reason"), str)}


def _is_key_rejection(error: Mapping[str, Any]) -> bool:
    message = error.get("message")
    return bool(_error_reasons(error) & _AUTH_REASONS) or (
        isinstance(message, str) and "api key" in message.lower() and "valid" in message.lower()
    )


def classify_error(status: int, body: bytes | str | Mapping[str, Any] | None = None) -> str | None:
    """The gateway's upstream error code for a response that failed before streaming (``None`` on 2xx).

    Gemini reports a bad key as 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``, so the
    body is consulted, not only the status.
    """
    if 200 <= status < 300:
        return None
    error = _error_object(body) or {}
    rpc_status = error.get("status") if isinstance(error.get("status"), str) else None
    if status in (401, 403) or _is_key_rejection(error):
        return UPSTREAM_UNAUTHORIZED
    if status == 404:
        return UPSTREAM_MODEL_NOT_FOUND
    if status == 429:
        return UPSTREAM_RATE_LIMITED
    if status in (408, 504):
        return UPSTREAM_TIMEOUT
    if status >= 500:
        return UPSTREAM_SERVER_ERROR
    if rpc_status in _CODE_BY_RPC_STATUS:
        return _CODE_BY_RPC_STATUS[rpc_status]
    return UPSTREAM_BAD_REQUEST


def _classify_stream_error(error: Mapping[str, Any]) -> str:
    """Code for an error that arrived after the stream started (status already 200)."""
    if _is_key_rejection(error):
        return UPSTREAM_UNAUTHORIZED
    rpc_status = error.get("status")
    if isinstance(rpc_status, str) and rpc_status in _CODE_BY_RPC_STATUS:
        return _CODE_BY_RPC_STATUS[rpc_status]
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 500 and code != 499:
        return classify_error(code, {"error": error}) or UPSTREAM_SERVER_ERROR
    return UPSTREAM_SERVER_ERROR


def _error_label(error: Mapping[str, Any]) -> str:
    """A short, safe label (``400 INVALID_ARGUMENT``) for messages: never upstream free text."""
    bits = []
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        bits.append(str(code))
    status = error.get("status")
    if isinstance(status, str) and _GRPC_STATUS.match(status):
        bits.append(status)
    reasons = sorted(r for r in _error_reasons(error) if _GRPC_STATUS.match(r))
    if reasons:
        bits.append(f"({', '.join(reasons[:2])})")
    return " ".join(bits) or "unknown error"


# --------------------------------------------------------------------------------------------
# Spec checks of a raw response
# --------------------------------------------------------------------------------------------

#: Checks whose failure reports what the upstream *said* (a well-formed error), not a spec
#: violation. A response whose only failures are these is still spec-conformant.
OUTCOME_CHECK_IDS = frozenset({"http_status", "mid_stream_error"})

_KNOWN_FINISH_REASONS = frozenset(
    {
        "FINISH_REASON_UNSPECIFIED",
        "STOP",
        "MAX_TOKENS",
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "IMAGE_SAFETY",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_OTHER",
        "NO_IMAGE",
        "IMAGE_RECITATION",
        "MISSING_THOUGHT_SIGNATURE",
    }
)


def conforms(checks: Iterable[Check]) -> bool:
    """True when every failed check only reports the upstream's own (well-formed) error.

    ``compatible`` in a report is "no check failed"; fixture verdicts (is this what a Gemini
    server sends?) are this weaker notion: a correct 400 for a bad key conforms to the spec.
    """
    return all(c.status != CheckStatus.FAIL or c.id in OUTCOME_CHECK_IDS for c in checks)


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return _GOOGLE_API_KEY.sub("[REDACTED]", text)


def _evidence(raw: bytes | str, secrets: Sequence[str]) -> str:
    """At most 512 UTF-8 bytes of the upstream's words, secrets removed."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = _redact(text[: MAX_EVIDENCE_BYTES * 2], secrets)
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_EVIDENCE_BYTES:
        return text
    return encoded[: MAX_EVIDENCE_BYTES - 3].decode("utf-8", "ignore") + "…"


def _check(
    check_id: str,
    category: CheckCategory,
    status: CheckStatus,
    message: str,
    hint: str | None = None,
    evidence: str | None = None,
) -> Check:
    return Check(id=check_id, category=category, status=status, message=message, hint=hint, evidence=evidence)


_PASS, _WARN, _FAIL, _SKIP = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIP


def check_response(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    alt_sse: bool = True,
    secrets: Iterable[str] = (),
) -> list[Check]:
    """Judge a raw ``streamGenerateContent`` response against WIRE_FORMATS §0 and §3.

    ``alt_sse`` says which mode was asked for (the JSON-array mode is only right without it).
    ``secrets`` (the API key) are redacted from evidence.
    """
    hidden = tuple(s for s in secrets if s)
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lowered = {k.lower(): v for k, v in pairs}
    if 300 <= status < 400:
        return [
            _check(
                "redirect", CheckCategory.ENDPOINT, _FAIL,
                f"HTTP {status}: the endpoint answered with a redirect, which the gateway never follows",
                "Register the final URL (the one the redirect points to), e.g. "
                "https://generativelanguage.googleapis.com.",
                _evidence(f"location: {lowered.get('location', '')}", hidden),
            )
        ]  # fmt: skip
    if not 200 <= status < 300:
        return _check_error_response(status, lowered, body, hidden)
    return _check_stream_response(status, lowered, body, alt_sse, hidden)


def _media_type(content_type: str | None) -> str | None:
    return None if content_type is None else content_type.split(";", 1)[0].strip().lower()


_HTTP_HINTS = {
    UPSTREAM_UNAUTHORIZED: (
        CheckCategory.AUTH,
        "the API key was rejected",
        "Check the API key: create one in Google AI Studio (or enable the Generative Language API "
        "for the key's project) and update the LLM's secret.",
    ),
    UPSTREAM_MODEL_NOT_FOUND: (
        CheckCategory.MODEL,
        "the model was not found",
        "Check modelName (e.g. gemini-2.5-flash) against the models your key can use "
        "(GET https://generativelanguage.googleapis.com/v1beta/models).",
    ),
    UPSTREAM_RATE_LIMITED: (
        CheckCategory.REQUEST,
        "the request was rate limited or the quota is exhausted",
        "Raise the quota or billing tier of the key's project, or retry later.",
    ),
    UPSTREAM_TIMEOUT: (
        CheckCategory.NETWORK,
        "the upstream timed out",
        "Retry; if it persists, check the endpoint's health or use a faster model.",
    ),
    UPSTREAM_SERVER_ERROR: (
        CheckCategory.ENDPOINT,
        "the upstream failed with a server error",
        "Retry later; if it persists, check the endpoint's status page or logs.",
    ),
    UPSTREAM_BAD_REQUEST: (
        CheckCategory.REQUEST,
        "the upstream rejected a well-formed streamGenerateContent request",
        "Make sure the URL is a Gemini API endpoint that accepts streamGenerateContent with "
        "contents/systemInstruction/generationConfig, and that the model supports them.",
    ),
}


def _check_error_response(
    status: int, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> list[Check]:
    checks: list[Check] = []
    error = _error_object(body)
    code = classify_error(status, body) or UPSTREAM_BAD_REQUEST
    category, what, hint = _HTTP_HINTS[code]
    if error is None and status in (404, 405):
        category, what = CheckCategory.ENDPOINT, "the URL does not serve the Gemini API"
        hint = (
            "Use the API base https://generativelanguage.googleapis.com or the full URL "
            ".../v1beta/models/{model}:streamGenerateContent."
        )
    label = _error_label(error) if error else str(status)
    # A compact re-serialisation shows more of a pretty-printed Gemini error within 512 bytes.
    shown = _dumps({"error": error}) if error else body
    checks.append(
        _check(
            "http_status",
            category,
            _FAIL,
            f"HTTP {status} before streaming ({label}): {what}",
            hint,
            _evidence(shown, secrets) if shown else None,
        )
    )

    media = _media_type(headers.get("content-type"))
    if media == "application/json":
        checks.append(_check("content_type", CheckCategory.FORMAT, _PASS, "error body is application/json"))
    else:
        checks.append(
            _check(
                "content_type",
                CheckCategory.FORMAT,
                _WARN,
                f"error body has Content-Type {headers.get('content-type')!r}, expected application/json",
                "Send errors as Content-Type: application/json; charset=UTF-8.",
            )
        )

    checks.append(_check_error_body(status, body, error, secrets))
    return checks


def _check_error_body(
    status: int, body: bytes, error: Mapping[str, Any] | None, secrets: Sequence[str]
) -> Check:
    shape_hint = (
        'Return errors as {"error": {"code": <HTTP status as an integer>, "message": "<text>", '
        '"status": "<google.rpc code, e.g. INVALID_ARGUMENT>"}}.'
    )
    if error is None:
        return _check(
            "error_body",
            CheckCategory.FORMAT,
            _FAIL,
            'the error body is not a Gemini error object ({"error": {...}})',
            shape_hint,
            _evidence(body, secrets) if body else "(empty body)",
        )
    problems = []
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        problems.append("error.code is not an integer")
    if not isinstance(error.get("message"), str):
        problems.append("error.message is not a string")
    if not isinstance(error.get("status"), str):
        problems.append("error.status is not a string")
    if problems:
        return _check(
            "error_body",
            CheckCategory.FORMAT,
            _FAIL,
            "; ".join(problems),
            shape_hint,
            _evidence(body, secrets),
        )
    if code != status:
        return _check(
            "error_body",
            CheckCategory.FORMAT,
            _WARN,
            f"error.code {code} differs from the HTTP status {status}",
            "Make error.code equal the HTTP status.",
        )
    return _check("error_body", CheckCategory.FORMAT, _PASS, f"Gemini error body ({_error_label(error)})")


@dataclass(slots=True)
class _StreamFacts:
    """What the payload checks found, for the finish-reason and error checks."""

    payloads: list[Any] = field(default_factory=list)
    schema_problems: list[tuple[str, str]] = field(default_factory=list)  # (problem, evidence)
    schema_warnings: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (error, evidence)
    done_sentinel: str | None = None
    has_parts: bool = False
    has_feedback: bool = False
    has_usage: bool = False


def _check_stream_response(
    status: int, headers: Mapping[str, str], body: bytes, alt_sse: bool, secrets: Sequence[str]
) -> list[Check]:
    checks: list[Check] = []
    if status != 200:
        checks.append(
            _check(
                "stream_status",
                CheckCategory.ENDPOINT,
                _FAIL,
                f"HTTP {status}: a started stream must be 200",
                "Answer a streamGenerateContent request with HTTP 200.",
            )
        )
    else:
        checks.append(_check("http_status", CheckCategory.ENDPOINT, _PASS, "HTTP 200"))

    content_type = headers.get("content-type")
    media = _media_type(content_type)
    stripped = body.lstrip(b" \t\r\n\xef\xbb\xbf")
    is_array = stripped.startswith(b"[")
    if alt_sse:
        if media == "text/event-stream":
            checks.append(
                _check("content_type", CheckCategory.STREAMING, _PASS, f"Content-Type {content_type}")
            )
        else:
            checks.append(
                _check(
                    "content_type",
                    CheckCategory.STREAMING,
                    _FAIL,
                    "no Content-Type header"
                    if content_type is None
                    else f"Content-Type is {content_type!r}, not text/event-stream",
                    "Stream with Content-Type: text/event-stream and `data: {json}` events "
                    "(the Gemini API does this when called with ?alt=sse).",
                    None if content_type is None else _evidence(content_type, secrets),
                )
            )
    else:
        checks.append(_check("content_type", CheckCategory.STREAMING, _PASS, f"Content-Type {content_type}"))

    facts = _StreamFacts()
    if is_array:
        checks.append(_check_array_mode(stripped, alt_sse, facts, secrets))
    else:
        checks.extend(_check_sse_framing(body, facts, secrets))
    checks.extend(_payload_checks(facts, secrets))
    return checks


def _check_array_mode(body: bytes, alt_sse: bool, facts: _StreamFacts, secrets: Sequence[str]) -> Check:
    try:
        items = _loads(body)
    except ValueError:
        items = None
    if isinstance(items, list):
        for item in items:
            _inspect_payload(item, _dumps(item)[:600], facts)
    if alt_sse:
        return _check(
            "sse_framing",
            CheckCategory.STREAMING,
            _FAIL,
            "the body is one JSON array, not Server-Sent Events: the server ignored alt=sse",
            "Serve ?alt=sse requests as `data: {json}` events separated by blank lines, one "
            "GenerateContentResponse per event.",
            _evidence(body[:600], secrets),
        )
    if not isinstance(items, list):
        return _check(
            "sse_framing",
            CheckCategory.STREAMING,
            _FAIL,
            "the JSON-array body does not parse",
            "Return a valid JSON array of GenerateContentResponse objects.",
            _evidence(body[:600], secrets),
        )
    return _check(
        "sse_framing", CheckCategory.STREAMING, _PASS, f"JSON-array stream of {len(items)} responses"
    )


def _bare_error(obs: SseObservations) -> tuple[dict[str, Any] | None, str]:
    """Gemini's unprefixed ``{"error": …}`` after the events, rebuilt from the stray lines."""
    text = "\n".join(obs.non_field_lines).strip()
    if not text.startswith("{") or '"error"' not in text:
        return None, text
    error = _error_object(text)
    if error is None:  # cut off or followed by junk: still an error report, just not parseable
        error = {}
    return error, text


def _check_sse_framing(body: bytes, facts: _StreamFacts, secrets: Sequence[str]) -> list[Check]:
    try:
        events, obs = parse_sse(body)
    except SseLimitExceeded as exc:
        return [
            _check(
                "sse_framing", CheckCategory.STREAMING, _FAIL, f"the stream could not be parsed: {exc}",
                "Send one compact JSON object per `data: ` line and end each event with a blank line.",
            )
        ]  # fmt: skip
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    if obs.bom:
        problems.append(("the body starts with a UTF-8 byte-order mark", "\ufeff"))
    if obs.invalid_utf8:
        problems.append(("the body is not valid UTF-8", ""))
    if obs.data_lines_without_space:
        problems.append(
            (f"{obs.data_lines_without_space} `data:` line(s) without the space after the colon", "data:{")
        )
    if obs.comment_count:
        sample = ":" + (obs.comments[0] if obs.comments else "")
        problems.append((f"{obs.comment_count} comment line(s) (`:` keep-alives)", sample))
    for count, name in ((obs.event_fields, "event"), (obs.id_fields, "id"), (obs.retry_fields, "retry")):
        if count:
            problems.append((f"{count} `{name}:` field(s)", f"{name}:"))
    if obs.non_field_line_count:
        error, text = _bare_error(obs)
        if error is not None:
            facts.errors.append((error, text))
        else:
            problems.append((f"{obs.non_field_line_count} line(s) that are not `data: ` lines", text[:600]))
    if obs.data_lines > obs.events:
        problems.append(("an event has several `data:` lines (Gemini clients parse each line alone)", ""))
    if obs.truncated_event:
        warnings.append("the last event is not followed by a blank line")

    for event in events:
        data = event.data
        if data.strip().startswith("[DONE]"):
            facts.done_sentinel = data
            continue
        try:
            payload = _loads(data)
        except ValueError:
            facts.schema_problems.append(("an event's data is not JSON", data[:600]))
            continue
        _inspect_payload(payload, data[:600], facts)

    checks: list[Check] = []
    endings = "/".join(sorted(obs.line_endings)) or "no"
    if problems:
        text, sample = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        checks.append(
            _check(
                "sse_framing",
                CheckCategory.STREAMING,
                _FAIL,
                f"Gemini stream framing: {text}{more}; Gemini clients (google-genai) accept only "
                "`data: ` lines and blank lines",
                "Send each GenerateContentResponse as exactly one `data: {json}` line followed by a "
                "blank line; no comments, no event/id/retry fields, nothing else.",
                _evidence(sample, secrets) if sample else None,
            )
        )
    elif not events and not facts.errors:
        checks.append(
            _check(
                "sse_framing",
                CheckCategory.STREAMING,
                _FAIL,
                "the stream has no `data: ` events",
                "Stream GenerateContentResponse objects as `data: {json}` events.",
                _evidence(body[:200], secrets) if body else "(empty body)",
            )
        )
    elif warnings:
        checks.append(
            _check(
                "sse_framing",
                CheckCategory.STREAMING,
                _WARN,
                f"{len(events)} event(s), {endings} line endings; {warnings[0]}",
                "End every event, including the last, with a blank line.",
            )
        )
    else:
        checks.append(
            _check(
                "sse_framing",
                CheckCategory.STREAMING,
                _PASS,
                f"{len(events)} event(s), {endings} line endings",
            )
        )

    if facts.done_sentinel is not None:
        checks.append(
            _check(
                "terminator",
                CheckCategory.FORMAT,
                _FAIL,
                "the stream sends `data: [DONE]`, which Gemini does not: "
                "Gemini clients try to parse it as JSON",
                "Remove the [DONE] event; a Gemini stream ends when the connection closes.",
                _evidence(facts.done_sentinel, secrets),
            )
        )
    else:
        checks.append(
            _check("terminator", CheckCategory.FORMAT, _PASS, "no [DONE]; the stream ends at close")
        )
    return checks


def _inspect_payload(payload: Any, raw: str, facts: _StreamFacts) -> None:
    """Schema of one GenerateContentResponse (WIRE_FORMATS §3.2); findings go into ``facts``."""
    if not isinstance(payload, dict):
        facts.schema_problems.append(("an event is not a JSON object", raw))
        return
    if "error" in payload:
        error = payload["error"] if isinstance(payload["error"], dict) else {}
        facts.errors.append((error, raw))
        return
    facts.payloads.append(payload)
    candidates = payload.get("candidates")
    feedback = payload.get("promptFeedback")
    if feedback is not None:
        if isinstance(feedback, dict):
            facts.has_feedback = True
        else:
            facts.schema_problems.append(("promptFeedback is not an object", raw))
    usage = payload.get("usageMetadata")
    if usage is not None:
        if isinstance(usage, dict) and all(
            isinstance(v, int) for k, v in usage.items() if k.endswith("Count")
        ):
            facts.has_usage = True
        else:
            facts.schema_warnings.append(("usageMetadata token counts are not integers", raw))
    if candidates is None:
        if feedback is None and usage is None:
            facts.schema_warnings.append(("an event has neither candidates nor promptFeedback", raw))
        return
    if not isinstance(candidates, list):
        facts.schema_problems.append(("candidates is not an array", raw))
        return
    for candidate in candidates:
        if not isinstance(candidate, dict):
            facts.schema_problems.append(("a candidate is not an object", raw))
            continue
        reason = candidate.get("finishReason")
        if reason is not None and not isinstance(reason, str):
            facts.schema_problems.append(("finishReason is not a string", raw))
        content = candidate.get("content")
        if content is None:
            continue
        if not isinstance(content, dict):
            facts.schema_problems.append(("candidate.content is not an object", raw))
            continue
        role = content.get("role")
        if role is not None and role != "model":
            facts.schema_warnings.append((f"candidate.content.role is {role!r}, expected 'model'", raw))
        parts = content.get("parts")
        if parts is None:
            continue
        if not isinstance(parts, list):
            facts.schema_problems.append(("content.parts is not an array", raw))
            continue
        for part in parts:
            problem = _part_problem(part)
            if problem:
                facts.schema_problems.append((problem, raw))
            else:
                facts.has_parts = True


def _part_problem(part: Any) -> str | None:
    if not isinstance(part, dict):
        return "a part is not an object"
    if "text" in part and not isinstance(part["text"], str):
        return "part.text is not a string"
    if "thought" in part and not isinstance(part["thought"], bool):
        return "part.thought is not a boolean"
    call = part.get("functionCall")
    if call is not None:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            return "functionCall has no name"
        if "args" in call and not isinstance(call["args"], dict):
            return "functionCall.args is not a JSON object (Gemini sends whole objects, never partial JSON)"
    return None


def _payload_checks(facts: _StreamFacts, secrets: Sequence[str]) -> list[Check]:
    checks: list[Check] = []
    # chunk_schema
    if facts.schema_problems:
        problem, raw = facts.schema_problems[0]
        more = f" (and {len(facts.schema_problems) - 1} more)" if len(facts.schema_problems) > 1 else ""
        checks.append(
            _check(
                "chunk_schema",
                CheckCategory.FORMAT,
                _FAIL,
                f"{problem}{more}",
                "Send each event as a complete GenerateContentResponse JSON object: "
                '{"candidates": [{"content": {"role": "model", "parts": [{"text": "..."}]}}]}.',
                _evidence(raw, secrets),
            )
        )
    elif not facts.has_parts and not facts.has_feedback and not facts.errors:
        checks.append(
            _check(
                "chunk_schema",
                CheckCategory.FORMAT,
                _FAIL,
                "no event has candidates[].content.parts[] or promptFeedback",
                "Return the model output as candidates[0].content.parts[] in each event.",
            )
        )
    elif facts.schema_warnings:
        problem, raw = facts.schema_warnings[0]
        checks.append(
            _check(
                "chunk_schema",
                CheckCategory.FORMAT,
                _WARN,
                problem,
                "Follow the GenerateContentResponse schema of the Gemini API reference.",
                _evidence(raw, secrets),
            )
        )
    elif facts.payloads:
        checks.append(
            _check(
                "chunk_schema",
                CheckCategory.FORMAT,
                _PASS,
                f"{len(facts.payloads)} GenerateContentResponse event(s)",
            )
        )
    else:
        checks.append(
            _check("chunk_schema", CheckCategory.FORMAT, _SKIP, "no response events before the error")
        )

    checks.append(_finish_reason_check(facts))

    # usage_metadata: optional in the spec, but without it the gateway cannot report usage
    if facts.has_usage:
        checks.append(_check("usage_metadata", CheckCategory.FORMAT, _PASS, "usageMetadata present"))
    elif facts.payloads:
        checks.append(
            _check(
                "usage_metadata",
                CheckCategory.FORMAT,
                _WARN,
                "no usageMetadata: token usage cannot be reported to clients",
                "Include usageMetadata {promptTokenCount, candidatesTokenCount, totalTokenCount}.",
            )
        )

    # mid_stream_error
    if facts.errors:
        error, raw = facts.errors[0]
        code = _classify_stream_error(error)
        checks.append(
            _check(
                "mid_stream_error",
                CheckCategory.STREAMING,
                _FAIL,
                f"the upstream reported an error during the stream ({_error_label(error)}; {code})",
                "The endpoint aborted the test request mid-stream; check its logs or quota and validate "
                "again. Errors found before streaming should be a non-2xx JSON response.",
                _evidence(raw, secrets),
            )
        )
    else:
        checks.append(_check("mid_stream_error", CheckCategory.STREAMING, _PASS, "no error in the stream"))
    return checks


def _finish_reason_check(facts: _StreamFacts) -> Check:
    with_candidates = [p for p in facts.payloads if isinstance(p.get("candidates"), list) and p["candidates"]]
    blocked = next(
        (
            p["promptFeedback"].get("blockReason")
            for p in facts.payloads
            if isinstance(p.get("promptFeedback"), dict) and p["promptFeedback"].get("blockReason")
        ),
        None,
    )
    if facts.errors:
        return _check("finish_reason", CheckCategory.FORMAT, _SKIP, "the stream ended with an error")
    if not with_candidates:
        if blocked:
            return _check(
                "finish_reason", CheckCategory.FORMAT, _PASS, f"prompt blocked (blockReason {blocked})"
            )
        return _check("finish_reason", CheckCategory.FORMAT, _SKIP, "no candidate events")
    last = with_candidates[-1]["candidates"]
    found = [c.get("finishReason") for c in last if isinstance(c, dict)]
    reasons = [r for r in found if isinstance(r, str) and r]
    if len(reasons) != len(found):
        return _check(
            "finish_reason",
            CheckCategory.FORMAT,
            _WARN,
            "the last candidate event has no finishReason, so clients cannot tell a complete answer "
            "from a cut-off one",
            'Set candidates[].finishReason (e.g. "STOP") on the last event.',
        )
    notes = []
    unknown = sorted({r for r in reasons if r not in _KNOWN_FINISH_REASONS})
    if unknown:
        notes.append(f"unknown value(s) {', '.join(unknown)} tolerated")
    earlier = sum(
        1
        for p in with_candidates[:-1]
        for c in p["candidates"]
        if isinstance(c, dict) and c.get("finishReason")
    )
    if earlier:
        notes.append(f"also on {earlier} earlier event(s), as older models do")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    return _check("finish_reason", CheckCategory.FORMAT, _PASS, f"finishReason {', '.join(reasons)}{suffix}")


# --------------------------------------------------------------------------------------------
# Stream translation: Gemini events → OpenAI chat.completion.chunk SSE
# --------------------------------------------------------------------------------------------

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
_DONE = b"data: [DONE]\n\n"
_MAX_STRAY_CHARS = 64 * 1024


def map_finish_reason(reason: str | None, *, tool_calls: bool = False) -> str:
    """OpenAI's finish_reason for a Gemini finishReason (unknown values read as a normal stop)."""
    mapped = _FINISH_REASONS.get(reason or "", "stop")
    return "tool_calls" if mapped == "stop" and tool_calls else mapped


@dataclass(slots=True)
class _Choice:
    role_sent: bool = False
    tool_calls: int = 0
    finish: str | None = None


class GeminiStreamTranslator:
    """Incremental Gemini → OpenAI stream translation, one upstream chunk at a time.

    Feed raw upstream bytes with ``feed`` (it runs the shared ``SseParser``), or already parsed
    events with ``feed_events``; call ``finish`` at end of body. Each call returns bytes ready to
    write to the client (possibly empty). The finish chunk is held back until the upstream ends,
    because older models put ``finishReason`` on every chunk while OpenAI allows it only on the last.
    After an upstream error the output is one ``data: {"error": …}`` event and no ``[DONE]``.
    """

    def __init__(
        self,
        *,
        model: str,
        include_usage: bool = False,
        completion_id: str | None = None,
        created: int | None = None,
        parser: SseParser | None = None,
    ) -> None:
        self.completion_id = completion_id or f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time()) if created is None else created
        self.model = model
        self.include_usage = include_usage
        self.parser = parser or SseParser()
        self.error_code: str | None = None
        self.done = False
        self.usage: dict[str, Any] | None = None
        self._choices: dict[int, _Choice] = {}
        self._blocked = False
        self._stray: list[str] = []
        self._stray_chars = 0
        self._stray_seen = 0
        head = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
        }
        # Every chunk starts with the same bytes: encode them once.
        self._prefix = b"data: " + _dumps(head)[:-1].encode("utf-8") + b',"choices":'
        self._suffix = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    # -- input ---------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Translate the next upstream bytes (split anywhere)."""
        if self.done:
            return b""
        try:
            events = self.parser.feed(chunk)
        except SseLimitExceeded as exc:
            out = self.feed_events(exc.events_before)
            return out + self.abort(UPSTREAM_PROTOCOL_ERROR, "The upstream sent an oversized stream event.")
        return self.feed_events(events, self._new_stray_lines())

    def feed_events(self, events: Iterable[SseEvent], stray_lines: Iterable[str] = ()) -> bytes:
        """Translate parsed events, then any non-``data:`` lines seen with them (bare errors)."""
        out = [self.feed_data(event.data) for event in events if not self.done]
        for line in stray_lines:
            if self.done:
                break
            out.append(self.feed_stray_line(line))
        return b"".join(out)

    def feed_data(self, data: str) -> bytes:
        """Translate one event's ``data`` (one GenerateContentResponse JSON)."""
        if self.done:
            return b""
        try:
            payload = _loads(data)
        except ValueError:
            return self.abort(UPSTREAM_PROTOCOL_ERROR, "The upstream sent an event that is not JSON.")
        return self.feed_payload(payload)

    def feed_stray_line(self, line: str) -> bytes:
        """A line outside SSE fields: Gemini's bare, pretty-printed mid-stream error is built
        from these until it parses as JSON."""
        if self.done:
            return b""
        if not self._stray and not line.strip():
            return b""
        self._stray.append(line)
        self._stray_chars += len(line)
        text = "\n".join(self._stray).strip()
        if not text.startswith("{") or self._stray_chars > _MAX_STRAY_CHARS:
            return self.abort(
                UPSTREAM_PROTOCOL_ERROR, "The upstream sent lines that are not Server-Sent Events."
            )
        try:
            payload = _loads(text)
        except ValueError:
            return b""  # not complete yet
        self._stray.clear()
        self._stray_chars = 0
        return self.feed_payload(payload)

    def feed_payload(self, payload: Any) -> bytes:
        """Translate one parsed GenerateContentResponse (or error object)."""
        if self.done:
            return b""
        if not isinstance(payload, dict):
            return self.abort(
                UPSTREAM_PROTOCOL_ERROR, "The upstream sent an event that is not a JSON object."
            )
        if "error" in payload:
            error = payload["error"] if isinstance(payload["error"], dict) else {}
            return self._upstream_error(error)
        usage = payload.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage = usage
        feedback = payload.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._blocked = True
        candidates = payload.get("candidates")
        out: list[bytes] = []
        if isinstance(candidates, list):
            for position, candidate in enumerate(candidates):
                if isinstance(candidate, dict):
                    self._candidate(candidate, position, out)
        if not out and not self._choices:
            out.append(self._role_chunk(0))  # first byte early: the client sees the stream start
        return b"".join(out)

    # -- output --------------------------------------------------------------------------------

    def finish(self) -> bytes:
        """End of the upstream body: finish chunk(s), optional usage chunk, ``[DONE]``."""
        if self.done:
            return b""
        out: list[bytes] = []
        try:
            events = self.parser.finish()
        except SseLimitExceeded:
            events = []
        out.append(self.feed_events(events, self._new_stray_lines()))
        if self.done:
            return b"".join(out)
        if self._stray:
            return b"".join(out) + self.abort(
                UPSTREAM_PROTOCOL_ERROR, "The upstream stream ended inside a non-SSE block."
            )
        if not self._choices:
            out.append(self._role_chunk(0))
        for index in sorted(self._choices):
            state = self._choices[index]
            if self._blocked and state.finish is None and not state.tool_calls:
                reason = "content_filter"
            else:
                reason = map_finish_reason(state.finish, tool_calls=state.tool_calls > 0)
            choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}
            out.append(self._prefix + _dumps([choice]).encode("utf-8") + self._suffix)
        if self.include_usage and self.usage is not None:
            out.append(self._usage_chunk(self.usage))
        out.append(_DONE)
        self.done = True
        return b"".join(out)

    def abort(self, code: str, message: str) -> bytes:
        """End the client stream with an error event (no ``[DONE]``): the caller's own failures
        (timeouts, disconnects) use this too."""
        if self.done:
            return b""
        self.done = True
        self.error_code = code
        return b"data: " + _dumps({"error": {"code": code, "message": message}}).encode("utf-8") + b"\n\n"

    # -- internals -----------------------------------------------------------------------------

    def _new_stray_lines(self) -> list[str]:
        obs = self.parser.observations
        if obs.non_field_line_count == self._stray_seen:
            return []
        kept = obs.non_field_lines
        new = kept[self._stray_seen :] if len(kept) > self._stray_seen else []
        dropped = obs.non_field_line_count - self._stray_seen - len(new)
        self._stray_seen = obs.non_field_line_count
        if dropped > 0:  # the parser stopped keeping text: we cannot rebuild what followed
            new.append("\x00")
        return new

    def _upstream_error(self, error: Mapping[str, Any]) -> bytes:
        code = _classify_stream_error(error)
        return self.abort(code, f"The upstream model failed during the stream ({_error_label(error)}).")

    def _role_chunk(self, index: int) -> bytes:
        self._choices.setdefault(index, _Choice()).role_sent = True
        delta = {"role": "assistant", "content": ""}
        return self._chunk(index, delta)

    def _chunk(self, index: int, delta: dict[str, Any]) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        return self._prefix + _dumps([choice]).encode("utf-8") + self._suffix

    def _candidate(self, candidate: Mapping[str, Any], position: int, out: list[bytes]) -> None:
        raw_index = candidate.get("index")
        index = raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else position
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice()
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            state.finish = reason
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict) or part.get("thought") is True:
                continue  # thought summaries are not answer text
            piece = part.get("text")
            call = part.get("functionCall")
            if isinstance(call, dict) and isinstance(call.get("name"), str):
                if text:
                    self._emit(index, state, {"content": "".join(text)}, out)
                    text = []
                calls.append(self._tool_call(state, call, part.get("thoughtSignature")))
            elif isinstance(piece, str) and piece:
                if calls:
                    self._emit(index, state, {"tool_calls": calls}, out)
                    calls = []
                text.append(piece)
        if text:
            self._emit(index, state, {"content": "".join(text)}, out)
        if calls:
            self._emit(index, state, {"tool_calls": calls}, out)
        if not state.role_sent:
            out.append(self._role_chunk(index))

    def _emit(self, index: int, state: _Choice, delta: dict[str, Any], out: list[bytes]) -> None:
        if not state.role_sent:
            state.role_sent = True
            delta = {"role": "assistant", "content": None, **delta}
        out.append(self._chunk(index, delta))

    @staticmethod
    def _tool_call(state: _Choice, call: Mapping[str, Any], signature: Any) -> dict[str, Any]:
        args = call.get("args")
        entry: dict[str, Any] = {
            "index": state.tool_calls,
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": _dumps(args if isinstance(args, dict) else {})},
        }
        if isinstance(signature, str) and signature:
            # Same place Gemini's OpenAI-compatible endpoint uses; build_request reads it back.
            entry["extra_content"] = {"google": {"thought_signature": signature}}
        state.tool_calls += 1
        return entry

    def _usage_chunk(self, meta: Mapping[str, Any]) -> bytes:
        def count(key: str) -> int:
            value = meta.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        prompt = count("promptTokenCount") + count("toolUsePromptTokenCount")
        thoughts = count("thoughtsTokenCount")
        completion = count("candidatesTokenCount") + thoughts
        total = count("totalTokenCount") or prompt + completion
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
            "completion_tokens_details": {"reasoning_tokens": thoughts},
        }
        return self._prefix + b"[]" + b',"usage":' + _dumps(usage).encode("utf-8") + b"}\n\n"
