"""Provider wire shapes: stream chunks, non-stream bodies and error bodies as the real APIs send them."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from starlette.responses import Response

from .completion import Completion, split_fragments, thought_words

Spec = Literal["openai", "azure", "gemini", "anthropic"]
#: How an OpenAI-compatible reasoning fake streams its thoughts (DeepSeek/vLLM, Groq parsed, Groq raw).
ThoughtForm = Literal["reasoning_content", "reasoning", "think"]

_AZURE_SAFE = {"filtered": False, "severity": "safe"}
AZURE_CONTENT_FILTER = {
    "hate": _AZURE_SAFE,
    "self_harm": _AZURE_SAFE,
    "sexual": _AZURE_SAFE,
    "violence": _AZURE_SAFE,
}
AZURE_PROMPT_FILTER = {
    **AZURE_CONTENT_FILTER,
    "jailbreak": {"filtered": False, "detected": False},
}


def dumps(spec: Spec, payload: Any) -> bytes:
    """Azure sorts keys; Gemini puts a space after colons only; OpenAI is compact."""
    if spec == "azure":
        return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    if spec == "gemini":
        return json.dumps(payload, separators=(",", ": ")).encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# --- OpenAI and Azure chat.completion.chunk streams -------------------------------------------


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

    def chunk(delta: dict[str, Any], finish: str | None = None, filtered: bool = False) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if azure:
            choice["content_filter_results"] = AZURE_CONTENT_FILTER if filtered else {}
        body: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
        }
        if include_usage:
            body["usage"] = None
        return body

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
    call = completion.tool_call
    if call is not None:
        first_call = {
            "index": 0,
            "id": "call_" + chunk_id[-24:],
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(
            chunk({"role": "assistant", "content": None, "tool_calls": [first_call], "refusal": None})
        )
        for fragment in split_fragments(call.arguments_json):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
    else:
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        chunks.extend(chunk(delta) for delta in _thought_deltas(thoughts))
        for word in completion.words:
            chunks.append(chunk({"content": word}, filtered=True))
    chunks.append(chunk({}, completion.finish))
    if include_usage:
        usage_chunk = chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = openai_usage(completion)
        if azure:
            usage_chunk["choices"] = []
        chunks.append(usage_chunk)
    return chunks


def _thought_deltas(form: ThoughtForm | None) -> list[dict[str, Any]]:
    if form is None:
        return []
    words = thought_words()
    if form == "think":
        return [{"content": "<think>"}, *({"content": w} for w in words), {"content": "</think>\n\n"}]
    return [{form: w} for w in words]


def openai_usage(completion: Completion) -> dict[str, Any]:
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


def openai_completion_body(
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
        "usage": openai_usage(completion),
    }
    if azure:
        choice["content_filter_results"] = AZURE_CONTENT_FILTER
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": AZURE_PROMPT_FILTER}]
    return body


# --- Gemini GenerateContentResponse streams --------------------------------------------------

_GEMINI_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def gemini_chunks(
    completion: Completion, *, model: str, response_id: str, thoughts: bool = False
) -> list[dict[str, Any]]:
    """Thought summaries first (``includeThoughts``), then one event per word (finishReason on the
    last), or a whole functionCall then an empty final text."""

    def event(parts: list[dict[str, Any]], produced: int, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if last:
            candidate["finishReason"] = _GEMINI_FINISH[completion.finish]
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": gemini_usage(completion.prompt_tokens, produced),
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


def gemini_usage(prompt_tokens: int, produced: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": produced,
        "totalTokenCount": prompt_tokens + produced,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }


def gemini_generate_body(completion: Completion, *, model: str, response_id: str) -> dict[str, Any]:
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
                "finishReason": _GEMINI_FINISH[completion.finish],
                "index": 0,
            }
        ],
        "usageMetadata": gemini_usage(completion.prompt_tokens, completion.completion_tokens),
        "modelVersion": model,
        "responseId": response_id,
    }


# --- Error bodies ------------------------------------------------------------------------------

_OPENAI_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to access this resource.", None),
    404: ("invalid_request_error", "The requested resource does not exist.", None),
    429: (
        "requests",
        "Rate limit reached for requests. Please try again in 1s.",
        "rate_limit_exceeded",
    ),
    500: (
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
        None,
    ),
    503: ("server_error", "The engine is currently overloaded, please try again later.", None),
}

_AZURE_STATUS_ERRORS: dict[int, tuple[str, str]] = {
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

_GEMINI_STATUS_NAMES = {
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

AZURE_401_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)


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


def azure_error(http_status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=http_status,
        media_type="application/json",
        headers={"apim-request-id": str(uuid.uuid4())},
    )


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


def auth_error(spec: Spec, presented: str | None, *, echo: bool = False) -> Response:
    """Each provider's answer to a missing or wrong key; ``echo`` leaks the key (secret-leak tests)."""
    if spec == "anthropic":
        from . import anthropic

        return anthropic.auth_error(presented, echo=echo)
    shown = presented or ""
    if spec == "openai":
        if not presented and not echo:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
                "blank username) if you're accessing the API from your browser and are prompted for a "
                "username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        detail = f": {shown}" if echo else ""
        return openai_error(
            401,
            f"Incorrect API key provided{detail}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    if spec == "azure":
        message = AZURE_401_MESSAGE + (f" Key presented: {shown}" if echo else "")
        return azure_error(401, "401", message)
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
            {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": f"Invalid API key: {shown}"}
        )
    return gemini_error(400, text, "INVALID_ARGUMENT", details)


def not_found_error(spec: Spec, model: str, api_version: str = "v1beta") -> Response:
    if spec == "anthropic":
        from . import anthropic

        return anthropic.not_found_error(model)
    if spec == "openai":
        return openai_error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if spec == "azure":
        return azure_error(
            404,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the deployment within the "
            "last 5 minutes, please wait a moment and try again.",
        )
    return gemini_error(
        404,
        f"models/{model} is not found for API version {api_version}, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their supported methods.",
        "NOT_FOUND",
    )


def bad_request_error(spec: Spec, message: str, param: str | None = None) -> Response:
    if spec == "openai":
        return openai_error(400, message, param=param, code=None)
    if spec == "azure":
        return azure_error(400, "BadRequest", message, type=None, param=param, status=400)
    return gemini_error(400, message, "INVALID_ARGUMENT")


def context_length_error(spec: Spec) -> Response:
    """A prompt over the model's context, as each provider says it (400)."""
    if spec == "anthropic":
        from . import anthropic

        message = "prompt is too long: 215000 tokens > 200000 maximum"
        return anthropic.anthropic_error(400, "invalid_request_error", message)
    if spec == "gemini":
        message = "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
        return gemini_error(400, message, "INVALID_ARGUMENT")
    message = (
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "130000 tokens. Please reduce the length of the messages."
    )
    return openai_error(400, message, param="messages", code="context_length_exceeded")


def content_filter_error(spec: Spec) -> Response:
    """Azure's (and OpenAI-compatible) content-filter refusal of a prompt (400); Gemini blocks a
    prompt inside a 200 stream instead (``content_filter_block``)."""
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


def gemini_prompt_blocked() -> bytes:
    """Gemini's answer to a blocked prompt: one event with ``promptFeedback.blockReason``, no candidates."""
    payload = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "modelVersion": "fake"}
    return b"data: " + dumps("gemini", payload) + b"\r\n\r\n"


