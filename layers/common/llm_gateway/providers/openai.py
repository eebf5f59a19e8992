"""OpenAI Chat Completions: URL handling, request building, spec checks and the stream relay.

The checks judge the RAW response (status, headers, body bytes) against WIRE_FORMATS.md §0-§1,
because the customer's clients are SDKs that read raw bytes too. The Azure profile reuses all
of this with its documented tolerances (see ``azure_openai``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llm_gateway.models.chat import ChatRequest
from llm_gateway.models.llm import FORBIDDEN_HEADERS
from llm_gateway.models.report import Check, CheckCategory, CheckStatus
from llm_gateway.providers.request import UpstreamRequest
from llm_gateway.providers.sse import (
    SseEvent,
    SseLimitExceeded,
    SseObservations,
    SseParser,
    encode_data_event,
)

__all__ = [
    "DONE_EVENT",
    "FINISH_REASONS",
    "OPENAI_PROFILE",
    "EndpointUrlError",
    "OpenAiStreamRelay",
    "SpecProfile",
    "UpstreamError",
    "UpstreamRequest",
    "build_chat_body",
    "build_request",
    "chat_completions_url",
    "check_response",
    "classify_upstream_error",
    "conforms",
    "filter_extra_headers",
    "redact",
    "trim_evidence",
]

DONE_EVENT = b"data: [DONE]\n\n"
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
MAX_EVIDENCE_BYTES = 512

# Headers the customer's extra headers may never set: auth travels only in the secret, framing is ours.
#: What a customer's extra headers may never set (the registry refuses them too), plus ``accept``,
#: which the relay owns because the stream's framing depends on it.
_RESERVED_HEADERS = FORBIDDEN_HEADERS | {"accept"}


class EndpointUrlError(ValueError):
    """The configured URL cannot be turned into a chat-completions URL; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def chat_completions_url(url: str) -> str:
    """Accept the full ``…/chat/completions`` URL or a base ending in ``/v1`` (as the SDKs take it)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise EndpointUrlError("the URL must be absolute, e.g. https://api.openai.com/v1/chat/completions")
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        pass
    elif path.endswith("/v1"):
        path += "/chat/completions"
    else:
        raise EndpointUrlError(
            "the URL must be the full chat-completions URL (…/v1/chat/completions) "
            "or the API base ending in /v1"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def filter_extra_headers(extra_headers: Mapping[str, str] | None) -> dict[str, str]:
    """Drop anything that could override auth or framing: defence in depth behind the API model."""
    if not extra_headers:
        return {}
    kept: dict[str, str] = {}
    for name, value in extra_headers.items():
        if name.lower() in _RESERVED_HEADERS:
            continue
        if any(ch in name or ch in value for ch in "\r\n\x00"):
            continue
        kept[name] = value
    return kept


def build_chat_body(
    chat: ChatRequest,
    *,
    model: str | None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    include_stream_options: bool = True,
) -> dict[str, Any]:
    """The upstream JSON body. ``stream`` is always true.

    The endpoint's configured ``temperature`` is a default the request may override; its
    ``max_tokens`` is a cap (the LLM owner pays), so the smaller of the two wins.
    """
    body: dict[str, Any] = {}
    if model is not None:
        body["model"] = model
    body["messages"] = [message.model_dump(exclude_none=True) for message in chat.messages]
    body["stream"] = True
    if include_stream_options and chat.stream_options:
        body["stream_options"] = chat.stream_options
    effective_temperature = chat.temperature if chat.temperature is not None else temperature
    if effective_temperature is not None:
        body["temperature"] = effective_temperature
    if chat.max_completion_tokens is not None:
        body["max_completion_tokens"] = _cap(chat.max_completion_tokens, max_tokens)
    elif chat.max_tokens is not None or max_tokens is not None:
        body["max_tokens"] = _cap(chat.max_tokens, max_tokens)
    if chat.tools:
        body["tools"] = chat.tools
        if chat.tool_choice is not None:
            body["tool_choice"] = chat.tool_choice
    return body


def _cap(requested: int | None, limit: int | None) -> int:
    values = [v for v in (requested, limit) if v is not None]
    return min(values)


def encode_json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_request(
    *,
    url: str,
    model_name: str,
    api_key: str,
    chat: ChatRequest,
    temperature: float | None = None,
    max_tokens: int | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> UpstreamRequest:
    """An OpenAI streaming request: ``Authorization: Bearer``, body with ``stream: true``."""
    headers = filter_extra_headers(extra_headers)
    headers.update(
        {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
    )
    body = build_chat_body(chat, model=model_name, temperature=temperature, max_tokens=max_tokens)
    return UpstreamRequest("POST", chat_completions_url(url), headers, encode_json(body))


# ---------------------------------------------------------------------------------------------
# Errors before the stream
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """An upstream error, mapped to the gateway's code and the report's category."""

    code: str  # upstream_unauthorized | upstream_model_not_found | upstream_rate_limited | …
    category: CheckCategory
    status: int
    message: str  # the upstream's own message (redacted, trimmed) or a description
    upstream_code: str | None = None
    retry_after_s: float | None = None
    hint: str = ""


_MODEL_NOT_FOUND_CODES = frozenset({"model_not_found", "deploymentnotfound"})
_KEY_LIKE = re.compile(
    r"(?i)(sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{10,}|bearer\s+[A-Za-z0-9._~+/\-=]{6,})"
)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove known secrets and anything shaped like an API key (upstreams echo masked keys)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


def trim_evidence(text: str, secrets: Sequence[str] = (), limit: int = MAX_EVIDENCE_BYTES) -> str:
    """Evidence is redacted and at most ``limit`` UTF-8 bytes."""
    clean = redact(text, secrets)
    raw = clean.encode("utf-8")
    if len(raw) <= limit:
        return clean
    return raw[: limit - 3].decode("utf-8", "ignore") + "…"


def _header_map(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): str(value) for name, value in items}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def _error_object(body: bytes) -> dict[str, Any] | None:
    """``body["error"]`` when the body is a JSON object with an ``error`` object, else None."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            return error
    return None


