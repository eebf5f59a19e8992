"""The fake upstream: OpenAI, Azure OpenAI (classic and v1), Gemini and Anthropic routes with
scriptable faults; reasoning requests get thoughts in each spec's form.

Routes (see DESIGN.md §3–§5 and WIRE_FORMATS.md for the shapes imitated):
  OpenAI   POST /v1/chat/completions (Bearer), GET /v1/models
  Azure    POST /openai/deployments/{deployment}/chat/completions?api-version=… (api-key or Bearer),
           POST /openai/v1/chat/completions, GET /openai/v1/models
  Gemini   POST /{v1beta|v1}/models/{model}:streamGenerateContent[?alt=sse], …:generateContent,
           GET /v1beta/models (x-goog-api-key or ?key=)
  Anthropic POST /v1/messages (x-api-key or Bearer; anthropic-version required)
  Control  GET /_fake/requests, GET /_fake/connections, POST /_fake/reset, GET /_fake/health,
           GET|PUT|DELETE /_fake/faults (scripted faults per model, for a fraction of its requests)
Per-request knobs: headers x-fake-chunks, x-fake-interval-ms, x-fake-fault[-times], x-fake-scenario,
x-fake-reasoning.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import anthropic
from .completion import ToolCall, continued, count_words, example_value, plan_completion
from .config import FakeProviderConfig
from .faults import (
    FAULT_HEADER,
    FAULT_TIMES_HEADER,
    SCENARIO_HEADER,
    Fault,
    UnknownFaultError,
    fault_from_model,
    parse_fault_header,
)
from .prefill import NO_PREFILL, gemini_prefill, openai_prefill
from .reasoning import NO_REASONING, thought_form
from .state import SECRET_QUERY_PARAMS, FakeState, fingerprint, redact_header
from .streaming import TRANSPORT_SCOPE_KEY, AbortResponse, PacedBody, find_transport
from .wire import (
    Spec,
    auth_error,
    azure_error,
    bad_request_error,
    content_filter_error,
    context_length_error,
    dumps,
    gemini_chunks,
    gemini_error,
    gemini_generate_body,
    gemini_prompt_blocked,
    mid_stream_error,
    new_id,
    not_found_error,
    openai_chunks,
    openai_completion_body,
    openai_error,
    status_error,
)

CHUNKS_HEADER = "x-fake-chunks"
INTERVAL_HEADER = "x-fake-interval-ms"
MAX_CHUNKS = 100_000
_API_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
# stream_options.include_usage exists on Azure classic only from this api-version on.
_AZURE_USAGE_SINCE = "2024-09-01"

Mode = Literal["sse", "json-array", "json"]


class FakeProviderApp(Starlette):
    """Starlette wraps ``send`` in closures, so the transport (for resets) is captured before that."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[TRANSPORT_SCOPE_KEY] = find_transport(send)
        await super().__call__(scope, receive, send)


@dataclass
class _Call:
    """One chat request after the spec-specific parsing, before faults and checks."""

    spec: Spec
    route: str
    model: str
    body: dict[str, Any] | None
    presented_key: str | None
    mode: Mode = "sse"
    api_version: str | None = None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _azure_key(request: Request) -> str | None:
    return request.headers.get("api-key") or _bearer(request)


def _gemini_key(request: Request) -> str | None:
    return request.headers.get("x-goog-api-key") or request.query_params.get("key")


def _int_header(request: Request, name: str, default: int) -> int:
    try:
        return min(MAX_CHUNKS, max(1, int(request.headers[name])))
    except (KeyError, ValueError):
        return default


def _float_header(request: Request, name: str, default: float) -> float:
    try:
        return max(0.0, float(request.headers[name]))
    except (KeyError, ValueError):
        return default


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _openai_tool(body: dict[str, Any]) -> ToolCall | None:
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


def _gemini_tool(body: dict[str, Any]) -> ToolCall | None:
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