def status_error(
    spec: Spec, status: int, model: str, presented_key: str | None, retry_after: str | None = None
) -> Response:
    """The error a ``status-NNN[:SECONDS]`` fault returns, shaped like the provider's own for that
    status; a 429 says ``Retry-After: 1`` unless SECONDS says otherwise (``none``: no header)."""
    if spec == "anthropic":
        from . import anthropic

        return anthropic.status_error(status, model, presented_key)
    seconds = retry_after or ("1" if status == 429 else "none")
    retry = {} if seconds == "none" else {"retry-after": seconds}
    if status == 401:
        return auth_error(spec, presented_key or "wrong-key")
    if status == 404:
        return not_found_error(spec, model)
    response: Response
    if spec == "openai":
        type_, message, code = _OPENAI_STATUS_ERRORS.get(status, ("server_error", f"HTTP {status}", None))
        response = openai_error(status, message, type_=type_, code=code)
    elif spec == "azure":
        code_text, message = _AZURE_STATUS_ERRORS.get(status, (str(status), f"HTTP {status}"))
        response = azure_error(status, code_text, message)
    else:
        name, message = _GEMINI_STATUS_NAMES.get(status, ("UNKNOWN", f"HTTP {status}"))
        response = gemini_error(status, message, name)
    response.headers.update(retry)
    return response


def mid_stream_error(spec: Spec) -> bytes:
    """OpenAI/Azure: an in-band ``data: {"error":…}`` event; Gemini: bare pretty JSON, no ``data:``."""
    if spec == "gemini":
        error = {
            "error": {
                "code": 500,
                "message": "An internal error has occurred. Please retry.",
                "status": "INTERNAL",
            }
        }
        return (json.dumps(error, indent=2) + "\n").encode()
    payload = {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    }
    return b"data: " + dumps(spec, payload) + b"\n\n"
