"""Azure OpenAI: the classic ``POST /openai/deployments/{deployment}/chat/completions?api-version=…``
and the v1 ``POST /openai/v1/chat/completions`` and ``GET /openai/v1/models`` (``api-key`` or
Bearer), with Azure's error bodies; the chat itself is OpenAI's flow (``openai.chat``)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import FakeProviderConfig
from ..provider import FakeProvider
from ..request_knobs import bearer
from ..wire import Spec, status_error_shaped
from . import openai

_API_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
# stream_options.include_usage exists on Azure classic only from this api-version on.
_USAGE_SINCE = "2024-09-01"
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is invalid."),
    403: ("403", "Public access is disabled. Please configure private endpoint."),
    404: ("404", "Resource not found"),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded the call "
        "rate limit of your current pricing tier. Please retry after 1 second.",
    ),
    500: ("InternalServerError", "The service encountered an internal error. Please retry."),
    503: ("ServiceUnavailable", "The service is temporarily unable to process your request. Please retry."),
}
AZURE_401_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)


def dumps(payload: Any) -> bytes:
    """Azure sorts keys."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def azure_error(http_status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=http_status,
        media_type="application/json",
        headers={"apim-request-id": str(uuid.uuid4())},
    )


def auth_error(presented: str | None, echo: bool = False) -> Response:
    message = AZURE_401_MESSAGE + (f" Key presented: {presented or ''}" if echo else "")
    return azure_error(401, "401", message)


def not_found_error(model: str) -> Response:
    return azure_error(
        404,
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within the "
        "last 5 minutes, please wait a moment and try again.",
    )


def resource_not_found() -> Response:
    return azure_error(404, "404", "Resource not found")


def _status_body(status: int) -> Response:
    code_text, message = _STATUS_ERRORS.get(status, (str(status), f"HTTP {status}"))
    return azure_error(status, code_text, message)


def status_error(status: int, model: str, presented: str | None, retry_after: str | None) -> Response:
    return status_error_shaped(SPEC, status, model, presented, retry_after, _status_body)


def bad_request(message: str, param: str | None = None) -> Response:
    return azure_error(400, "BadRequest", message, type=None, param=param, status=400)


def success_headers() -> dict[str, str]:
    return {"apim-request-id": str(uuid.uuid4()), "x-request-id": str(uuid.uuid4()), "x-ms-region": "Fake"}


SPEC = Spec(
    name="azure",
    dumps=dumps,
    auth_error=auth_error,
    not_found=not_found_error,
    status_error=status_error,
    context_length_error=openai.context_length_error,
    content_filter_error=openai.content_filter_error,
    success_headers=success_headers,
)


def azure_key(request: Request) -> str | None:
    return request.headers.get("api-key") or bearer(request)


def _classic_version_error(request: Request) -> Response | None:
    api_version = request.query_params.get("api-version")
    if not api_version:
        return resource_not_found()
    if not _API_VERSION_RE.fullmatch(api_version):
        return azure_error(400, "BadRequest", "API version not supported")
    return None


V1_CHAT = openai.ChatRoute(
    SPEC,
    "azure-v1",
    azure_key,
    FakeProviderConfig.knows_deployment,
    azure_fields=True,
    bad_request=bad_request,
)
CLASSIC_CHAT = openai.ChatRoute(
    SPEC,
    "azure-classic",
    azure_key,
    FakeProviderConfig.knows_deployment,
    azure_fields=True,
    deployment=lambda request: str(request.path_params["deployment"]),
    version_error=_classic_version_error,
    usage_since=_USAGE_SINCE,
    bad_request=bad_request,
)


def routes(provider: FakeProvider) -> list[Route]:
    async def classic_chat(request: Request) -> Response:
        return await openai.chat(provider, request, CLASSIC_CHAT)

    async def v1_chat(request: Request) -> Response:
        return await openai.chat(provider, request, V1_CHAT)

    async def models(request: Request) -> Response:
        _, early = await provider.gate(request, SPEC, "", azure_key(request), None)
        if early is not None:
            return early
        names = dict.fromkeys([*provider.config.deployments, *provider.config.models])
        data = [
            {"id": m, "object": "model", "created_at": 1_700_000_000, "status": "succeeded"} for m in names
        ]
        return JSONResponse({"object": "list", "data": data})

    return [
        Route("/openai/deployments/{deployment}/chat/completions", classic_chat, methods=["POST"]),
        Route("/openai/v1/chat/completions", v1_chat, methods=["POST"]),
        Route("/openai/v1/models", models, methods=["GET"]),
    ]
