"""A local REST API Gateway: HTTP in, the same proxy events (and authorizer calls) AWS would send.

Each function runs in-process, one invocation at a time per function (like one warm container),
so the handlers and their module-level state behave as they do in Lambda.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import gc
import importlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.adapters.aws import AwsClients
from llm_gateway.composition import ServicesSlot
from llm_gateway.domain.authorization import AUTHORIZATION, AmbiguousCredentials, single_header
from llm_gateway_local.template import ACCOUNT_ID, REGION, MockResponse, Route
from llm_gateway_local.usage_plan import UsagePlanGate

API_ID = "localapi01"
MAX_API_PAYLOAD = 10 * 1024 * 1024  # API Gateway's own limit; functions enforce their smaller ones


@dataclass
class LambdaContext:
    """The parts of the Lambda context the handlers (and Powertools) read."""

    function_name: str
    timeout_seconds: float = 29.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LocalFunction:
    """One function: its handler, imported on first use (once), then invoked concurrently.

    Lambda serves concurrent invocations from separate containers, so one slow invocation never
    queues another behind it; here each invocation runs on its own thread and in a context of its
    own (``contextvars``), which is where the logger keeps an invocation's keys (its function name
    and request id). How many run at once is the caller's to bound, as Lambda's concurrency
    settings bound it: the SQS pollers run ``MaximumConcurrency`` at a time (``stack.py``).

    Its import is the function's init: what it built lives as long as the stack, so it is frozen
    out of the collector's full passes (as the stream app freezes its own init). Otherwise each
    full pass walks every handler's modules and schemas and stops the stream app's event loop,
    which shares this process, for 70-90 ms: a stall no Lambda container of the stream has.
    """

    def __init__(
        self,
        name: str,
        module: str,
        attribute: str,
        environ: Mapping[str, str] | None = None,
        aws: AwsClients | None = None,
    ) -> None:
        self.name, self.module, self.attribute = name, module, attribute
        #: This function's own environment (the template's variables for it): its services are
        #: built from it on the first invocation, as a container's are from its environment.
        self.environ, self.aws = environ, aws
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:  # the init, once, as a container's
            if self._handler is None:
                loaded = importlib.import_module(self.module)
                slot = getattr(loaded, "services", None)
                if self.environ is not None and isinstance(slot, ServicesSlot):
                    slot.configure(self.environ, self.aws)
                self._handler = getattr(loaded, self.attribute)
                gc.freeze()
        handler = self._handler
        return contextvars.Context().run(handler, event, LambdaContext(self.name))


def _path_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


def _gateway_response(
    responses: dict[str, tuple[int, str]],
    name: str,
    default_status: int,
    headers: dict[str, str] | None = None,
) -> Response:
    status, body = responses.get(name, (default_status, '{"message": $context.error.messageString}'))
    # API Gateway fills $context.error.messageString with a quoted JSON string.
    body = body.replace("$context.error.messageString", json.dumps(_GATEWAY_MESSAGES.get(name, "Error")))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


_GATEWAY_MESSAGES = {
    "DEFAULT_5XX": "Internal server error",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "UNAUTHORIZED": "Unauthorized",
    "INVALID_API_KEY": "Forbidden",
    "THROTTLED": "Too Many Requests",
}


@dataclass(frozen=True)
class Authorized:
    """What API Gateway keeps from an Allow: the context for the function, the usage-plan key."""

    context: dict[str, Any]
    usage_key: str | None


class FrontDoor:
    """ASGI app; streaming routes are handed straight to their ASGI app, with no extra hop."""

    def __init__(
        self,
        routes: list[Route],
        authorizer: LocalFunction | None,
        gateway_responses: dict[str, tuple[int, str]],
        stage: str,
        streaming_apps: dict[str, ASGIApp] | None = None,
        *,
        method_responses: dict[str, MockResponse] | None = None,
        request_log: Callable[[str], None] | None = None,
        on_shutdown: list[Callable[[], Awaitable[None]]] | None = None,
        on_startup: list[Callable[[], Awaitable[None]]] | None = None,
        usage_plan: UsagePlanGate | None = None,
        response_headers: dict[str, dict[str, str]] | None = None,
        environments: Mapping[str, Mapping[str, str]] | None = None,
        aws: AwsClients | None = None,
        unavailable: Callable[[], str | None] | None = None,
    ) -> None:
        self._environments, self._aws = environments or {}, aws
        self._routes = [(r, _path_regex(r.path)) for r in routes]
        # API Gateway prefers literal segments to {params}: /v1/llms/test before /v1/llms/{id}.
        self._paths = sorted(
            {r.path: regex for r, regex in self._routes}.items(), key=lambda item: _specificity(item[0])
        )
        self._method_responses = method_responses or {}
        self._request_log = request_log
        self._on_shutdown = on_shutdown or []
        self._on_startup = on_startup or []
        self._functions: dict[str, LocalFunction] = {}
        for r in routes:
            self.function(r.function, r.module, r.attribute)
        self._authorizer = authorizer
        self._responses = gateway_responses
        self._stage = stage
        self._streaming = streaming_apps or {}
        self._usage_plan = usage_plan
        self._response_headers = response_headers or {}
        #: Why the stack cannot serve at all (a child it needs has exited), or None.
        self._unavailable = unavailable or (lambda: None)

    def function(self, name: str, module: str, attribute: str) -> LocalFunction:
        """The one in-process instance of a function (shared by its API routes and queues)."""
        if name not in self._functions:
            self._functions[name] = LocalFunction(
                name, module, attribute, self._environments.get(name), self._aws
            )
        return self._functions[name]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    for hook in self._on_startup:  # the stream app's init (as before its readiness check)
                        await hook()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for hook in self._on_shutdown:
                        with contextlib.suppress(Exception):
                            await hook()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if self._request_log is None:
            await self._route(scope, receive, send, {})
            return
        seen: dict[str, Any] = {}
        watched_send, watched_receive = _watch(scope, send, receive, seen)
        try:
            await self._route(scope, watched_receive, watched_send, seen)
        finally:
            self._request_log(request_line(scope, seen))

    async def _route(self, scope: Scope, receive: Receive, send: Send, seen: dict[str, Any]) -> None:
        reason = self._unavailable()
        if reason is not None:
            await _unavailable_response(reason)(scope, receive, send)
            return
        path_match = self._match_path(scope["path"])
        route = self._match_method(path_match[0], scope["method"]) if path_match else None
        if path_match is not None and route is None and path_match[0] in self._method_responses:
            await _mock_response(self._method_responses[path_match[0]])(scope, receive, send)
            return
        if path_match is None or route is None:
            await _gateway_response(self._responses, "MISSING_AUTHENTICATION_TOKEN", 403)(
                scope, receive, send
            )
            return
        path_params = path_match[1]
        if route.streaming and route.path in self._streaming:
            seen["streaming"] = True
            await self._streaming[route.path](scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        response = await self._invoke(route, path_params, request, body, seen)
        await response(scope, receive, send)

    def _match_path(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The API resource the path belongs to, whatever the method. API Gateway routes ``/lab/``
        to the ``/lab`` resource (the event keeps the slash)."""
        candidates = [path, path.rstrip("/")] if len(path) > 1 and path.endswith("/") else [path]
        for candidate in candidates:
            for resource, regex in self._paths:
                m = regex.match(candidate)
                if m:
                    return resource, m.groupdict()
        return None

    def _match_method(self, resource: str, method: str) -> Route | None:
        """The resource's route for this method; an ``ANY`` route only when no exact one exists."""
        candidates = [r for r, _ in self._routes if r.path == resource]
        exact = next((r for r in candidates if r.method == method), None)
        return exact or next((r for r in candidates if r.method == "ANY"), None)

    async def _invoke(
        self, route: Route, path_params: dict[str, str], request: Request, body: bytes, seen: dict[str, Any]
    ) -> Response:
        if len(body) > MAX_API_PAYLOAD:
            return _gateway_response(self._responses, "REQUEST_TOO_LARGE", 413)
        event = self._proxy_event(route, path_params, request, body)
        usage_key: str | None = None
        if route.authorized and self._authorizer is not None:
            authorized = await self._authorize(route, event)
            if isinstance(authorized, Response):
                return authorized
            usage_key = authorized.usage_key
            seen["account"] = event["requestContext"]["authorizer"].get("accountId")
        if route.metered and self._usage_plan is not None:
            refusal = self._usage_plan.admit(usage_key, f"{route.path}/{route.method}")
            if refusal is not None:
                return self._refusal(refusal.gateway_response, refusal.retry_after_s)
        function = self._functions[route.function]
        try:
            result = await anyio.to_thread.run_sync(function.invoke, event)
        except Exception:
            return _gateway_response(self._responses, "DEFAULT_5XX", 502)
        return _http_response(result)

    def _refusal(self, name: str, retry_after_s: float | None = None) -> Response:
        status = {"INVALID_API_KEY": 403, "THROTTLED": 429}.get(name, 400)
        headers = dict(self._response_headers.get(name, {}))
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(min(retry_after_s, 86_400))))
        return _gateway_response(self._responses, name, status, headers)

    async def _authorize(self, route: Route, event: dict[str, Any]) -> Authorized | Response:
        """Every request asks the authorizer: no result cache, unlike API Gateway's (the template's
        ``ReauthorizeEvery``), so a revoked API key is refused on its very next request locally.
        The authorizer is one GetItem on loopback; exactness is worth that millisecond here."""
        try:
            if not single_header(AUTHORIZATION, event["headers"], event["multiValueHeaders"]):
                return _gateway_response(self._responses, "UNAUTHORIZED", 401)
        except AmbiguousCredentials:
            pass  # API Gateway still asks the authorizer, which refuses several values
        try:
            authorized = await anyio.to_thread.run_sync(self._call_authorizer, route, event)
        except AuthorizerFailed:
            # API Gateway answers an authorizer that failed (rather than refused) with a 500.
            return _gateway_response(self._responses, "DEFAULT_5XX", 500)
        if authorized is None:
            return _gateway_response(self._responses, "UNAUTHORIZED", 401)
        event["requestContext"]["authorizer"] = authorized.context
        return authorized

    def _call_authorizer(self, route: Route, event: dict[str, Any]) -> Authorized | None:
        assert self._authorizer is not None
        method_arn = (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{self._stage}/{route.method}{event['path']}"
        )
        auth_event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            "resource": route.path,
            "path": event["path"],
            "httpMethod": route.method,
            "headers": event["headers"],
            "multiValueHeaders": event["multiValueHeaders"],
            "queryStringParameters": event["queryStringParameters"],
            "multiValueQueryStringParameters": event["multiValueQueryStringParameters"],
            "pathParameters": event["pathParameters"],
            "stageVariables": None,
            "requestContext": event["requestContext"],
        }
        try:
            policy = self._authorizer.invoke(auth_event)
        except Exception as exc:
            # A Lambda authorizer refuses by raising "Unauthorized" (API Gateway's 401); anything
            # else it raises is a failure, which API Gateway answers with a 500.
            if str(exc) == "Unauthorized":
                return None
            raise AuthorizerFailed from exc
        statements = policy.get("policyDocument", {}).get("Statement", [])
        if not any(s.get("Effect") == "Allow" for s in statements):
            return None
        context = {**(policy.get("context") or {}), "principalId": policy.get("principalId")}
        return Authorized(context=context, usage_key=policy.get("usageIdentifierKey"))

    def _proxy_event(
        self, route: Route, path_params: dict[str, str], request: Request, body: bytes
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            name = "-".join(part.capitalize() for part in key.split("-"))
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query[key] = value
            multi_query.setdefault(key, []).append(value)
        text_body: str | None
        is_b64 = False
        if not body:
            text_body = None
        else:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body, is_b64 = base64.b64encode(body).decode("ascii"), True
        request_id = str(uuid.uuid4())
        path = request.scope["path"]  # not request.url: urlsplit drops tabs and CR/LF
        client = request.client.host if request.client else "127.0.0.1"
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": API_ID,
                "domainName": request.url.netloc,
                "httpMethod": request.method,
                "path": f"/{self._stage}{path}",
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                "requestTimeEpoch": int(time.time() * 1000),
                "resourcePath": route.path,
                "stage": self._stage,
                "identity": {"sourceIp": client, "userAgent": request.headers.get("user-agent")},
            },
            "body": text_body,
            "isBase64Encoded": is_b64,
        }