def classify_upstream_error(
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    *,
    secrets: Sequence[str] = (),
) -> UpstreamError:
    """Map a non-2xx answer (or an in-band error object) to a gateway code and a check category."""
    header_map = _header_map(headers)
    error = _error_object(body) or {}
    raw_code = error.get("code")
    upstream_code = str(raw_code) if raw_code is not None else None
    inner = error.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    message_text = error.get("message") if isinstance(error.get("message"), str) else ""
    message = trim_evidence(str(message_text), secrets, 300) if message_text else f"HTTP {status}"
    codes = {c.lower() for c in (upstream_code, inner_code, error.get("type")) if isinstance(c, str)}
    retry = _retry_after(header_map)

    def make(code: str, category: CheckCategory, hint: str) -> UpstreamError:
        return UpstreamError(code, category, status, message, upstream_code, retry, hint)

    if status in (401, 403):
        return make(
            "upstream_unauthorized",
            CheckCategory.AUTH,
            "The endpoint rejected the API key. Check the secret (and, on Azure, that the key belongs "
            "to this resource and region).",
        )
    if status == 404:
        text = str(message_text).lower()
        if codes & _MODEL_NOT_FOUND_CODES or (
            ("model" in text or "deployment" in text) and ("not exist" in text or "not found" in text)
        ):
            return make(
                "upstream_model_not_found",
                CheckCategory.MODEL,
                "The model (or Azure deployment) name is unknown to this endpoint. Check modelName / "
                "deploymentName and that the key has access to it.",
            )
        return make(
            "upstream_bad_request",
            CheckCategory.ENDPOINT,
            "Nothing answers at this path. Use the full chat-completions URL (…/v1/chat/completions) "
            "or the base the provider documents.",
        )
    if status == 405:
        return make(
            "upstream_bad_request",
            CheckCategory.ENDPOINT,
            "The URL does not accept POST. Point it at the chat-completions route, not a base page.",
        )
    if status == 429:
        quota = "insufficient_quota" in codes
        return make(
            "upstream_rate_limited",
            CheckCategory.AUTH if quota else CheckCategory.REQUEST,
            "The account behind this key has no quota left; add credit or raise the limit."
            if quota
            else "The endpoint is rate limiting this key. Retry later or raise the key's rate limit.",
        )
    if status == 408:
        return make(
            "upstream_timeout", CheckCategory.NETWORK, "The endpoint timed out; check that it is healthy."
        )
    if status >= 500:
        return make(
            "upstream_server_error",
            CheckCategory.ENDPOINT,
            "The endpoint failed with a server error. Check its health and logs, then validate again.",
        )
    if 300 <= status < 400:
        return make(
            "upstream_protocol_error",
            CheckCategory.ENDPOINT,
            "The endpoint redirects; redirects are never followed. Register the final URL.",
        )
    if "content_filter" in codes or "responsibleaipolicyviolation" in codes:
        hint = "The provider's content filter blocked the request; review the filter policy."
    else:
        hint = (
            "The endpoint rejected a well-formed chat-completions request. Check that it supports "
            "stream=true, the model name and parameters such as max_tokens and temperature."
        )
    return make("upstream_bad_request", CheckCategory.REQUEST, hint)


# ---------------------------------------------------------------------------------------------
# Spec checks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpecProfile:
    """Where the Azure profile differs from OpenAI's (WIRE_FORMATS.md §2.2-§2.3)."""

    name: str
    label: str
    azure: bool = False


OPENAI_PROFILE = SpecProfile("openai", "OpenAI")

_ORDER = (
    "http_status",
    "content_type",
    "error_body",
    "sse_framing",
    "sse_fields",
    "data_json",
    "chunk_schema",
    "chunk_consistency",
    "role_first",
    "inband_error",
    "finish_reason",
    "tool_call_deltas",
    "done_terminator",
)