def _truncated(piece_json: bytes) -> bytes:
    return piece_json[: max(1, len(piece_json) // 2)]


def _frame_openai(
    spec: Spec, chunks: list[dict[str, Any]], fault: Fault | None
) -> tuple[list[bytes], str | None]:
    """LF-framed ``data:`` events and ``[DONE]``, bent by the content-level faults."""
    name = fault.name if fault else ""
    bodies = [dumps(spec, chunk) for chunk in chunks]
    if name == "ndjson":
        return [body + b"\n" for body in bodies], "application/x-ndjson"
    pieces = [b"data: " + body + b"\n\n" for body in bodies]
    if name == "invalid-json":
        middle = len(pieces) // 2
        pieces[middle] = b"data: " + _truncated(bodies[middle]) + b"\n\n"
    if name == "mid-stream-error":
        pieces = [*pieces[: max(2, len(pieces) // 2)], mid_stream_error(spec)]
    elif name != "no-done":
        pieces.append(b"data: [DONE]\n\n")
    return pieces, _content_type(name, "text/event-stream; charset=utf-8")


def _frame_gemini(
    chunks: list[dict[str, Any]], fault: Fault | None, mode: Mode
) -> tuple[list[bytes], str | None]:
    """CRLF-framed ``data:`` events without a terminator, or the JSON-array body without ``alt=sse``."""
    name = fault.name if fault else ""
    if mode == "json-array":
        texts = [json.dumps(chunk, indent=2).encode() for chunk in chunks]
        pieces = [(b"[" if i == 0 else b"\n,\r\n") + text for i, text in enumerate(texts)]
        pieces.append(b"\n]")
        return pieces, "application/json; charset=UTF-8"
    bodies = [dumps("gemini", chunk) for chunk in chunks]
    if name == "ndjson":
        return [body + b"\n" for body in bodies], "application/x-ndjson"
    pieces = [b"data: " + body + b"\r\n\r\n" for body in bodies]
    if name == "invalid-json":
        middle = len(pieces) // 2
        pieces[middle] = b"data: " + _truncated(bodies[middle]) + b"\r\n\r\n"
    if name == "mid-stream-error":
        pieces = [*pieces[: max(1, len(pieces) // 2)], mid_stream_error("gemini")]
    if name == "content-filter":
        pieces = [gemini_prompt_blocked()]
    return pieces, _content_type(name, "text/event-stream")


def _content_type(fault_name: str, normal: str) -> str | None:
    if fault_name == "wrong-content-type":
        return "application/json"
    if fault_name == "no-content-type":
        return None
    return normal


class FakeProvider:
    """Request handlers; one instance per app, holding the config and the observation state."""

    def __init__(self, config: FakeProviderConfig, state: FakeState) -> None:
        self.config = config
        self.state = state

    # --- shared steps ----------------------------------------------------------------------

    async def _read_json(self, request: Request) -> tuple[dict[str, Any] | None, Any]:
        raw = await request.body()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            return None, raw.decode("utf-8", "replace")[:4096]
        return (parsed if isinstance(parsed, dict) else None), parsed

    def _record(
        self, request: Request, spec: Spec | None, model: str, body: Any, fault: Fault | None
    ) -> None:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            redacted = redact_header(name, value)
            headers[name] = f"{headers[name]}, {redacted}" if name in headers else redacted
        query = {
            k: (fingerprint(v) if k.lower() in SECRET_QUERY_PARAMS else v)
            for k, v in request.query_params.items()
        }
        self.state.record_request(
            {
                "method": request.method,
                "path": request.url.path,
                "query": query,
                "headers": headers,
                "body": body,
                "spec": spec,
                "model": model,
                "fault": fault.spec if fault else None,
            }
        )

    def _select_fault(self, request: Request, model: str, body: Any = None) -> Fault | None:
        """Header wins over the model name; ``x-fake-fault-times`` limits how often it fires."""
        header = request.headers.get(FAULT_HEADER)
        fault = parse_fault_header(header) if header else fault_from_model(model)
        if fault is None and not header:
            text = body if isinstance(body, str) else json.dumps(body)
            scripted = self.state.scripted_fault(model, text, url=str(request.url))
            fault = parse_fault_header(scripted) if scripted else None
        times = request.headers.get(FAULT_TIMES_HEADER)
        if fault is not None and times is not None:
            key = request.headers.get(SCENARIO_HEADER) or fault.spec
            try:
                limit = int(times)
            except ValueError:
                limit = 1
            if not self.state.take_fault(key, limit):
                return None
        return fault

    async def _gate(
        self, request: Request, spec: Spec, model: str, presented: str | None, body: Any
    ) -> tuple[Fault | None, Response | None]:
        """Record the request, then the faults and checks that come before any model work."""
        try:
            fault = self._select_fault(request, model, body)
        except UnknownFaultError as exc:
            self._record(request, spec, model, body, None)
            return None, JSONResponse({"error": {"message": str(exc), "type": "fake_provider_error"}}, 400)
        self._record(request, spec, model, body, fault)
        name = fault.name if fault else ""
        if fault is not None:
            if name == "delay-first-byte":
                await asyncio.sleep(fault.int_arg(1000) / 1000)
            if name == "redirect":
                return fault, self._redirect(request, fault)
            if name == "reset" and fault.int_arg(1) == 0:
                return fault, AbortResponse()
            if name == "echo-key-in-error":
                return fault, auth_error(spec, presented, echo=True)
            if name == "context-length":
                return fault, context_length_error(spec)
            if name == "content-filter" and spec not in ("gemini", "anthropic"):
                return fault, content_filter_error(spec)
        if name != "accept-any-key" and not self.config.accepts_key(presented):
            return fault, auth_error(spec, presented)
        status = fault.status if fault else None
        if status is not None:
            return fault, status_error(spec, status, model, presented, fault.arg if fault else None)
        return fault, None

    def _redirect(self, request: Request, fault: Fault) -> Response:
        """302 to another origin (localhost ↔ 127.0.0.1), whose target records any follower."""
        if fault.arg and fault.arg.startswith(("http://", "https://")):
            location = fault.arg
        else:
            host = request.url.hostname or "127.0.0.1"
            other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
            location = f"http://{other}:{request.url.port or 80}/_fake/redirect-target{request.url.path}"
        return Response(status_code=302, headers={"location": location})

    def _respond(
        self,
        *,
        label: str,
        pieces: list[bytes],
        content_type: str | None,
        headers: dict[str, str],
        request: Request,
        fault: Fault | None,
    ) -> Response:
        interval_ms = _float_header(request, INTERVAL_HEADER, self.config.default_interval_ms)
        return PacedBody(
            state=self.state,
            label=label,
            pieces=pieces,
            content_type=content_type,
            headers=headers,
            interval_s=interval_ms / 1000,
            fault=fault,
            max_stall_s=self.config.max_stall_s,
            reset_flush_s=self.config.reset_flush_s,
        )

    # --- OpenAI and Azure chat -------------------------------------------------------------

    async def openai_chat(self, request: Request) -> Response:
        return await self._openai_family_chat(request, "openai", "openai", None)

    async def azure_v1_chat(self, request: Request) -> Response:
        return await self._openai_family_chat(request, "azure", "azure-v1", None)

    async def azure_classic_chat(self, request: Request) -> Response:
        return await self._openai_family_chat(
            request, "azure", "azure-classic", request.path_params["deployment"]
        )

    async def _openai_family_chat(
        self, request: Request, spec: Spec, route: str, deployment: str | None
    ) -> Response:
        body, recorded = await self._read_json(request)
        body_model = body.get("model") if body else None
        model = deployment or (body_model if isinstance(body_model, str) else "")
        presented = _bearer(request) if spec == "openai" else _azure_key(request)
        fault, early = await self._gate(request, spec, model, presented, recorded)
        if early is not None:
            return early
        api_version = request.query_params.get("api-version")
        if route == "azure-classic":
            if not api_version:
                return azure_error(404, "404", "Resource not found")
            if not _API_VERSION_RE.fullmatch(api_version):
                return azure_error(400, "BadRequest", "API version not supported")
        if body is None:
            return bad_request_error(
                spec,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            )
        if not model:
            return bad_request_error(spec, "you must provide a model parameter", "model")
        known = self.config.knows_model(model) if spec == "openai" else self.config.knows_deployment(model)
        if not known:
            return not_found_error(spec, model)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return bad_request_error(spec, "Missing required parameter: 'messages'.", "messages")
        if NO_REASONING in model and "reasoning_effort" in body:
            return bad_request_error(
                spec,
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                "reasoning_effort",
            )

        prefill, asked = openai_prefill(messages)
        if prefill is not None and fault is not None and fault.name == "no-prefill":
            return bad_request_error(spec, NO_PREFILL, "messages")
        max_tokens = _positive_int(body.get("max_completion_tokens")) or _positive_int(body.get("max_tokens"))
        completion = continued(
            plan_completion(
                chunks=_int_header(request, CHUNKS_HEADER, self.config.default_chunks),
                max_tokens=max_tokens,
                prompt_tokens=max(1, count_words(messages)),
                tool=_openai_tool(body),
                prompt=asked,
            ),
            prefill,
        )
        azure = spec == "azure"
        chunk_id, created = new_id("chatcmpl-"), int(time.time())
        headers = self._success_headers(spec)
        if body.get("stream") is not True:
            reply = openai_completion_body(
                completion, model=model, completion_id=chunk_id, created=created, azure=azure
            )
            return self._respond(
                label=f"{route}:json",
                pieces=[dumps(spec, reply)],
                content_type="application/json",
                headers=headers,
                request=request,
                fault=fault,
            )
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if route == "azure-classic" and (api_version or "") < _AZURE_USAGE_SINCE:
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
        pieces, content_type = _frame_openai(spec, chunks, fault)
        return self._respond(
            label=f"{route}:stream",
            pieces=pieces,
            content_type=content_type,
            headers=headers,
            request=request,
            fault=fault,
        )

    @staticmethod
    def _success_headers(spec: Spec) -> dict[str, str]:
        if spec == "openai":
            return {
                "x-request-id": new_id("req_"),
                "openai-processing-ms": "1",
                "openai-version": "2020-10-01",
                "cache-control": "no-cache, must-revalidate",
            }
        if spec == "azure":
            return {
                "apim-request-id": str(uuid.uuid4()),
                "x-request-id": str(uuid.uuid4()),
                "x-ms-region": "Fake",
            }
        return {
            "content-disposition": "attachment",
            "vary": "Origin, X-Origin, Referer",
            "server-timing": "gfet4t7; dur=1",
        }

    # --- Gemini -----------------------------------------------------------------------------

    async def gemini_model_action(self, request: Request) -> Response:
        version = request.url.path.split("/")[1]
        model, _, action = str(request.path_params["target"]).rpartition(":")
        body, recorded = await self._read_json(request)
        fault, early = await self._gate(request, "gemini", model, _gemini_key(request), recorded)
        if early is not None:
            return early
        if action not in ("streamGenerateContent", "generateContent") or not model:
            return gemini_error(404, "Method not found.", "NOT_FOUND")
        if not self.config.knows_model(model):
            return not_found_error("gemini", model, version)
        if body is None:
            return gemini_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        contents = body.get("contents")
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        if NO_REASONING in model and ("thinkingBudget" in thinking or "thinkingLevel" in thinking):
            return gemini_error(400, "Thinking is not supported by this model.", "INVALID_ARGUMENT")
        if not isinstance(contents, list) or not contents:
            return gemini_error(
                400, "* GenerateContentRequest.contents: contents is not specified\n", "INVALID_ARGUMENT"
            )

        prefill, asked = gemini_prefill(contents)
        if prefill is not None and fault is not None and fault.name == "no-prefill":
            return gemini_error(400, NO_PREFILL, "INVALID_ARGUMENT")
        generation = body.get("generationConfig") or body.get("generation_config") or {}
        max_tokens = _positive_int(generation.get("maxOutputTokens") or generation.get("max_output_tokens"))
        completion = continued(
            plan_completion(
                chunks=_int_header(request, CHUNKS_HEADER, self.config.default_chunks),
                max_tokens=max_tokens,
                prompt_tokens=max(
                    1, count_words(contents) + count_words(body.get("systemInstruction") or {})
                ),
                tool=_gemini_tool(body),
                prompt=asked,
            ),
            prefill,
        )
        response_id = uuid.uuid4().hex[:22]
        headers = self._success_headers("gemini")
        if action == "generateContent":
            reply = gemini_generate_body(completion, model=model, response_id=response_id)
            return self._respond(
                label="gemini:json",
                pieces=[json.dumps(reply, indent=2).encode()],
                content_type="application/json; charset=UTF-8",
                headers=headers,
                request=request,
                fault=fault,
            )
        mode: Mode = "sse" if request.query_params.get("alt") == "sse" else "json-array"
        thinking = generation.get("thinkingConfig") or generation.get("thinking_config") or {}
        thoughts = isinstance(thinking, dict) and thinking.get("includeThoughts") is True
        pieces, content_type = _frame_gemini(
            gemini_chunks(completion, model=model, response_id=response_id, thoughts=thoughts), fault, mode
        )
        return self._respond(
            label=f"gemini:{mode}",
            pieces=pieces,
            content_type=content_type,
            headers=headers,
            request=request,
            fault=fault,
        )

    # --- Anthropic Messages ------------------------------------------------------------------

    async def anthropic_messages(self, request: Request) -> Response:
        return await anthropic.messages(self, request)

    # --- model lists (cheap auth probes) -----------------------------------------------------

    async def openai_models(self, request: Request) -> Response:
        _, early = await self._gate(request, "openai", "", _bearer(request), None)
        if early is not None:
            return early
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
            for m in self.config.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def azure_models(self, request: Request) -> Response:
        _, early = await self._gate(request, "azure", "", _azure_key(request), None)
        if early is not None:
            return early
        names = dict.fromkeys([*self.config.deployments, *self.config.models])
        data = [
            {"id": m, "object": "model", "created_at": 1_700_000_000, "status": "succeeded"} for m in names
        ]
        return JSONResponse({"object": "list", "data": data})

    async def gemini_models(self, request: Request) -> Response:
        _, early = await self._gate(request, "gemini", "", _gemini_key(request), None)
        if early is not None:
            return early
        models = [
            {
                "name": f"models/{m}",
                "displayName": m,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            }
            for m in self.config.models
        ]
        return JSONResponse({"models": models})

    # --- control routes ------------------------------------------------------------------------

    async def fake_requests(self, request: Request) -> Response:
        path = request.query_params.get("path")
        entries = [e for e in self.state.requests() if not path or e.get("path") == path]
        return JSONResponse({"requests": entries})

    async def fake_connections(self, request: Request) -> Response:
        return JSONResponse(self.state.connections())

    async def fake_reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})

    async def fake_faults(self, request: Request) -> Response:
        """``PUT {"fault": "status-500", "model": "fake-model", "ratio": 0.3}`` scripts a fault for a
        fraction of a model's requests (model defaults to "*", ratio to 1; ``when``/``unless``: only
        requests whose body contains / lacks that text; ``at``: only requests whose URL contains it,
        e.g. one of an LLM's URLs told apart by a query parameter); ``DELETE ?model=M`` (or without ``model``:
        all) removes it; ``GET`` lists them."""
        if request.method == "PUT":
            body = await request.json()
            spec, model = str(body.get("fault") or ""), str(body.get("model") or "*")
            try:
                parse_fault_header(spec)
                ratio = float(body.get("ratio", 1.0))
            except (UnknownFaultError, TypeError, ValueError) as exc:
                return JSONResponse({"error": {"message": str(exc), "type": "fake_provider_error"}}, 400)
            when, unless, at = body.get("when"), body.get("unless"), body.get("at")
            self.state.script_fault(
                model, spec, ratio, when=when and str(when), unless=unless and str(unless), at=at and str(at)
            )
        elif request.method == "DELETE":
            models = [request.query_params["model"]] if "model" in request.query_params else None
            for model in models or list(self.state.scripted_faults()):
                self.state.script_fault(model, None)
        return JSONResponse({"faults": self.state.scripted_faults()})

    async def fake_health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def redirect_target(self, request: Request) -> Response:
        """Where ``redirect`` points: a hit here means a client followed a redirect it should not have."""
        self._record(request, None, "", None, None)
        return JSONResponse({"redirected": True})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Unknown paths answer in the shape of the provider whose prefix they use, like the real hosts."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        path = request.url.path
        spec: Spec = (
            "azure" if path.startswith("/openai/") else "gemini" if path.startswith("/v1beta") else "openai"
        )
        self._record(request, spec, "", None, None)
        if spec == "azure":
            return azure_error(404, "404", "Resource not found")
        if spec == "gemini":
            return gemini_error(404, "Method not found.", "NOT_FOUND")
        return openai_error(status, f"Invalid URL ({request.method} {path})")


def create_app(config: FakeProviderConfig | None = None, state: FakeState | None = None) -> Starlette:
    """Build the fake upstream; ``app.state.fake_state`` exposes the observations in-process."""
    provider = FakeProvider(config or FakeProviderConfig(), state or FakeState())
    routes = [
        Route("/v1/chat/completions", provider.openai_chat, methods=["POST"]),
        Route("/v1/messages", provider.anthropic_messages, methods=["POST"]),
        Route("/v1/models", provider.openai_models, methods=["GET"]),
        Route(
            "/openai/deployments/{deployment}/chat/completions", provider.azure_classic_chat, methods=["POST"]
        ),
        Route("/openai/v1/chat/completions", provider.azure_v1_chat, methods=["POST"]),
        Route("/openai/v1/models", provider.azure_models, methods=["GET"]),
        Route("/v1beta/models", provider.gemini_models, methods=["GET"]),
        Route("/v1beta/models/{target}", provider.gemini_model_action, methods=["POST"]),
        Route("/v1/models/{target}", provider.gemini_model_action, methods=["POST"]),
        Route("/_fake/requests", provider.fake_requests, methods=["GET"]),
        Route("/_fake/connections", provider.fake_connections, methods=["GET"]),
        Route("/_fake/reset", provider.fake_reset, methods=["POST"]),
        Route("/_fake/faults", provider.fake_faults, methods=["GET", "PUT", "DELETE"]),
        Route("/_fake/health", provider.fake_health, methods=["GET"]),
        Route("/_fake/redirect-target/{rest:path}", provider.redirect_target, methods=["GET", "POST"]),
    ]
    app = FakeProviderApp(
        routes=routes, exception_handlers={404: provider.not_found, 405: provider.not_found}
    )
    app.state.fake_state = provider.state
    app.state.fake_config = provider.config
    return app
