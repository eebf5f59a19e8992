"""The Messages API body for an OpenAI chat request: ``system`` apart from the turns, content
blocks, ``tool_use`` / ``tool_result`` for tool calls and their results, tools with
``input_schema``, tool choice, the required ``max_tokens`` and extended ``thinking``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llm_gateway.models.chat import ChatMessage, ChatRequest
from llm_gateway.models.llm import ReasoningEffort
from llm_gateway.providers.base import EndpointSpec, ProviderConfigError, UnsupportedChatRequest

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "THINKING_BUDGETS",
    "AnthropicRequestError",
    "messages_body",
    "thinking_budget",
]

#: ``max_tokens`` is required by the Messages API; this is sent when neither side set one.
DEFAULT_MAX_TOKENS = 4096
#: ``thinking.budget_tokens`` per reasoning effort (the API's minimum budget is 1024 tokens, and
#: ``max_tokens`` must stay above it: the answer gets its own allowance on top).
THINKING_BUDGETS = {ReasoningEffort.LOW: 1024, ReasoningEffort.MEDIUM: 4096, ReasoningEffort.HIGH: 16384}

_loads = json.loads


class AnthropicRequestError(UnsupportedChatRequest):
    """The chat request holds something the Messages API cannot take (the client's 400)."""


def thinking_budget(endpoint: EndpointSpec) -> int | None:
    effort = endpoint.reasoning_effort
    return THINKING_BUDGETS[effort] if endpoint.thinks and effort is not None else None


def messages_body(chat: ChatRequest, endpoint: EndpointSpec) -> dict[str, Any]:
    """The ``POST /v1/messages`` JSON body (always streaming)."""
    system, messages = _turns(chat.messages)
    body: dict[str, Any] = {"model": endpoint.model_name, "messages": messages}
    if system:
        body["system"] = system
    body["max_tokens"] = _max_tokens(chat, endpoint)
    body["stream"] = True
    budget = thinking_budget(endpoint)
    if budget is not None:
        # Extended thinking takes no temperature change (Anthropic's extended-thinking docs).
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        temperature = chat.temperature if chat.temperature is not None else endpoint.temperature
        if temperature is not None:
            body["temperature"] = min(temperature, 1.0)  # the Messages API takes 0..1
    tools = _tools(chat.tools)
    if tools:
        body["tools"] = tools
        choice = _tool_choice(chat.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
    return body


def _max_tokens(chat: ChatRequest, endpoint: EndpointSpec) -> int:
    """The answer's allowance (the request's, capped by the config's), plus the thinking budget:
    ``max_tokens`` counts thinking tokens too and must exceed ``budget_tokens``."""
    answer = chat.max_completion_tokens or chat.max_tokens or DEFAULT_MAX_TOKENS
    budget = thinking_budget(endpoint)
    cap = endpoint.max_tokens
    if budget is None:
        return min(answer, cap) if cap is not None else answer
    if cap is not None and cap <= budget:
        raise ProviderConfigError(
            f"maxTokens {cap} leaves no room for the answer after the {budget}-token thinking budget "
            f"of reasoningEffort {endpoint.reasoning_effort}: raise maxTokens above {budget} or lower "
            "reasoningEffort"
        )
    total = budget + answer
    return min(total, cap) if cap is not None else total


def _turns(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """``system`` text and the alternating turns (same-role neighbours merged, tool results sent
    as the user's ``tool_result`` blocks)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.role
        if role in ("system", "developer"):
            system.extend(_texts(message.content, role))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.content))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message))
        elif role in ("tool", "function"):
            _append(turns, "user", [_tool_result(message)])
        else:  # pragma: no cover - ChatRole admits no other value
            raise AnthropicRequestError(f"message role {role!r} is not supported")
    if not turns and system:
        turns, system = [{"role": "user", "content": [{"type": "text", "text": "\n\n".join(system)}]}], []
    return "\n\n".join(system), turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any, role: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        texts = []
        for item in content:
            if not (
                isinstance(item, Mapping) and item.get("type") == "text" and isinstance(item.get("text"), str)
            ):
                raise AnthropicRequestError(f"{role} messages may only hold text parts")
            if item["text"]:
                texts.append(item["text"])
        return texts
    raise AnthropicRequestError(f"{role} message content must be a string or a list of parts")


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": t} for t in _texts(content, "user")]
    if not isinstance(content, list):
        raise AnthropicRequestError("user message content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for item in content:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "text" and isinstance(item.get("text"), str):
            if item["text"]:
                blocks.append({"type": "text", "text": item["text"]})
        elif kind == "image_url":
            image = item.get("image_url")
            address = image.get("url") if isinstance(image, Mapping) else image
            if not isinstance(address, str):
                raise AnthropicRequestError("image_url parts need a url")
            blocks.append({"type": "image", "source": _image_source(address)})
        else:
            raise AnthropicRequestError(f"content part type {kind!r} is not supported for Anthropic")
    return blocks


def _image_source(address: str) -> dict[str, Any]:
    """A data URL becomes a base64 source; any other URL a ``url`` source."""
    if address.startswith("data:"):
        header, _, data = address[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not media_type:
            raise AnthropicRequestError("data URLs must be base64 with a media type")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": address}


def _assistant_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    content = message.content
    blocks: list[dict[str, Any]] = []
    if isinstance(content, list):
        for item in content:
            kind = item.get("type") if isinstance(item, Mapping) else None
            text = item.get("text") if kind == "text" else item.get("refusal") if kind == "refusal" else None
            if not isinstance(text, str):
                raise AnthropicRequestError("assistant messages may only hold text parts")
            if text:
                blocks.append({"type": "text", "text": text})
    else:
        blocks.extend({"type": "text", "text": t} for t in _texts(content, "assistant"))
    for call in message.tool_calls or []:
        function = call.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise AnthropicRequestError("assistant tool_calls need function.name")
        if not isinstance(call.get("id"), str):
            raise AnthropicRequestError("assistant tool_calls need an id (tool results answer it)")
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": function["name"],
                "input": _input(function.get("arguments")),
            }
        )
    return blocks


def _input(arguments: Any) -> dict[str, Any]:
    """OpenAI carries arguments as a JSON string; ``tool_use.input`` is an object."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    try:
        parsed = _loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _tool_result(message: ChatMessage) -> dict[str, Any]:
    if not message.tool_call_id:
        raise AnthropicRequestError("a tool message needs the tool_call_id it answers")
    content = message.content
    if isinstance(content, list):
        text = "".join(
            i.get("text", "") for i in content if isinstance(i, Mapping) and i.get("type") == "text"
        )
    else:
        text = content or ""
    return {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": text}


def _tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for tool in tools or []:
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, Mapping):
            continue  # the Messages API has no equivalent of other OpenAI tool types
        if not isinstance(function.get("name"), str):
            raise AnthropicRequestError("every function tool needs a name")
        schema = function.get("parameters")
        entry: dict[str, Any] = {
            "name": function["name"],
            "input_schema": dict(schema)
            if isinstance(schema, Mapping)
            else {"type": "object", "properties": {}},
        }
        if isinstance(function.get("description"), str):
            entry["description"] = function["description"]
        out.append(entry)
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, str):
        return {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}.get(choice)
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"type": "tool", "name": function["name"]}
    return None
