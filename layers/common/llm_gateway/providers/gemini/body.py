"""The Gemini ``GenerateContentRequest`` body for an OpenAI chat request: roles, content parts,
tool calls and their results, function declarations, tool choice and generation limits."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.providers.base import UnsupportedChatRequest

DEFAULT_API_VERSION = "v1beta"

# Gemini 3 rejects replayed function calls without a thought signature; this documented value
# tells the API to skip that validation when the client did not keep the real signature.
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


class GeminiRequestError(UnsupportedChatRequest):
    """The chat request holds something Gemini cannot take (a client error, not an upstream one)."""


def translate_chat(
    chat: ChatRequest,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    api_version: str = DEFAULT_API_VERSION,
    thinking: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``GenerateContentRequest`` JSON body for an OpenAI chat request (``thinking`` is the
    ``generationConfig.thinkingConfig`` the LLM's reasoning effort asks for)."""
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
    if thinking:
        generation["thinkingConfig"] = dict(thinking)
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
