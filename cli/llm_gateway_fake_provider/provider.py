"""The steps every spec's handler shares: reading the body, recording the request, choosing the
fault, the checks before any model work (the gate) and the paced reply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
from .request_knobs import INTERVAL_HEADER, float_header
from .state import SECRET_QUERY_PARAMS, FakeState, fingerprint, redact_header
from .streaming import AbortResponse, PacedBody
from .wire import Spec, SpecName


class FakeProvider:
    """One instance per app, holding the config and the observation state."""

    def __init__(self, config: FakeProviderConfig, state: FakeState) -> None:
        self.config = config
        self.state = state

    async def read_json(self, request: Request) -> tuple[dict[str, Any] | None, Any]:
        """(the body if it is a JSON object, what to record: the parsed JSON or the raw text)."""
        raw = await request.body()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            return None, raw.decode("utf-8", "replace")[:4096]
        return (parsed if isinstance(parsed, dict) else None), parsed

    def record(
        self, request: Request, spec: SpecName | None, model: str, body: Any, fault: Fault | None
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

    async def gate(
        self, request: Request, spec: Spec, model: str, presented: str | None, body: Any
    ) -> tuple[Fault | None, Response | None]:
        """Record the request, then the faults and checks that come before any model work."""
        try:
            fault = self._select_fault(request, model, body)
        except UnknownFaultError as exc:
            self.record(request, spec.name, model, body, None)
            return None, JSONResponse({"error": {"message": str(exc), "type": "fake_provider_error"}}, 400)
        self.record(request, spec.name, model, body, fault)
        early = await self._early_fault(request, spec, fault, presented) if fault is not None else None
        if early is not None:
            return fault, early
        if (fault is None or fault.name != "accept-any-key") and not self.config.accepts_key(presented):
            return fault, spec.auth_error(presented, False)
        status = fault.status if fault else None
        if status is not None:
            return fault, spec.status_error(status, model, presented, fault.arg if fault else None)
        return fault, None

    async def _early_fault(
        self, request: Request, spec: Spec, fault: Fault, presented: str | None
    ) -> Response | None:
        """The faults that answer before the key check (or, for a delay, hold it back)."""
        name = fault.name
        if name == "delay-first-byte":
            await asyncio.sleep(fault.int_arg(1000) / 1000)
        if name == "redirect":
            return self._redirect(request, fault)
        if name == "reset" and fault.int_arg(1) == 0:
            return AbortResponse()
        if name == "echo-key-in-error":
            return spec.auth_error(presented, True)
        if name == "context-length":
            return spec.context_length_error()
        if name == "content-filter" and spec.content_filter_error is not None:
            return spec.content_filter_error()
        return None

    def _redirect(self, request: Request, fault: Fault) -> Response:
        """302 to another origin (localhost ↔ 127.0.0.1), whose target records any follower."""
        if fault.arg and fault.arg.startswith(("http://", "https://")):
            location = fault.arg
        else:
            host = request.url.hostname or "127.0.0.1"
            other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
            location = f"http://{other}:{request.url.port or 80}/_fake/redirect-target{request.url.path}"
        return Response(status_code=302, headers={"location": location})

    def respond(
        self,
        *,
        label: str,
        pieces: list[bytes],
        content_type: str | None,
        headers: dict[str, str],
        request: Request,
        fault: Fault | None,
    ) -> Response:
        """The reply, piece by piece at the request's pace, bent by the transport-level faults."""
        interval_ms = float_header(request, INTERVAL_HEADER, self.config.default_interval_ms)
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
