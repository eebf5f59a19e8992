"""The fake's own routes (``/_fake/…``: observations, scripted faults, reset, health) and its
answer to unknown paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import UnknownFaultError, parse_fault_header
from .provider import FakeProvider
from .specs import azure, gemini, openai


def routes(provider: FakeProvider) -> list[Route]:
    state = provider.state

    async def fake_requests(request: Request) -> Response:
        path = request.query_params.get("path")
        entries = [e for e in state.requests() if not path or e.get("path") == path]
        return JSONResponse({"requests": entries})

    async def fake_connections(request: Request) -> Response:
        return JSONResponse(state.connections())

    async def fake_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def fake_faults(request: Request) -> Response:
        return await scripted_faults(provider, request)

    async def fake_health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def redirect_target(request: Request) -> Response:
        """Where ``redirect`` points: a hit here means a client followed a redirect it should not have."""
        provider.record(request, None, "", None, None)
        return JSONResponse({"redirected": True})

    return [
        Route("/_fake/requests", fake_requests, methods=["GET"]),
        Route("/_fake/connections", fake_connections, methods=["GET"]),
        Route("/_fake/reset", fake_reset, methods=["POST"]),
        Route("/_fake/faults", fake_faults, methods=["GET", "PUT", "DELETE"]),
        Route("/_fake/health", fake_health, methods=["GET"]),
        Route("/_fake/redirect-target/{rest:path}", redirect_target, methods=["GET", "POST"]),
    ]


async def scripted_faults(provider: FakeProvider, request: Request) -> Response:
    """``PUT {"fault": "status-500", "model": "fake-model", "ratio": 0.3}`` scripts a fault for a
    fraction of a model's requests (model defaults to "*", ratio to 1; ``when``/``unless``: only
    requests whose body contains / lacks that text; ``at``: only requests whose URL contains it,
    e.g. one of an LLM's URLs told apart by a query parameter); ``DELETE ?model=M`` (or without ``model``:
    all) removes it; ``GET`` lists them."""
    state = provider.state
    if request.method == "PUT":
        body = await request.json()
        spec, model = str(body.get("fault") or ""), str(body.get("model") or "*")
        try:
            parse_fault_header(spec)
            ratio = float(body.get("ratio", 1.0))
        except (UnknownFaultError, TypeError, ValueError) as exc:
            return JSONResponse({"error": {"message": str(exc), "type": "fake_provider_error"}}, 400)
        when, unless, at = body.get("when"), body.get("unless"), body.get("at")
        state.script_fault(
            model, spec, ratio, when=when and str(when), unless=unless and str(unless), at=at and str(at)
        )
    elif request.method == "DELETE":
        models = [request.query_params["model"]] if "model" in request.query_params else None
        for model in models or list(state.scripted_faults()):
            state.script_fault(model, None)
    return JSONResponse({"faults": state.scripted_faults()})


def not_found_handler(provider: FakeProvider) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Unknown paths answer in the shape of the provider whose prefix they use, like the real hosts."""

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        path = request.url.path
        if path.startswith("/openai/"):
            provider.record(request, azure.SPEC.name, "", None, None)
            return azure.resource_not_found()
        if path.startswith("/v1beta"):
            provider.record(request, gemini.SPEC.name, "", None, None)
            return gemini.method_not_found()
        provider.record(request, openai.SPEC.name, "", None, None)
        return openai.openai_error(status, f"Invalid URL ({request.method} {path})")

    return not_found
