"""Posts webhooks through the guarded client: the same address policy as every call to an LLM
(resolved once, pinned, never redirected), so a webhook URL that turns private later is refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from llm_gateway.adapters.probe_http import transport_error
from llm_gateway.errors import TransportError, TransportKind
from llm_gateway.providers.common.http import retry_after

#: Standard Webhooks suggests 15 to 30 s for a receiver to answer.
DELIVERY_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
#: A receiver's answer is read only this far (its status is what counts).
MAX_ANSWER_BYTES = 4096


class GuardedWebhookSender:
    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, url: str, body: str, headers: Mapping[str, str]) -> tuple[int, float | None]:
        try:
            with self._client.stream(
                "POST", url, content=body.encode("utf-8"), headers=dict(headers), timeout=DELIVERY_TIMEOUT
            ) as response:
                read = 0
                for chunk in response.iter_bytes():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
                return int(response.status_code), retry_after(response.headers)
        except Exception as exc:
            typed = transport_error(exc)
            if typed is None:
                raise TransportError(TransportKind.PROTOCOL, type(exc).__name__) from exc
            raise typed from exc
