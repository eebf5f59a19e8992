"""One AWS JSON-protocol operation over aiohttp, signed by botocore: the stream's per-request read.

Every stream request makes one strongly consistent DynamoDB read while its upstream request opens.
A botocore call costs ~1 ms of CPU and, run in a worker thread, hands the GIL back and forth with
the event loop that relays the other streams: under load each hand-off waits for the loop's switch
interval and the reads queue up (a convoy: +30 ms at 8 streams in the first measurements). Here the
call runs on the event loop itself: the request is built and parsed as plain JSON, signed with
botocore's own SigV4 signer and credentials, and sent on a pooled keep-alive aiohttp session.
Everything else keeps using botocore clients (``adapters/aws.py``).
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from typing import Any

import aiohttp
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import get_cert_path

#: Worth another try (as botocore's standard retry mode would): throttling and server-side errors.
_RETRIABLE_TYPES = (
    "ProvisionedThroughputExceeded",
    "Throttling",
    "RequestLimitExceeded",
    "InternalServerError",
)


class AwsCallFailed(Exception):
    """The operation failed for good (after the retries); carries only the error type."""


class AwsJsonCall:
    """``await call(payload)``: one operation of an AWS JSON service (here DynamoDB), on the loop.

    The endpoint and region come from a botocore client (so ``AWS_ENDPOINT_URL`` and the region
    settings apply as everywhere else), the credentials its own, refreshed as botocore refreshes them.
    """

    def __init__(
        self,
        client: Any,
        *,
        operation: str,
        target_prefix: str = "DynamoDB_20120810",
        content_type: str = "application/x-amz-json-1.0",
        max_attempts: int = 3,
        timeout_s: float = 5.0,
    ) -> None:
        meta = client.meta
        self._url = meta.endpoint_url.rstrip("/") + "/"
        self._region = meta.region_name
        self._service = meta.service_model.signing_name
        # The client's own credentials (explicit ones locally; the role's, refreshed as botocore
        # refreshes them, in Lambda); botocore keeps them on its request signer.
        signer = getattr(client, "_request_signer", None)
        self._credentials = (
            getattr(signer, "_credentials", None) or botocore.session.get_session().get_credentials()
        )
        self._headers = {"Content-Type": content_type, "X-Amz-Target": f"{target_prefix}.{operation}"}
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=2.0)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            context = ssl.create_default_context(cafile=get_cert_path(True))
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60, ssl=context),
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def _signed(self, body: bytes) -> dict[str, str]:
        if self._credentials is None:
            raise AwsCallFailed("NoCredentials")
        request = AWSRequest(method="POST", url=self._url, data=body, headers=dict(self._headers))
        SigV4Auth(self._credentials.get_frozen_credentials(), self._service, self._region).add_auth(request)
        return dict(request.headers.items())

    async def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        failure = "unknown"
        for attempt in range(self._max_attempts):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.025 * 2**attempt))  # full jitter, as botocore's
            try:
                async with self._client().post(self._url, data=body, headers=self._signed(body)) as response:
                    answer = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = type(exc).__name__
                continue
            parsed: dict[str, Any] = json.loads(answer) if answer else {}
            if status == 200:
                return parsed
            failure = str(parsed.get("__type", status)).rpartition("#")[2]
            if status < 500 and not failure.startswith(_RETRIABLE_TYPES):
                break
        raise AwsCallFailed(failure)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