_PASS_MESSAGES = {
    "http_status": "HTTP 200",
    "content_type": "Content-Type is text/event-stream",
    "error_body": "error body has the expected shape",
    "sse_framing": "well-formed SSE framing",
    "sse_fields": "data-only events (no event:/id:/retry: fields)",
    "data_json": "every data event is JSON or [DONE]",
    "chunk_schema": "every chunk matches chat.completion.chunk",
    "chunk_consistency": "id and created are the same on every chunk",
    "role_first": "the first chunk carries the assistant role",
    "inband_error": "no error event in the stream",
    "finish_reason": "exactly one valid finish_reason per choice",
    "tool_call_deltas": "tool-call deltas are well formed",
    "done_terminator": "the stream ends with data: [DONE]",
}

_CATEGORIES = {
    "http_status": CheckCategory.ENDPOINT,
    "content_type": CheckCategory.STREAMING,
    "error_body": CheckCategory.FORMAT,
    "sse_framing": CheckCategory.STREAMING,
    "sse_fields": CheckCategory.STREAMING,
    "data_json": CheckCategory.FORMAT,
    "chunk_schema": CheckCategory.FORMAT,
    "chunk_consistency": CheckCategory.FORMAT,
    "role_first": CheckCategory.FORMAT,
    "inband_error": CheckCategory.FORMAT,
    "finish_reason": CheckCategory.FORMAT,
    "tool_call_deltas": CheckCategory.FORMAT,
    "done_terminator": CheckCategory.FORMAT,
}

_RANK = {CheckStatus.SKIP: 0, CheckStatus.PASS: 1, CheckStatus.WARN: 2, CheckStatus.FAIL: 3}


@dataclass(slots=True)
class _Finding:
    status: CheckStatus
    message: str
    hint: str | None
    evidence: str | None
    category: CheckCategory | None


@dataclass(slots=True)
class _Findings:
    """Collects findings per check id; each id becomes one Check with its worst status."""

    secrets: Sequence[str]
    items: dict[str, list[_Finding]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    passed: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        check_id: str,
        status: CheckStatus,
        message: str,
        hint: str | None = None,
        evidence: str | None = None,
        category: CheckCategory | None = None,
    ) -> None:
        trimmed = trim_evidence(evidence, self.secrets) if evidence is not None else None
        self.items.setdefault(check_id, []).append(
            _Finding(status, redact(message, self.secrets), hint, trimmed, category)
        )

    def fail(self, check_id: str, message: str, hint: str, evidence: str | None = None) -> None:
        self.add(check_id, CheckStatus.FAIL, message, hint, evidence)

    def warn(self, check_id: str, message: str, hint: str | None = None, evidence: str | None = None) -> None:
        self.add(check_id, CheckStatus.WARN, message, hint, evidence)

    def skip(self, check_id: str, reason: str) -> None:
        self.skipped[check_id] = reason

    def note(self, check_id: str, message: str) -> None:
        """A pass with a specific message (INFO-level observations)."""
        self.passed[check_id] = message

    def checks(self, ids: Iterable[str]) -> list[Check]:
        out: list[Check] = []
        for check_id in ids:
            findings = self.items.get(check_id)
            category = _CATEGORIES[check_id]
            if not findings:
                if check_id in self.skipped:
                    out.append(Check(id=check_id, category=category, status=CheckStatus.SKIP,
                                     message=self.skipped[check_id]))  # fmt: skip
                else:
                    message = self.passed.get(check_id, _PASS_MESSAGES[check_id])
                    out.append(
                        Check(id=check_id, category=category, status=CheckStatus.PASS, message=message)
                    )
                continue
            worst = max(findings, key=lambda f: _RANK[f.status])
            same = [f for f in findings if f.status == worst.status]
            message = worst.message
            if len(same) > 1:
                message += f" (and {len(same) - 1} more)"
            hint = worst.hint
            if worst.status == CheckStatus.FAIL and not hint:
                hint = "Fix the endpoint's output to match the OpenAI streaming format."
            out.append(
                Check(
                    id=check_id,
                    category=worst.category or category,
                    status=worst.status,
                    message=message,
                    hint=hint,
                    evidence=worst.evidence,
                )
            )
        return out


def conforms(checks: Iterable[Check]) -> bool:
    """True when the response bytes follow the spec: no failed check other than ``http_status``.

    An error answer with a correct error body conforms (the endpoint speaks the protocol),
    although the report is still incompatible because the request did not succeed.
    """
    return not any(c.status == CheckStatus.FAIL and c.id != "http_status" for c in checks)


def check_response(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    profile: SpecProfile = OPENAI_PROFILE,
    expect_complete: bool = True,
    expect_start: bool = True,
    secrets: Sequence[str] = (),
    max_line_bytes: int = 1024 * 1024,
) -> list[Check]:
    """Judge one raw response to a streaming chat-completions request.

    ``expect_complete=False`` / ``expect_start=False`` are for captured fragments: end-of-stream
    rules, or the start-of-stream rules (role first, first tool-call fragment), are skipped.
    ``secrets`` are redacted from every message and evidence string.
    """
    header_map = _header_map(headers)
    findings = _Findings(secrets)
    if not 200 <= status < 300:
        return _check_error_response(status, header_map, body, profile, findings)
    if status != 200:
        findings.fail(
            "http_status",
            f"HTTP {status} instead of 200 for a stream",
            "A started stream must answer 200 with a text/event-stream body.",
        )
    _check_content_type(header_map, body, findings)
    _StreamChecker(profile, findings, expect_complete, expect_start, max_line_bytes).run(body)
    return findings.checks(_ORDER[:2] + _ORDER[3:])


