"""OpenAI: ``POST /v1/chat/completions`` (Bearer) and ``GET /v1/models``, the
``chat.completion[.chunk]`` shapes and OpenAI's error bodies. The chat flow is shared with
Azure's routes (``ChatRoute`` says where they differ)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    split_fragments,
    thought_words,
)
from ..config import FakeProviderConfig
from ..faults import Fault
from ..prefill import NO_PREFILL, openai_prefill
from ..provider import FakeProvider
from ..reasoning import NO_REASONING, thought_form
from ..request_knobs import CHUNKS_HEADER, bearer, int_header, positive_int
from ..wire import Spec, ThoughtForm, content_type_for, new_id, status_error_shaped, truncated

_AZURE_SAFE = {"filtered": False, "severity": "safe"}
#: Azure's per-choice filter annotations (the OpenAI-compatible flow adds them on Azure routes).
AZURE_CONTENT_FILTER = {
    "hate": _AZURE_SAFE,
    "self_harm": _AZURE_SAFE,
    "sexual": _AZURE_SAFE,
    "violence": _AZURE_SAFE,
}
AZURE_PROMPT_FILTER = {**AZURE_CONTENT_FILTER, "jailbreak": {"filtered": False, "detected": False}}

_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to access this resource.", None),
    404: ("invalid_request_error", "The requested resource does not exist.", None),
    429: ("requests", "Rate limit reached for requests. Please try again in 1s.", "rate_limit_exceeded"),
    500: ("server_error", "The server had an error while processing your request. Sorry about that!", None),
    503: ("server_error", "The engine is currently overloaded, please try again later.", None),
}  # fmt: skip


# --- wire: bodies, chunks, errors ---------------------------------------------------------------


def dumps(payload: Any) -> bytes:
    """OpenAI is compact."""
    return json.dumps(payload, separators=(",", ":")).encode()


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(
        json.dumps(body, indent=4) + "\n",
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers={"x-request-id": new_id("req_"), **(headers or {})},
    )


def auth_error(presented: str | None, echo: bool = False) -> Response:
    if not presented and not echo:
        return openai_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
            "blank username) if you're accessing the API from your browser and are prompted for a "
            "username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
        )
    detail = f": {presented or ''}" if echo else ""
    return openai_error(
        401,
        f"Incorrect API key provided{detail}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def not_found_error(model: str) -> Response:
    return openai_error(
        404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )


def _status_body(status: int) -> Response:
    type_, message, code = _STATUS_ERRORS.get(status, ("server_error", f"HTTP {status}", None))
    return openai_error(status, message, type_=type_, code=code)


def status_error(status: int, model: str, presented: str | None, retry_after: str | None) -> Response:
    return status_error_shaped(SPEC, status, model, presented, retry_after, _status_body)


def context_length_error() -> Response:
    """A prompt over the model's context, as OpenAI (and Azure) say it (400)."""
    message = (
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "130000 tokens. Please reduce the length of the messages."
    )
    return openai_error(400, message, param="messages", code="context_length_exceeded")


def content_filter_error() -> Response:
    """Azure's (and OpenAI-compatible) content-filter refusal of a prompt (400)."""
    message = (
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
    )
    filtered = {"hate": {"filtered": True, "severity": "high"}}
    return Response(
        json.dumps({"error": {"message": message, "type": None, "param": "prompt", "code": "content_filter",
                              "status": 400, "innererror": {"code": "ResponsibleAIPolicyViolation",
                                                            "content_filter_result": filtered}}}),
        status_code=400,
        media_type="application/json",
    )  # fmt: skip


def success_headers() -> dict[str, str]:
    return {
        "x-request-id": new_id("req_"),
        "openai-processing-ms": "1",
        "openai-version": "2020-10-01",
        "cache-control": "no-cache, must-revalidate",
    }


def bad_request(message: str, param: str | None = None) -> Response:
    return openai_error(400, message, param=param, code=None)


SPEC = Spec(
    name="openai",
    dumps=dumps,
    auth_error=auth_error,
    not_found=not_found_error,
    status_error=status_error,
    context_length_error=context_length_error,
    content_filter_error=content_filter_error,
    success_headers=success_headers,
)


def mid_stream_error(spec: Spec) -> bytes:
    """An in-band ``data: {"error":…}`` event (OpenAI and Azure)."""
    payload = {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    }
    return b"data: " + spec.dumps(payload) + b"\n\n"


