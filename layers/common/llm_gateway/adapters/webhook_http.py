"""Posts webhooks through the guarded client: the same address policy as every call to an LLM
(resolved once, pinned, never redirected), so a webhook URL that turns private later is refused.

Each attempt has a wall-clock deadline for all of it (connect, headers, body): httpx's timeouts
are per read, so a receiver that drips one header line a second would otherwise hold a delivery
slot for as long as it likes. The attempt runs on the async client inside ``anyio.fail_after``,
which cancels it wherever it waits. Every delivery carries the deployment's hop marker, like
every other request the gateway sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx

from llm_gateway.adapters.probe_http import transport_error
from llm_gateway.errors import TransportError, TransportKind
from llm_gateway.providers.common.http import retry_after

#: Standard Webhooks suggests 15 to 30 s for a receiver to answer.
DELIVERY_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
#: The whole attempt (connect + headers + the part of the answer we read), whatever the receiver does.
DELIVERY_DEADLINE_S = 15.0
#: A receiver's answer is read only this far (its status is what counts).
MAX_ANSWER_BYTES = 4096


class GuardedWebhookSender:
    """``client_factory`` makes a guarded async client (one per attempt: it lives on that attempt's
    event loop)."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        hop_headers: Mapping[str, str] | None = None,
        deadline_s: float = DELIVERY_DEADLINE_S,
    ) -> None:
        self._client_factory = client_factory
        self._hop_headers = dict(hop_headers or {})
        self._deadline_s = deadline_s

    def post(self, url: str, body: str, headers: Mapping[str, str]) -> tuple[int, float | None]:
        try:
            return anyio.run(self._post, url, body, {**headers, **self._hop_headers})
        except TimeoutError as exc:
            raise TransportError(
                TransportKind.TIMEOUT, f"no complete answer within the {self._deadline_s:g} s deadline"
            ) from exc
        except TransportError:
            raise
        except Exception as exc:
            typed = transport_error(exc)
            if typed is None:
                raise TransportError(TransportKind.PROTOCOL, type(exc).__name__) from exc
            raise typed from exc

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> tuple[int, float | None]:
        with anyio.fail_after(self._deadline_s):
            async with self._client_factory() as client:
                request = client.build_request(
                    "POST", url, content=body.encode("utf-8"), headers=headers, timeout=DELIVERY_TIMEOUT
                )
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_bytes():
                        read += len(chunk)
                        if read >= MAX_ANSWER_BYTES:
                            break
                    return int(response.status_code), retry_after(response.headers)
                finally:
                    await response.aclose()