def _check_content_type(headers: Mapping[str, str], body: bytes, findings: _Findings) -> None:
    content_type = headers.get("content-type")
    if content_type is None:
        findings.add(
            "content_type",
            CheckStatus.FAIL,
            "no Content-Type header on the stream",
            "Send `Content-Type: text/event-stream` with the streaming response; SDKs and proxies "
            "rely on it to stream instead of buffering.",
        )
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "text/event-stream":
        findings.add(
            "content_type",
            CheckStatus.FAIL,
            f"Content-Type is {media_type or 'empty'}, not text/event-stream",
            "A stream=true request must be answered with `Content-Type: text/event-stream` and SSE "
            "`data: <json>` events"
            + (" (NDJSON is Ollama's native API; use its /v1 route)." if "ndjson" in media_type else "."),
            evidence=f"content-type: {content_type}",
        )  # fmt: skip


def _check_error_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    profile: SpecProfile,
    findings: _Findings,
) -> list[Check]:
    error = classify_upstream_error(status, body, headers, secrets=findings.secrets)
    findings.add(
        "http_status",
        CheckStatus.FAIL,
        f"HTTP {status} ({error.code}): {error.message}",
        error.hint,
        evidence=body.decode("utf-8", "replace"),
        category=error.category,
    )
    content_type = headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    error_body = _error_object(body)
    if error_body is None:
        findings.fail(
            "error_body",
            f"the HTTP {status} body is not a JSON object with an `error` object",
            'Answer errors with a JSON body {"error": {"message": "...", "type": "...", "code": "..."}} so '
            "clients can show the reason.",
            evidence=body.decode("utf-8", "replace"),
        )
    elif not isinstance(error_body.get("message"), str):
        findings.fail(
            "error_body",
            "the error object has no string `message`",
            "Put a human-readable string in error.message.",
            evidence=body.decode("utf-8", "replace"),
        )
    else:
        if profile.azure:
            # Azure's gateway envelope {"error": {"code": "<string>", "message": …}} is legal there.
            missing = [] if "code" in error_body else ["code"]
        else:
            missing = [key for key in ("type", "param", "code") if key not in error_body]
        if missing:
            findings.warn(
                "error_body",
                f"the error object lacks {', '.join(missing)}",
                f"{profile.label} errors carry error.message, type, param and code; SDKs expose them to "
                "callers.",
                evidence=body.decode("utf-8", "replace"),
            )
    if error_body is not None and media_type not in ("application/json", ""):
        findings.warn(
            "error_body",
            f"error served as {media_type}, not application/json",
            "Send error bodies with `Content-Type: application/json`.",
        )
    return findings.checks(("http_status", "error_body"))


@dataclass(slots=True)
class _ChoiceState:
    finishes: int = 0
    finish_reason: str | None = None
    annotation_finish: str | None = None
    tool_calls: dict[int, list[str]] = field(default_factory=dict)  # index -> argument fragments


