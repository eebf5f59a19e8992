"""Gemini: ``POST /{v1beta|v1}/models/{model}:streamGenerateContent[?alt=sse]`` and
``…:generateContent``, ``GET /v1beta/models`` (``x-goog-api-key`` or ``?key=``), the
``GenerateContentResponse`` shapes (CRLF-framed events, or a JSON array without ``alt=sse``) and
Google's error bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..completion import (
    Completion,
    ToolCall,
    continued,
    count_words,
    example_value,
    plan_completion,
    thought_words,
)
from ..faults import Fault
from ..prefill import NO_PREFILL, gemini_prefill
from ..provider import FakeProvider
from ..reasoning import NO_REASONING
from ..request_knobs import CHUNKS_HEADER, int_header, positive_int
from ..wire import Spec, content_type_for, status_error_shaped, truncated

Mode = Literal["sse", "json-array", "json"]
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_STATUS_NAMES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


# --- wire: errors -------------------------------------------------------------------------------


def dumps(payload: Any) -> bytes:
    """Gemini puts a space after colons only."""
    return json.dumps(payload, separators=(",", ": ")).encode()


def gemini_error(
    status: int, message: str, status_name: str, details: list[dict[str, Any]] | None = None
) -> Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": status_name}
    if details:
        error["details"] = details
    return Response(
        json.dumps({"error": error}, indent=2) + "\n",
        status_code=status,
        media_type="application/json; charset=UTF-8",
    )


def auth_error(presented: str | None, echo: bool = False) -> Response:
    if not presented and not echo:
        return gemini_error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use "
            "API Key or other form of API consumer identity to call this API.",
            "PERMISSION_DENIED",
        )
    text = "API key not valid. Please pass a valid API key."
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": text},
    ]
    if echo:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.DebugInfo",
                "detail": f"Invalid API key: {presented or ''}",
            }
        )
    return gemini_error(400, text, "INVALID_ARGUMENT", details)


def not_found_error(model: str, api_version: str = "v1beta") -> Response:
    return gemini_error(
        404,
        f"models/{model} is not found for API version {api_version}, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their supported methods.",
        "NOT_FOUND",
    )


def method_not_found() -> Response:
    return gemini_error(404, "Method not found.", "NOT_FOUND")


def _status_body(status: int) -> Response:
    name, message = _STATUS_NAMES.get(status, ("UNKNOWN", f"HTTP {status}"))
    return gemini_error(status, message, name)


def status_error(status: int, model: str, presented: str | None, retry_after: str | None) -> Response:
    return status_error_shaped(SPEC, status, model, presented, retry_after, _status_body)


def context_length_error() -> Response:
    message = "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
    return gemini_error(400, message, "INVALID_ARGUMENT")


def success_headers() -> dict[str, str]:
    return {
        "content-disposition": "attachment",
        "vary": "Origin, X-Origin, Referer",
        "server-timing": "gfet4t7; dur=1",
    }


# Gemini blocks a prompt inside a 200 stream (``prompt_blocked``), not with an error status.
SPEC = Spec(
    name="gemini",
    dumps=dumps,
    auth_error=auth_error,
    not_found=not_found_error,
    status_error=status_error,
    context_length_error=context_length_error,
    content_filter_error=None,
    success_headers=success_headers,
)


# --- wire: replies ------------------------------------------------------------------------------


def usage_metadata(prompt_tokens: int, produced: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": produced,
        "totalTokenCount": prompt_tokens + produced,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }


def gemini_chunks(
    completion: Completion, *, model: str, response_id: str, thoughts: bool = False
) -> list[dict[str, Any]]:
    """Thought summaries first (``includeThoughts``), then one event per word (finishReason on the
    last), or a whole functionCall then an empty final text."""

    def event(parts: list[dict[str, Any]], produced: int, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if last:
            candidate["finishReason"] = _FINISH[completion.finish]
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": usage_metadata(completion.prompt_tokens, produced),
            "modelVersion": model,
            "responseId": response_id,
        }

    call = completion.tool_call
    if call is not None:
        return [
            event(
                [{"functionCall": {"name": call.name, "args": call.arguments}}],
                completion.completion_tokens,
                False,
            ),
            event([{"text": ""}], completion.completion_tokens, True),
        ]
    words = completion.words
    thinking = [event([{"text": w, "thought": True}], 0, False) for w in thought_words()] if thoughts else []
    return thinking + [event([{"text": word}], i + 1, i == len(words) - 1) for i, word in enumerate(words)]


def generate_body(completion: Completion, *, model: str, response_id: str) -> dict[str, Any]:
    """The non-stream ``generateContent`` reply: every part in one response."""
    if completion.tool_call is not None:
        parts: list[dict[str, Any]] = [
            {"functionCall": {"name": completion.tool_call.name, "args": completion.tool_call.arguments}}
        ]
    else:
        parts = [{"text": completion.text}]
    return {
        "candidates": [
            {
                "content": {"parts": parts, "role": "model"},
                "finishReason": _FINISH[completion.finish],
                "index": 0,
            }
        ],
        "usageMetadata": usage_metadata(completion.prompt_tokens, completion.completion_tokens),
        "modelVersion": model,
        "responseId": response_id,
    }


def prompt_blocked() -> bytes:
    """Gemini's answer to a blocked prompt: one event with ``promptFeedback.blockReason``, no candidates."""
    payload = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "modelVersion": "fake"}
    return b"data: " + dumps(payload) + b"\r\n\r\n"


