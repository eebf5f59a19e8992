"""A local REST API Gateway: HTTP in, the same proxy events (and authorizer calls) AWS would send.

Each function runs in-process, one invocation at a time per function (like one warm container),
so the handlers and their module-level state behave as they do in Lambda.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from llm_gateway_cli.local.template import ACCOUNT_ID, REGION, Route

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
    """One function: its handler, imported on first use, invoked one event at a time."""

    def __init__(self, name: str, module: str, attribute: str) -> None:
        self.name, self.module, self.attribute = name, module, attribute
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            if self._handler is None:
                self._handler = getattr(importlib.import_module(self.module), self.attribute)
            return self._handler(event, LambdaContext(self.name))


def _path_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


def _gateway_response(responses: dict[str, tuple[int, str]], name: str, default_status: int) -> Response:
    status, body = responses.get(name, (default_status, '{"message": $context.error.messageString}'))
    # API Gateway fills $context.error.messageString with a quoted JSON string.
    body = body.replace("$context.error.messageString", json.dumps(_GATEWAY_MESSAGES.get(name, "Error")))
    return Response(body, status_code=status, media_type="application/json")


_GATEWAY_MESSAGES = {
    "DEFAULT_5XX": "Internal server error",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "UNAUTHORIZED": "Unauthorized",
}


class FrontDoor:
    """ASGI app; streaming routes are handed straight to their ASGI app, with no extra hop."""

    def __init__(
        self,
        routes: list[Route],
        authorizer: LocalFunction | None,
        gateway_responses: dict[str, tuple[int, str]],
        stage: str,
        streaming_apps: dict[str, ASGIApp] | None = None,
    ) -> None:
        self._routes = [(r, _path_regex(r.path)) for r in routes]
        self._functions: dict[str, LocalFunction] = {}
        for r in routes:
            self._functions.setdefault(r.function, LocalFunction(r.function, r.module, r.attribute))
        self._authorizer = authorizer
        self._responses = gateway_responses
        self._stage = stage
        self._streaming = streaming_apps or {}

    def function(self, name: str, module: str, attribute: str) -> LocalFunction:
        """The one in-process instance of a function (shared by its API routes and queues)."""
        return self._functions.setdefault(name, LocalFunction(name, module, attribute))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        match = self._match(scope["method"], scope["path"])
        if match is None:
            await _gateway_response(self._responses, "MISSING_AUTHENTICATION_TOKEN", 403)(
                scope, receive, send
            )
            return
        route, path_params = match
        if route.streaming and route.path in self._streaming:
            await self._streaming[route.path](scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        response = await self._invoke(route, path_params, request, body)
        await response(scope, receive, send)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        # API Gateway routes ``/lab/`` to the ``/lab`` resource (the event keeps the slash).
        candidates = [path, path.rstrip("/")] if len(path) > 1 and path.endswith("/") else [path]
        for candidate in candidates:
            for route, regex in self._routes:
                m = regex.match(candidate)
                if m and route.method in (method, "ANY"):
                    return route, m.groupdict()
        return None

    async def _invoke(
        self, route: Route, path_params: dict[str, str], request: Request, body: bytes
    ) -> Response:
        if len(body) > MAX_API_PAYLOAD:
            return _gateway_response(self._responses, "REQUEST_TOO_LARGE", 413)
        event = self._proxy_event(route, path_params, request, body)
        if route.authorized and self._authorizer is not None:
            denial = await self._authorize(route, request, event)
            if denial is not None:
                return denial
        function = self._functions[route.function]
        try:
            result = await anyio.to_thread.run_sync(function.invoke, event)
        except Exception:
            return _gateway_response(self._responses, "DEFAULT_5XX", 502)
        return _http_response(result)

    async def _authorize(self, route: Route, request: Request, event: dict[str, Any]) -> Response | None:
        """Every request asks the authorizer: no result cache, unlike API Gateway's (the template's
        ``ReauthorizeEvery``), so a revoked API key is refused on its very next request locally.
        The authorizer is one GetItem on loopback; exactness is worth that millisecond here."""
        token = request.headers.get("authorization")
        if not token:
            return _gateway_response(self._responses, "UNAUTHORIZED", 401)
        context = await anyio.to_thread.run_sync(self._call_authorizer, route, event)
        if context is None:
            return _gateway_response(self._responses, "UNAUTHORIZED", 401)
        event["requestContext"]["authorizer"] = context
        return None

    def _call_authorizer(self, route: Route, event: dict[str, Any]) -> dict[str, Any] | None:
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
        except Exception:
            return None
        statements = policy.get("policyDocument", {}).get("Statement", [])
        if not any(s.get("Effect") == "Allow" for s in statements):
            return None
        return {**(policy.get("context") or {}), "principalId": policy.get("principalId")}

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