class _StreamChecker:
    """Walks the parsed events once and records findings (WIRE_FORMATS.md §0, §1.3-§1.6, §2.2)."""

    def __init__(
        self,
        profile: SpecProfile,
        findings: _Findings,
        expect_complete: bool,
        expect_start: bool,
        max_line_bytes: int,
    ) -> None:
        self.profile = profile
        self.f = findings
        self.expect_complete = expect_complete
        self.expect_start = expect_start
        self.max_line_bytes = max_line_bytes
        self.choices: dict[int, _ChoiceState] = {}
        self.first_id: str | None = None
        self.first_created: int | None = None
        self.done_seen = False
        self.events_after_done = 0
        self.content_seen = False
        self.role_checked = not expect_start
        self.inband_errors = 0

    def run(self, body: bytes) -> None:
        parser = SseParser(max_line_bytes=self.max_line_bytes)
        try:
            events = parser.feed(body)
            events.extend(parser.finish())
        except SseLimitExceeded as exc:
            self.f.fail(
                "sse_framing",
                str(exc),
                "Keep each SSE line and event small; one chunk per data: line.",
            )
            events = exc.events_before
        obs = parser.observations
        self._check_framing(events, obs, body)
        for event in events:
            self._check_event(event)
        self._check_end(events)

    # -- framing -------------------------------------------------------------------------------

    def _check_framing(self, events: list[SseEvent], obs: SseObservations, body: bytes) -> None:
        f = self.f
        if not events:
            looks_json = body.lstrip()[:1] in (b"{", b"[")
            f.fail(
                "sse_framing",
                "no SSE data events in the body"
                + (" (the body is bare JSON lines, not `data: <json>` events)" if looks_json else ""),
                "Stream each chunk as `data: <json>` followed by a blank line (Server-Sent Events), "
                "ending with `data: [DONE]`.",
                evidence=body.decode("utf-8", "replace") if body else "(empty body)",
            )
        if obs.non_field_line_count:
            sample = obs.non_field_lines[0] if obs.non_field_lines else ""
            stripped = sample.strip()
            if events and stripped.startswith("{"):
                f.fail(
                    "sse_framing",
                    f"{obs.non_field_line_count} line(s) carry JSON without a `data:` prefix; SSE clients "
                    "ignore them",
                    "Prefix every JSON chunk with `data: ` and end each event with a blank line.",
                    evidence=sample,
                )
            elif events:
                f.warn(
                    "sse_framing",
                    f"{obs.non_field_line_count} line(s) are not SSE fields or comments (ignored)",
                    "Send only `data:` lines, blank lines and `:` comments.",
                    evidence=sample,
                )
        if obs.truncated_event:
            f.warn(
                "sse_framing",
                "the last event is not closed by a blank line; strict SSE clients discard it",
                "End every event, including `data: [DONE]`, with a blank line (\\n\\n).",
            )
        if obs.invalid_utf8:
            f.fail("data_json", "the stream is not valid UTF-8", "Encode the stream as UTF-8.")
        if obs.empty_blocks_after_id:
            f.warn(
                "sse_fields",
                "blank lines without data after an `id:` field: openai-python then dispatches an empty "
                "event and fails to parse it",
                "Do not send `id:` fields, or do not follow comments with blank lines.",
            )
        fields = [
            name
            for name, count in (
                ("event", obs.event_fields),
                ("id", obs.id_fields),
                ("retry", obs.retry_fields),
            )
            if count
        ]
        if fields:
            f.warn(
                "sse_fields",
                f"the stream uses {', '.join(n + ':' for n in fields)} fields; OpenAI streams are data-only",
                "Drop event:/id:/retry: lines: the bundled openai-node client skips events whose "
                "`event` is set to anything but response.*.",
            )
        notes = []
        endings = sorted(obs.line_endings)
        if endings and endings != ["lf"]:
            notes.append("line endings: " + "+".join(endings))
        if obs.comment_count:
            notes.append(f"{obs.comment_count} comment line(s) (keep-alive)")
        if obs.data_without_space:
            notes.append("`data:` without a space (valid SSE)")
        if notes:
            f.note("sse_framing", "well-formed SSE framing; " + "; ".join(notes))

    # -- events ----------------------------------------------------------------------------------

    def _check_event(self, event: SseEvent) -> None:
        f = self.f
        data = event.data
        if self.done_seen:
            self.events_after_done += 1
            return
        if data.startswith("[DONE]"):
            self.done_seen = True
            if data != "[DONE]":
                f.warn(
                    "done_terminator",
                    f"terminator is {data!r}, not exactly [DONE]; openai-python accepts a prefix, "
                    "stricter clients do not",
                    "Send exactly `data: [DONE]`.",
                    evidence=data,
                )
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            f.fail(
                "data_json",
                "a data event is neither JSON nor [DONE]: OpenAI SDKs fail to parse it",
                "Every `data:` value must be one JSON chunk. Keep-alives must be SSE comments (`: ping`), "
                "not data.",
                evidence=data,
            )
            return
        if not isinstance(chunk, dict):
            f.fail(
                "chunk_schema",
                "a data event is JSON but not an object",
                "Each data event must be one chat.completion.chunk object.",
                evidence=data,
            )
            return
        if "error" in chunk and chunk.get("error") is not None:
            self._check_inband_error(chunk, data)
            return
        if self.profile.azure and _is_azure_annotation(chunk):
            self._check_annotation(chunk, data)
            return
        self._check_chunk(chunk, data)

    def _check_inband_error(self, chunk: dict[str, Any], data: str) -> None:
        self.inband_errors += 1
        error = chunk.get("error")
        error_obj = error if isinstance(error, dict) else {"message": str(error)}
        raw_code = error_obj.get("code")
        status = raw_code if isinstance(raw_code, int) and 100 <= raw_code <= 599 else None
        info = classify_upstream_error(
            status or 400, json.dumps({"error": error_obj}).encode(), secrets=self.f.secrets
        )
        when = (
            "after tokens were sent"
            if self.content_seen
            else "before any token (it should have been a non-2xx JSON error)"
        )
        self.f.add(
            "inband_error",
            CheckStatus.FAIL,
            f"the stream carries an error event {when}: {info.message}",
            info.hint,
            evidence=data,
            category=info.category if status else CheckCategory.FORMAT,
        )

    def _check_annotation(self, chunk: dict[str, Any], data: str) -> None:
        """Azure prompt-filter / asynchronous-filter chunks: tolerated, loosely checked."""
        choices = chunk.get("choices", [])
        if not isinstance(choices, list):
            self.f.fail("chunk_schema", "`choices` is not an array", "Send `choices` as an array.", data)
            return
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("index"), int):
                self.f.fail(
                    "chunk_schema",
                    "an annotation choice lacks an integer index",
                    "Every choice needs an integer `index`.",
                    data,
                )
                continue
            reason = choice.get("finish_reason")
            if reason is not None:
                state = self.choices.setdefault(choice["index"], _ChoiceState())
                if reason not in FINISH_REASONS:
                    self._bad_finish_reason(reason, data)
                else:
                    state.annotation_finish = reason

    def _check_chunk(self, chunk: dict[str, Any], data: str) -> None:
        f = self.f
        hint = (
            "Each chunk must follow the chat.completion.chunk schema (id, object, created, model, choices)."
        )
        obj = chunk.get("object")
        if obj != "chat.completion.chunk":
            extra = " (an empty object is only legal for Azure filter chunks)" if obj == "" else ""
            f.fail(
                "chunk_schema",
                f"`object` is {obj!r}, not 'chat.completion.chunk'{extra}",
                "Set `object` to `chat.completion.chunk` on every streamed chunk "
                "(`chat.completion` is the non-streaming object).",
                evidence=data,
            )
        chunk_id = chunk.get("id")
        if not isinstance(chunk_id, str):
            f.fail("chunk_schema", "`id` is missing or not a string", hint, data)
        else:
            if not chunk_id:
                f.warn("chunk_consistency", "`id` is empty", "Give every chunk the completion's id.", data)
            if self.first_id is None:
                self.first_id = chunk_id
            elif chunk_id != self.first_id:
                f.warn(
                    "chunk_consistency",
                    "`id` changes during the stream",
                    "Every chunk of one completion should carry the same id.",
                    data,
                )
        created = chunk.get("created")
        if not isinstance(created, int) or isinstance(created, bool):
            f.fail("chunk_schema", "`created` is missing or not an integer (Unix seconds)", hint, data)
        elif self.first_created is None:
            self.first_created = created
        elif created != self.first_created:
            f.warn("chunk_consistency", "`created` changes during the stream",
                   "Use the same `created` timestamp on every chunk.", data)  # fmt: skip
        if not isinstance(chunk.get("model"), str):
            f.fail("chunk_schema", "`model` is missing or not a string", hint, data)
        usage = chunk.get("usage")
        if usage is not None and not (
            isinstance(usage, dict)
            and all(
                isinstance(usage.get(k), int) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            )
        ):
            f.warn(
                "chunk_schema",
                "`usage` lacks integer prompt_tokens/completion_tokens/total_tokens",
                "Send usage as {prompt_tokens, completion_tokens, total_tokens} or null.",
                data,
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            f.fail("chunk_schema", "`choices` is missing or not an array", hint, data)
            return
        for choice in choices:
            self._check_choice(choice, data)

    def _check_choice(self, choice: Any, data: str) -> None:
        f = self.f
        if not isinstance(choice, dict):
            f.fail("chunk_schema", "a choice is not an object", "Each choice must be an object.", data)
            return
        index = choice.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            f.fail(
                "chunk_schema",
                "a choice lacks an integer `index`",
                "Give every choice an integer `index`.",
                data,
            )
            return
        state = self.choices.setdefault(index, _ChoiceState())
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            f.fail(
                "chunk_schema",
                "a choice has no `delta` object",
                "Streamed choices carry `delta` (use {} when there is nothing new), not `message`.",
                data,
            )
            delta = {}
        if not self.role_checked:
            self.role_checked = True
            if "role" not in delta:
                f.warn(
                    "role_first",
                    "the first chunk has no `delta.role`",
                    'Start the stream with delta {"role": "assistant"}.',
                    data,
                )
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            f.fail("chunk_schema", "`delta.content` is neither a string nor null",
                   "Send text deltas as strings.", data)  # fmt: skip
        if (
            "logprobs" in choice
            and choice["logprobs"] is not None
            and not isinstance(choice["logprobs"], dict)
        ):
            f.fail("chunk_schema", "`logprobs` is neither null nor an object",
                   "Send logprobs as null or {content: [...]}.", data)  # fmt: skip
        has_payload = bool(content) or bool(delta.get("tool_calls")) or bool(delta.get("refusal"))
        if has_payload and state.finishes:
            f.fail(
                "finish_reason",
                f"choice {index} sends more content after its finish_reason",
                "Set finish_reason only on the last chunk of each choice; null before that.",
                data,
            )
        if has_payload:
            self.content_seen = True
        tool_calls = delta.get("tool_calls")
        if tool_calls is not None:
            self._check_tool_calls(tool_calls, state, data)
        if "finish_reason" not in choice:
            f.warn("chunk_schema", "a choice lacks `finish_reason` (should be null until the end)",
                   "Send `finish_reason: null` on intermediate chunks.", data)  # fmt: skip
        reason = choice.get("finish_reason")
        if reason is not None:
            if reason not in FINISH_REASONS:
                self._bad_finish_reason(reason, data)
            state.finishes += 1
            if state.finishes == 2:
                f.fail(
                    "finish_reason",
                    f"choice {index} has more than one non-null finish_reason",
                    "Send finish_reason once per choice, on its last chunk; null on every other chunk.",
                    data,
                )
            state.finish_reason = reason if isinstance(reason, str) else None

    def _bad_finish_reason(self, reason: Any, data: str) -> None:
        shown = '""' if reason == "" else repr(reason)
        self.f.fail(
            "finish_reason",
            f"finish_reason {shown} is not one of {', '.join(sorted(FINISH_REASONS))}",
            'Use null until the end, then stop, length, tool_calls or content_filter (never "").',
            data,
        )

    def _check_tool_calls(self, tool_calls: Any, state: _ChoiceState, data: str) -> None:
        f = self.f
        if not isinstance(tool_calls, list):
            f.fail("tool_call_deltas", "`delta.tool_calls` is not an array",
                   "Send tool-call deltas as an array.", data)  # fmt: skip
            return
        for call in tool_calls:
            if not isinstance(call, dict):
                f.fail("tool_call_deltas", "a tool-call delta is not an object",
                       "Send each tool-call delta as an object.", data)  # fmt: skip
                continue
            index = call.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                f.fail(
                    "tool_call_deltas",
                    "a tool-call delta has no integer `index`",
                    "Every tool_calls[] entry needs an integer `index` (0, 1, … per call); clients "
                    "use it to join argument fragments.",
                    data,
                )
                continue
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            first = index not in state.tool_calls
            if first and not self.expect_start:
                state.tool_calls[index] = []
            elif first:
                state.tool_calls[index] = []
                call_id = call.get("id")
                name = function.get("name")
                if not isinstance(call_id, str):
                    f.fail("tool_call_deltas", f"tool call {index} starts without an `id`",
                           "Send the call's `id` in its first delta.", data)  # fmt: skip
                elif not call_id:
                    f.warn("tool_call_deltas", f"tool call {index} has an empty `id`",
                           "Give every tool call a unique id for its tool result.", data)  # fmt: skip
                if not isinstance(name, str) or not name:
                    f.fail("tool_call_deltas", f"tool call {index} starts without `function.name`",
                           "Send `function.name` in the first delta of each call.", data)  # fmt: skip
                if call.get("type", "function") != "function":
                    f.warn("tool_call_deltas", f"tool call {index} has type {call.get('type')!r}",
                           "Use `type: function`.", data)  # fmt: skip
            arguments = function.get("arguments")
            if arguments is not None:
                if isinstance(arguments, str):
                    state.tool_calls[index].append(arguments)
                else:
                    f.fail("tool_call_deltas", "`function.arguments` is not a string",
                           "Stream arguments as string fragments of one JSON document.", data)  # fmt: skip

    # -- end of stream ---------------------------------------------------------------------------

    def _check_end(self, events: list[SseEvent]) -> None:
        f = self.f
        if self.events_after_done:
            f.warn(
                "done_terminator",
                f"{self.events_after_done} event(s) after [DONE]; SDKs stop reading at [DONE]",
                "Send nothing after `data: [DONE]`.",
            )
        for index, state in sorted(self.choices.items()):
            if state.tool_calls and state.finish_reason not in (None, "tool_calls", "function_call"):
                f.warn(
                    "tool_call_deltas",
                    f"choice {index} emitted tool calls but finished with {state.finish_reason!r}",
                    "Finish a tool-calling turn with finish_reason `tool_calls`.",
                )
        if not any(state.tool_calls for state in self.choices.values()):
            f.skip("tool_call_deltas", "no tool calls in this stream")
        if not self.expect_start:
            f.skip("role_first", "the capture is a fragment: start-of-stream rules do not apply")
        elif not self.choices and not self.f.items.get("role_first"):
            f.skip("role_first", "no choice-bearing chunk")
        if not self.expect_complete:
            for check_id in ("done_terminator", "finish_reason"):
                if check_id not in f.items:
                    f.skip(check_id, "the capture is a fragment: end-of-stream rules do not apply")
            return
        if not events:
            f.skip("done_terminator", "no events")
            f.skip("finish_reason", "no events")
            return
        if self.inband_errors:
            if not self.done_seen:
                f.skip("done_terminator", "the stream ended with an error event")
            return
        for index, state in sorted(self.choices.items()):
            for call_index, fragments in sorted(state.tool_calls.items()):
                arguments = "".join(fragments)
                try:
                    json.loads(arguments)
                except ValueError:
                    f.fail(
                        "tool_call_deltas",
                        f"the arguments of tool call {call_index} (choice {index}) do not form valid JSON",
                        "The concatenated `function.arguments` fragments of each call must be one JSON "
                        "document (use {} for no arguments).",
                        evidence=arguments,
                    )
            if state.finishes == 0 and state.annotation_finish is None:
                f.fail(
                    "finish_reason",
                    f"choice {index} never gets a finish_reason",
                    "Send a last chunk with finish_reason (stop, length, tool_calls …) before [DONE].",
                )
        if not self.choices:
            f.fail(
                "finish_reason",
                "no chunk carries a choice",
                "Stream chat.completion.chunk objects with choices[].delta and a final finish_reason.",
            )
        if not self.done_seen:
            f.fail(
                "done_terminator",
                "the stream ends without `data: [DONE]`",
                "End the stream with `data: [DONE]` and a blank line, as the OpenAI API does. "
                "(openai-python tolerates a missing [DONE], other clients and proxies do not.)",
            )


def _is_azure_annotation(chunk: dict[str, Any]) -> bool:
    """Azure prompt-filter chunk or asynchronous-filter annotation: no choice carries a delta."""
    choices = chunk.get("choices")
    if isinstance(choices, list) and any(isinstance(c, dict) and "delta" in c for c in choices):
        return False
    if "prompt_filter_results" in chunk or "prompt_annotations" in chunk or chunk.get("object") == "":
        return True
    return (
        isinstance(choices, list)
        and bool(choices)
        and all(
            isinstance(c, dict) and ("content_filter_results" in c or "content_filter_offsets" in c)
            for c in choices
        )
    )


# ---------------------------------------------------------------------------------------------
# Stream relay (proxy hot path)
# ---------------------------------------------------------------------------------------------


_raw_decode = json.JSONDecoder().raw_decode


def _loads_event(data: str) -> Any:
    """``json.loads`` for one event payload, minus its wrapper overhead (this runs per chunk)."""
    try:
        value, end = _raw_decode(data)
    except ValueError:
        return json.loads(data)  # leading whitespace, or invalid: loads decides (and raises)
    if end != len(data) and data[end:].strip():
        raise ValueError("extra data after the JSON value")
    return value


class OpenAiStreamRelay:
    """Turns upstream SSE events into OpenAI output events with the least work that keeps the
    stream valid: payloads are forwarded byte for byte; only what a client cannot parse is dropped.

    The relay never emits the upstream's error payload (it may echo key fragments). It records
    it in ``error`` and stops; the proxy then sends its own final error event.
    """

    __slots__ = (
        "_azure",
        "_last_chunk_meta",
        "_open_choices",
        "chunks_forwarded",
        "content_started",
        "done",
        "dropped",
        "error",
        "finished_choices",
    )

    def __init__(self, *, azure: bool = False) -> None:
        self._azure = azure
        self.done = False  # [DONE] seen (or synthesised by finish())
        self.error: dict[str, Any] | None = None  # the upstream's in-band error object
        self.content_started = False  # first content / tool-call delta forwarded (TTFT)
        self.chunks_forwarded = 0
        self.dropped = 0  # events dropped (filter chunks, non-JSON data, events after [DONE])
        self.finished_choices: set[int] = set()
        self._open_choices: set[int] = set()
        self._last_chunk_meta: dict[str, Any] = {}

    @property
    def ended(self) -> bool:
        """Nothing more will be forwarded: [DONE] or an error was seen."""
        return self.done or self.error is not None

    def feed_event(self, event: SseEvent) -> list[bytes]:
        if self.done or self.error is not None:
            self.dropped += 1
            return []
        data = event.data
        if data.startswith("[DONE]"):
            self.done = True
            return [DONE_EVENT]
        try:
            chunk = _loads_event(data)
        except ValueError:
            self.dropped += 1
            return []
        if not isinstance(chunk, dict):
            self.dropped += 1
            return []
        if chunk.get("error") is not None:
            error = chunk["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return []
        if self._azure and _is_azure_annotation(chunk):
            return self._azure_annotation(chunk)
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index")
                delta = choice.get("delta")
                if isinstance(index, int):
                    if choice.get("finish_reason") is not None:
                        self.finished_choices.add(index)
                    else:
                        self._open_choices.add(index)
                if (
                    not self.content_started
                    and isinstance(delta, dict)
                    and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal"))
                ):
                    self.content_started = True
            if self._azure:
                self._last_chunk_meta = {
                    "id": chunk.get("id", ""),
                    "object": "chat.completion.chunk",
                    "created": chunk.get("created", 0),
                    "model": chunk.get("model", ""),
                }
        self.chunks_forwarded += 1
        return [encode_data_event(data)]

    def _azure_annotation(self, chunk: dict[str, Any]) -> list[bytes]:
        """Drop filter chunks, but keep a content_filter stop: the client must see the finish."""
        out: list[bytes] = []
        self.dropped += 1
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index")
            reason = choice.get("finish_reason")
            if isinstance(index, int) and reason is not None and index not in self.finished_choices:
                self.finished_choices.add(index)
                synthetic = dict(self._last_chunk_meta) or {
                    "id": "",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "",
                }
                synthetic["choices"] = [{"index": index, "delta": {}, "finish_reason": reason}]
                out.append(encode_data_event(encode_json(synthetic)))
                self.chunks_forwarded += 1
        return out

    def finish(self) -> list[bytes]:
        """End of the upstream body. A stream that finished every choice but forgot ``[DONE]`` gets
        one (the client needs it); anything else is incomplete and left for the proxy to fail."""
        if self.ended:
            return []
        if self.finished_choices and self._open_choices <= self.finished_choices:
            self.done = True
            return [DONE_EVENT]
        return []

    @property
    def incomplete(self) -> bool:
        """After ``finish()``: the upstream stopped without finishing (the proxy sends an error)."""
        return not self.done and self.error is None