def usage(completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass(frozen=True)
class _Chunker:
    """Builds the ``chat.completion.chunk`` objects of one stream."""

    model: str
    chunk_id: str
    created: int
    include_usage: bool
    azure: bool

    def chunk(
        self, delta: dict[str, Any], finish: str | None = None, filtered: bool = False
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if self.azure:
            choice["content_filter_results"] = AZURE_CONTENT_FILTER if filtered else {}
        body: dict[str, Any] = {
            "id": self.chunk_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
        }
        if self.include_usage:
            body["usage"] = None
        return body

    def tool_call(self, call: ToolCall) -> list[dict[str, Any]]:
        first_call = {
            "index": 0,
            "id": "call_" + self.chunk_id[-24:],
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        first = self.chunk(
            {"role": "assistant", "content": None, "tool_calls": [first_call], "refusal": None}
        )
        return [first] + [
            self.chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
            for fragment in split_fragments(call.arguments_json)
        ]


def openai_chunks(
    completion: Completion,
    *,
    model: str,
    chunk_id: str,
    created: int,
    include_usage: bool,
    azure: bool,
    thoughts: ThoughtForm | None = None,
) -> list[dict[str, Any]]:
    """Role chunk, thoughts (in ``thoughts`` form), content or tool-call deltas, finish chunk,
    optional usage chunk (no [DONE])."""
    maker = _Chunker(model, chunk_id, created, include_usage, azure)
    chunks: list[dict[str, Any]] = []
    if azure:
        chunks.append(
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": AZURE_PROMPT_FILTER}],
            }
        )
    if completion.tool_call is not None:
        chunks.extend(maker.tool_call(completion.tool_call))
    else:
        chunks.append(maker.chunk({"role": "assistant", "content": "", "refusal": None}))
        chunks.extend(maker.chunk(delta) for delta in _thought_deltas(thoughts))
        chunks.extend(maker.chunk({"content": word}, filtered=True) for word in completion.words)
    chunks.append(maker.chunk({}, completion.finish))
    if include_usage:
        usage_chunk = maker.chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = usage(completion)
        chunks.append(usage_chunk)
    return chunks


def _thought_deltas(form: ThoughtForm | None) -> list[dict[str, Any]]:
    if form is None:
        return []
    words = thought_words()
    if form == "think":
        return [{"content": "<think>"}, *({"content": w} for w in words), {"content": "</think>\n\n"}]
    return [{form: w} for w in words]


def completion_body(
    completion: Completion, *, model: str, completion_id: str, created: int, azure: bool
) -> dict[str, Any]:
    """The non-stream ``chat.completion`` object (stream: false)."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if completion.tool_call is not None:
        message["tool_calls"] = [
            {
                "id": "call_" + completion_id[-24:],
                "type": "function",
                "function": {
                    "name": completion.tool_call.name,
                    "arguments": completion.tool_call.arguments_json,
                },
            }
        ]
    else:
        message["content"] = completion.text
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": completion.finish,
    }
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [choice],
        "usage": usage(completion),
    }
    if azure:
        choice["content_filter_results"] = AZURE_CONTENT_FILTER
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": AZURE_PROMPT_FILTER}]
    return body


def frame(spec: Spec, chunks: list[dict[str, Any]], fault: Fault | None) -> tuple[list[bytes], str | None]:
    """LF-framed ``data:`` events and ``[DONE]``, bent by the content-level faults."""
    name = fault.name if fault else ""
    bodies = [spec.dumps(chunk) for chunk in chunks]
    if name == "ndjson":
        return [body + b"\n" for body in bodies], "application/x-ndjson"
    pieces = [b"data: " + body + b"\n\n" for body in bodies]
    if name == "invalid-json":
        middle = len(pieces) // 2
        pieces[middle] = b"data: " + truncated(bodies[middle]) + b"\n\n"
    if name == "mid-stream-error":
        pieces = [*pieces[: max(2, len(pieces) // 2)], mid_stream_error(spec)]
    elif name != "no-done":
        pieces.append(b"data: [DONE]\n\n")
    return pieces, content_type_for(name, "text/event-stream; charset=utf-8")


def tool_of(body: dict[str, Any]) -> ToolCall | None:
    """Call the first (or the forced) tool, unless tools are off or the last message is a tool result."""
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    messages = body.get("messages") or []
    if not tools or choice == "none":
        return None
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") in ("tool", "function"):
        return None
    chosen = tools[0]["function"]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = next((t["function"] for t in tools if t["function"].get("name") == wanted), chosen)
    return ToolCall(str(chosen.get("name", "tool")), example_value(chosen.get("parameters") or {}))


# --- the OpenAI-compatible chat flow --------------------------------------------------------------


def _no_version_check(request: Request) -> Response | None:
    return None


@dataclass(frozen=True)
class ChatRoute:
    """Where an OpenAI-compatible chat route differs from OpenAI's own."""

    spec: Spec
    #: The route's name in reply labels (``openai``, ``azure-v1``, ``azure-classic``).
    label: str
    key: Callable[[Request], str | None]
    knows: Callable[[FakeProviderConfig, str], bool]
    #: Azure annotates choices with content-filter results.
    azure_fields: bool = False
    #: The model named by the path (Azure's deployment), else the body's ``model``.
    deployment: Callable[[Request], str | None] = lambda request: None
    #: The route's refusal of its ``api-version`` query parameter, if any.
    version_error: Callable[[Request], Response | None] = _no_version_check
    #: ``stream_options.include_usage`` is honoured from this api-version on (None: always).
    usage_since: str | None = None
    #: (message, param): the API's 400 for a request it cannot take.
    bad_request: Callable[[str, str | None], Response] = bad_request


OPENAI_CHAT = ChatRoute(SPEC, "openai", bearer, FakeProviderConfig.knows_model)


def _refusal(
    route: ChatRoute, config: FakeProviderConfig, body: dict[str, Any] | None, model: str
) -> Response | None:
    """What an OpenAI-compatible API refuses before any model work (in its own words)."""
    problem = route.bad_request
    if body is None:
        return problem(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            None,
        )
    if not model:
        return problem("you must provide a model parameter", "model")
    if not route.knows(config, model):
        return route.spec.not_found(model)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return problem("Missing required parameter: 'messages'.", "messages")
    if NO_REASONING in model and "reasoning_effort" in body:
        return problem(
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.", "reasoning_effort"
        )
    return None


async def chat(provider: FakeProvider, request: Request, route: ChatRoute) -> Response:
    """The gate (faults, key), the route's own refusals, then the reply (stream or JSON)."""
    body, recorded = await provider.read_json(request)
    body_model = body.get("model") if body else None
    model = route.deployment(request) or (body_model if isinstance(body_model, str) else "")
    fault, early = await provider.gate(request, route.spec, model, route.key(request), recorded)
    if early is not None:
        return early
    problem = route.version_error(request) or _refusal(route, provider.config, body, model)
    if problem is not None or body is None:
        return problem or route.bad_request("", None)
    prefill, asked = openai_prefill(body["messages"])
    if prefill is not None and fault is not None and fault.name == "no-prefill":
        return route.bad_request(NO_PREFILL, "messages")
    max_tokens = positive_int(body.get("max_completion_tokens")) or positive_int(body.get("max_tokens"))
    completion = continued(
        plan_completion(
            chunks=int_header(request, CHUNKS_HEADER, provider.config.default_chunks),
            max_tokens=max_tokens,
            prompt_tokens=max(1, count_words(body["messages"])),
            tool=tool_of(body),
            prompt=asked,
        ),
        prefill,
    )
    return _reply(provider, request, route, body, completion, model, fault)


def _reply(
    provider: FakeProvider, request: Request, route: ChatRoute, body: dict[str, Any],
    completion: Completion, model: str, fault: Fault | None,
) -> Response:  # fmt: skip
    spec, azure = route.spec, route.azure_fields
    chunk_id, created = new_id("chatcmpl-"), int(time.time())
    headers = spec.success_headers()
    if body.get("stream") is not True:
        reply = completion_body(completion, model=model, completion_id=chunk_id, created=created, azure=azure)
        return provider.respond(label=f"{route.label}:json", pieces=[spec.dumps(reply)], content_type="application/json",
                                headers=headers, request=request, fault=fault)  # fmt: skip
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    if route.usage_since and (request.query_params.get("api-version") or "") < route.usage_since:
        include_usage = False
    chunks = openai_chunks(
        completion,
        model=model,
        chunk_id=chunk_id,
        created=created,
        include_usage=include_usage,
        azure=azure,
        thoughts=thought_form(request.headers, body),
    )
    pieces, content_type = frame(spec, chunks, fault)
    return provider.respond(label=f"{route.label}:stream", pieces=pieces, content_type=content_type,
                            headers=headers, request=request, fault=fault)  # fmt: skip


def routes(provider: FakeProvider) -> list[Route]:
    async def chat_completions(request: Request) -> Response:
        return await chat(provider, request, OPENAI_CHAT)

    async def models(request: Request) -> Response:
        _, early = await provider.gate(request, SPEC, "", bearer(request), None)
        if early is not None:
            return early
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
            for m in provider.config.models
        ]
        return JSONResponse({"object": "list", "data": data})

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