def mid_stream_error() -> bytes:
    """Bare pretty JSON, no ``data:``."""
    error = {
        "error": {
            "code": 500,
            "message": "An internal error has occurred. Please retry.",
            "status": "INTERNAL",
        }
    }
    return (json.dumps(error, indent=2) + "\n").encode()


def frame(chunks: list[dict[str, Any]], fault: Fault | None, mode: Mode) -> tuple[list[bytes], str | None]:
    """CRLF-framed ``data:`` events without a terminator, or the JSON-array body without ``alt=sse``."""
    name = fault.name if fault else ""
    if mode == "json-array":
        texts = [json.dumps(chunk, indent=2).encode() for chunk in chunks]
        pieces = [(b"[" if i == 0 else b"\n,\r\n") + text for i, text in enumerate(texts)]
        pieces.append(b"\n]")
        return pieces, "application/json; charset=UTF-8"
    bodies = [dumps(chunk) for chunk in chunks]
    if name == "ndjson":
        return [body + b"\n" for body in bodies], "application/x-ndjson"
    pieces = [b"data: " + body + b"\r\n\r\n" for body in bodies]
    if name == "invalid-json":
        middle = len(pieces) // 2
        pieces[middle] = b"data: " + truncated(bodies[middle]) + b"\r\n\r\n"
    if name == "mid-stream-error":
        pieces = [*pieces[: max(1, len(pieces) // 2)], mid_stream_error()]
    if name == "content-filter":
        pieces = [prompt_blocked()]
    return pieces, content_type_for(name, "text/event-stream")


def tool_of(body: dict[str, Any]) -> ToolCall | None:
    declarations = [
        d
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        for d in tool.get("functionDeclarations") or tool.get("function_declarations") or []
        if isinstance(d, dict)
    ]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if not declarations or mode == "NONE":
        return None
    contents = body.get("contents") or []
    last_parts = contents[-1].get("parts", []) if contents and isinstance(contents[-1], dict) else []
    if any(isinstance(p, dict) and ("functionResponse" in p or "function_response" in p) for p in last_parts):
        return None
    chosen = declarations[0]
    schema = (
        chosen.get("parameters")
        or chosen.get("parametersJsonSchema")
        or chosen.get("parameters_json_schema")
        or {}
    )
    return ToolCall(str(chosen.get("name", "tool")), example_value(schema))


# --- routes -------------------------------------------------------------------------------------


def gemini_key(request: Request) -> str | None:
    return request.headers.get("x-goog-api-key") or request.query_params.get("key")


def _refusal(
    provider: FakeProvider, body: dict[str, Any] | None, model: str, action: str, version: str
) -> Response | None:
    """What the API refuses before any model work (in its own words)."""
    if action not in ("streamGenerateContent", "generateContent") or not model:
        return method_not_found()
    if not provider.config.knows_model(model):
        return not_found_error(model, version)
    if body is None:
        return gemini_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
    thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    if NO_REASONING in model and ("thinkingBudget" in thinking or "thinkingLevel" in thinking):
        return gemini_error(400, "Thinking is not supported by this model.", "INVALID_ARGUMENT")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return gemini_error(
            400, "* GenerateContentRequest.contents: contents is not specified\n", "INVALID_ARGUMENT"
        )
    return None


async def model_action(provider: FakeProvider, request: Request) -> Response:
    """``models/{model}:{action}``: the gate (faults, key), the API's refusals, then the reply."""
    version = request.url.path.split("/")[1]
    model, _, action = str(request.path_params["target"]).rpartition(":")
    body, recorded = await provider.read_json(request)
    fault, early = await provider.gate(request, SPEC, model, gemini_key(request), recorded)
    if early is not None:
        return early
    problem = _refusal(provider, body, model, action, version)
    if problem is not None or body is None:
        return problem or method_not_found()
    contents = body["contents"]
    prefill, asked = gemini_prefill(contents)
    if prefill is not None and fault is not None and fault.name == "no-prefill":
        return gemini_error(400, NO_PREFILL, "INVALID_ARGUMENT")
    generation = body.get("generationConfig") or body.get("generation_config") or {}
    max_tokens = positive_int(generation.get("maxOutputTokens") or generation.get("max_output_tokens"))
    completion = continued(
        plan_completion(
            chunks=int_header(request, CHUNKS_HEADER, provider.config.default_chunks),
            max_tokens=max_tokens,
            prompt_tokens=max(1, count_words(contents) + count_words(body.get("systemInstruction") or {})),
            tool=tool_of(body),
            prompt=asked,
        ),
        prefill,
    )
    return _reply(provider, request, action, generation, completion, model, fault)


def _reply(
    provider: FakeProvider, request: Request, action: str, generation: dict[str, Any],
    completion: Completion, model: str, fault: Fault | None,
) -> Response:  # fmt: skip
    response_id = uuid.uuid4().hex[:22]
    headers = success_headers()
    if action == "generateContent":
        reply = generate_body(completion, model=model, response_id=response_id)
        return provider.respond(label="gemini:json", pieces=[json.dumps(reply, indent=2).encode()],
                                content_type="application/json; charset=UTF-8", headers=headers,
                                request=request, fault=fault)  # fmt: skip
    mode: Mode = "sse" if request.query_params.get("alt") == "sse" else "json-array"
    thinking = generation.get("thinkingConfig") or generation.get("thinking_config") or {}
    thoughts = isinstance(thinking, dict) and thinking.get("includeThoughts") is True
    pieces, content_type = frame(
        gemini_chunks(completion, model=model, response_id=response_id, thoughts=thoughts), fault, mode
    )
    return provider.respond(label=f"gemini:{mode}", pieces=pieces, content_type=content_type,
                            headers=headers, request=request, fault=fault)  # fmt: skip


def routes(provider: FakeProvider) -> list[Route]:
    async def action(request: Request) -> Response:
        return await model_action(provider, request)

    async def models(request: Request) -> Response:
        _, early = await provider.gate(request, SPEC, "", gemini_key(request), None)
        if early is not None:
            return early
        listed = [
            {
                "name": f"models/{m}",
                "displayName": m,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            }
            for m in provider.config.models
        ]
        return JSONResponse({"models": listed})

    return [
        Route("/v1beta/models", models, methods=["GET"]),
        Route("/v1beta/models/{target}", action, methods=["POST"]),
        Route("/v1/models/{target}", action, methods=["POST"]),
    ]
