"""The fake's Anthropic Messages API: ``POST /v1/messages`` (``x-api-key``, or ``Authorization:
Bearer`` as compatible servers take it) with the wire shapes of Anthropic's docs and recorded
streams: named events, ``ping``, ``tool_use`` input as ``input_json_delta`` fragments starting with
an empty one, ``thinking`` blocks when the request asks for extended thinking, and the error
vocabulary (``overloaded_error`` as HTTP 529 or as an in-band ``event: error``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
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
from ..faults import Fault
from ..prefill import NO_PREFILL, openai_prefill
from ..provider import FakeProvider
from ..reasoning import NO_REASONING
from ..request_knobs import CHUNKS_HEADER, bearer, int_header, positive_int
from ..wire import Spec, content_type_for, new_id

ANTHROPIC_VERSION_HEADER = "anthropic-version"
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_STATUS_TYPES = {
    400: ("invalid_request_error", "Invalid request."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> Response:
    request_id = new_id("req_")
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers={"request-id": request_id, **(headers or {})},
    )


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def auth_error(presented: str | None, echo: bool = False) -> Response:
    detail = f" ({presented})" if echo and presented else ""
    return anthropic_error(401, "authentication_error", f"invalid x-api-key{detail}")


def status_error(status: int, model: str, presented: str | None, retry_after: str | None = None) -> Response:
    """Anthropic's answer for the status; a 429 always says ``retry-after: 1``."""
    if status == 401:
        return auth_error(presented or "wrong-key")
    if status == 404:
        return not_found_error(model)
    type_, message = _STATUS_TYPES.get(status, ("api_error", f"HTTP {status}"))
    return anthropic_error(status, type_, message, {"retry-after": "1"} if status == 429 else None)


def not_found_error(model: str) -> Response:
    return anthropic_error(404, "not_found_error", f"model: {model}")


def context_length_error() -> Response:
    return anthropic_error(400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum")


def success_headers() -> dict[str, str]:
    return {"request-id": new_id("req_"), "anthropic-organization-id": "fake-org"}


# The content-filter fault has no Anthropic answer: the request is served as usual.
SPEC = Spec(
    name="anthropic",
    dumps=dumps,
    auth_error=auth_error,
    not_found=not_found_error,
    status_error=status_error,
    context_length_error=context_length_error,
    content_filter_error=None,
    success_headers=success_headers,
)


def tool_of(body: dict[str, Any]) -> ToolCall | None:
    """Call the first (or the forced) tool, unless tools are off or the last turn holds a tool result."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]
    raw_choice = body.get("tool_choice")
    choice: dict[str, Any] = raw_choice if isinstance(raw_choice, dict) else {}
    if not tools or choice.get("type") == "none":
        return None
    messages = body.get("messages") or []
    last = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
    if isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last):
        return None
    chosen = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
    return ToolCall(chosen["name"], example_value(chosen.get("input_schema") or {}))


def message_events(
    completion: Completion, *, model: str, message_id: str, thinking: bool
) -> list[tuple[str, dict[str, Any]]]:
    """The stream's (event name, data) pairs, in the documented order."""
    usage = {"input_tokens": completion.prompt_tokens, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 1}  # fmt: skip
    message: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message})
    ]
    index = 0
    if thinking:
        events += _block(index, {"type": "thinking", "thinking": "", "signature": ""},
                         [{"type": "thinking_delta", "thinking": w} for w in thought_words()]
                         + [{"type": "signature_delta", "signature": "ZmFrZS1zaWduYXR1cmU="}])  # fmt: skip
        index += 1
    events.append(("ping", {"type": "ping"}))
    call = completion.tool_call
    if call is not None:
        start = {"type": "tool_use", "id": new_id("toolu_"), "name": call.name, "input": {}}
        fragments = ["", *split_fragments(call.arguments_json)]
        events += _block(index, start, [{"type": "input_json_delta", "partial_json": f} for f in fragments])
    else:
        events += _block(
            index, {"type": "text", "text": ""}, [{"type": "text_delta", "text": w} for w in completion.words]
        )
    delta = {"type": "message_delta", "delta": {"stop_reason": _STOP[completion.finish], "stop_sequence": None},
             "usage": {"output_tokens": completion.completion_tokens}}  # fmt: skip
    events += [("message_delta", delta), ("message_stop", {"type": "message_stop"})]
    return events