class AuthorizerFailed(Exception):
    """The authorizer raised (its store is down, a bug): not the same as refusing the key."""


def _unavailable_response(reason: str) -> Response:
    body = {"error": {"code": "local_stack_unavailable", "message": reason}}
    return Response(json.dumps(body), status_code=503, media_type="application/json")


def _mock_response(answer: MockResponse) -> Response:
    return Response(
        answer.body, status_code=answer.status, headers=answer.headers, media_type="application/json"
    )


def _specificity(path: str) -> tuple[int, ...]:
    """Sort key: literal segments before ``{param}`` ones, segment by segment, as API Gateway does."""
    return tuple(1 if segment.startswith("{") else 0 for segment in path.strip("/").split("/"))


# ---------------------------------------------------------------------------------------------
# The dev terminal's request log
# ---------------------------------------------------------------------------------------------

_LOG_TAIL_BYTES = 2048
_ERROR_CODE = re.compile(rb'"code"\s*:\s*"([a-z0-9_]{1,64})"')


def _watch(scope: Scope, send: Send, receive: Receive, seen: dict[str, Any]) -> tuple[Send, Receive]:
    """Wrap send/receive to note what the log line needs: status, first body byte, the body's
    tail (where an error code or ``[DONE]`` sits) and whether the client went away."""
    seen["started"] = time.monotonic()

    async def watched_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            content_type = dict(message.get("headers") or []).get(b"content-type", b"")
            seen["sse"] = content_type.startswith(b"text/event-stream")
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if chunk and "first_body" not in seen:
                seen["first_body"] = time.monotonic()
            seen["tail"] = (seen.get("tail", b"") + chunk)[-_LOG_TAIL_BYTES:]
            seen["done"] = not message.get("more_body", False)
        await send(message)

    async def watched_receive() -> Message:
        message = await receive()
        if message["type"] == "http.disconnect" and "status" in seen and not seen.get("done"):
            seen["disconnected"] = True
        return message

    return watched_send, watched_receive