def _block(
    index: int, start: dict[str, Any], deltas: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}),
        *(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def message_body(completion: Completion, *, model: str, message_id: str) -> dict[str, Any]:
    """The non-stream ``Message`` object."""
    if completion.tool_call is not None:
        content: list[dict[str, Any]] = [{"type": "tool_use", "id": new_id("toolu_"),
                                          "name": completion.tool_call.name, "input": completion.tool_call.arguments}]  # fmt: skip
    else:
        content = [{"type": "text", "text": completion.text}]
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": _STOP[completion.finish], "stop_sequence": None,
            "usage": {"input_tokens": completion.prompt_tokens, "output_tokens": completion.completion_tokens}}  # fmt: skip


def frame(events: list[tuple[str, dict[str, Any]]], fault: Fault | None) -> tuple[list[bytes], str | None]:
    """``event:``/``data:`` pairs (LF framing), bent by the content-level faults."""
    name = fault.name if fault else ""
    bodies = [json.dumps(data, separators=(",", ":")).encode() for _, data in events]
    if name == "ndjson":
        return [body + b"\n" for body in bodies], "application/x-ndjson"
    pieces = [
        f"event: {event}\n".encode() + b"data: " + body + b"\n\n"
        for (event, _), body in zip(events, bodies, strict=True)
    ]
    if name == "invalid-json":
        middle = len(pieces) // 2
        pieces[middle] = (
            f"event: {events[middle][0]}\n".encode()
            + b"data: "
            + bodies[middle][: len(bodies[middle]) // 2]
            + b"\n\n"
        )
    if name == "mid-stream-error":
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        pieces = [
            *pieces[: max(3, len(pieces) // 2)],
            b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n",
        ]
    elif name == "no-done":
        pieces = pieces[:-1]  # no message_stop
    return pieces, content_type_for(name, "text/event-stream; charset=utf-8")


async def messages(provider: FakeProvider, request: Request) -> Response:
    """``POST /v1/messages``: the shared gate (faults, key), the API's own refusals, then the reply."""
    body, recorded = await provider.read_json(request)
    body_model = body.get("model") if body else None
    model = body_model if isinstance(body_model, str) else ""
    presented = request.headers.get("x-api-key") or bearer(request)
    fault, early = await provider.gate(request, SPEC, model, presented, recorded)
    if early is not None:
        return early
    problem = _refusal(provider, request, body, model)
    if problem is not None or body is None:
        return problem or anthropic_error(
            400, "invalid_request_error", "There was an error parsing the body."
        )
    # Anthropic's prefill is a trailing assistant message, the shape OpenAI's takes too.
    prefill, asked = openai_prefill(body["messages"])
    if prefill is not None and fault is not None and fault.name == "no-prefill":
        return anthropic_error(400, "invalid_request_error", NO_PREFILL)
    raw_thinking = body.get("thinking")
    thinking: dict[str, Any] = raw_thinking if isinstance(raw_thinking, dict) else {}
    completion = continued(
        plan_completion(
            chunks=int_header(request, CHUNKS_HEADER, provider.config.default_chunks),
            max_tokens=positive_int(body.get("max_tokens")),
            prompt_tokens=max(1, count_words(body.get("messages")) + count_words(body.get("system") or "")),
            tool=tool_of(body),
            prompt=asked,
        ),
        prefill,
    )
    message_id = new_id("msg_")
    headers = success_headers()
    if body.get("stream") is not True:
        reply = message_body(completion, model=model, message_id=message_id)
        return provider.respond(label="anthropic:json", pieces=[json.dumps(reply).encode()],
                                 content_type="application/json", headers=headers, request=request, fault=fault)  # fmt: skip
    events = message_events(
        completion, model=model, message_id=message_id, thinking=thinking.get("type") == "enabled"
    )
    pieces, content_type = frame(events, fault)
    return provider.respond(label="anthropic:stream", pieces=pieces, content_type=content_type,
                             headers=headers, request=request, fault=fault)  # fmt: skip


def _refusal(
    provider: FakeProvider, request: Request, body: dict[str, Any] | None, model: str
) -> Response | None:
    """What the Messages API refuses before any model work (in its own words)."""
    if not request.headers.get(ANTHROPIC_VERSION_HEADER):
        return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
    if body is None:
        return anthropic_error(400, "invalid_request_error", "There was an error parsing the body.")
    if not model:
        return anthropic_error(400, "invalid_request_error", "model: Field required")
    if positive_int(body.get("max_tokens")) is None:
        return anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return anthropic_error(400, "invalid_request_error", "messages: Field required")
    if not provider.config.knows_model(model):
        return not_found_error(model)
    if NO_REASONING in model and "thinking" in body:
        return anthropic_error(400, "invalid_request_error", "thinking: this model does not support thinking")
    return None


def routes(provider: FakeProvider) -> list[Route]:
    async def create_message(request: Request) -> Response:
        return await messages(provider, request)

    return [Route("/v1/messages", create_message, methods=["POST"])]