def request_line(scope: Scope, seen: dict[str, Any]) -> str:
    """``12:03:04 POST /v1/chat/completions 200 acct_… 1.52 s ttft 210 ms ok``: no query string
    (it could carry a key), no header, no body."""
    status = seen.get("status", 0)
    elapsed = time.monotonic() - seen["started"]
    parts = [time.strftime("%H:%M:%S"), scope["method"], scope["path"], str(status)]
    tail: bytes = seen.get("tail", b"")
    if status >= 400:
        code = _ERROR_CODE.search(tail)
        parts.append(code.group(1).decode() if code else "-")
    account = seen.get("account") or (
        _session_account(scope) if seen.get("streaming") and status == 200 else None
    )
    parts.append(account or "-")
    parts.append(_duration(elapsed))
    if seen.get("streaming") and status == 200:
        if "first_body" in seen:
            parts.append(f"ttft {_duration(seen['first_body'] - seen['started'])}")
        parts.append(_stream_outcome(tail, seen))
    return " ".join(parts)


def _stream_outcome(tail: bytes, seen: dict[str, Any]) -> str:
    if not seen.get("sse"):
        return "ok"  # stream: false, one JSON object
    if b"data: [DONE]" in tail:
        return "ok"
    last_event = tail.rsplit(b"data: ", 1)[-1]
    if last_event.startswith(b'{"error"'):
        code = _ERROR_CODE.search(last_event)
        return f"error {code.group(1).decode()}" if code else "error"
    if seen.get("disconnected"):
        return "client disconnected"
    return "ended without [DONE]"


def _session_account(scope: Scope) -> str | None:
    """The ``sub`` of the session token the stream app has just accepted (so it is genuine)."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            token = value.decode("latin-1").partition(" ")[2].strip()
            try:
                payload = token.split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            except (IndexError, ValueError):
                return None
            return str(claims.get("sub")) if isinstance(claims, dict) and claims.get("sub") else None
    return None


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _http_response(result: dict[str, Any]) -> Response:
    status = int(result.get("statusCode", 502))
    body_text = result.get("body") or ""
    body = base64.b64decode(body_text) if result.get("isBase64Encoded") else body_text.encode("utf-8")
    headers: dict[str, str] = {}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(values)
    headers.update(result.get("headers") or {})
    headers.pop("Content-Length", None)
    headers.pop("content-length", None)
    media_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return Response(body, status_code=status, headers=headers, media_type=media_type)
