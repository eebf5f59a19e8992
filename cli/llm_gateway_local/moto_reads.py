"""The local stack's moto, with the stream's freshness read answered on moto's event loop.

Every stream request makes one strongly consistent ``BatchGetItem`` (a session and its LLM,
projected to ``revoked`` and ``rev``). Through moto's full stack (ASGI → WSGI thread → Flask →
moto's dispatch and serializer) one costs ~1.5 ms of moto CPU, and concurrent ones queue behind
each other in moto's single process: at 8 concurrent streams that is ~12 ms, far from DynamoDB's
parallel single-digit milliseconds, and it would be measured as the gateway's. This front answers
exactly that request shape from moto's own tables (the same ``get_item`` and projection moto's
handler uses) without leaving the event loop; any other request, and any request of that shape it
cannot answer plainly (a missing table, a bad key, too many keys), goes to moto unchanged, so moto
gives its own answers and errors.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TARGET = b"DynamoDB_20120810.BatchGetItem"
_CREDENTIAL = re.compile(rb"Credential=([^/,\s]+)/[^/]+/([^/]+)/dynamodb/")
_MAX_KEYS = 2


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def answer(payload: dict[str, Any], access_key: str, region: str) -> dict[str, Any] | None:
    """moto's answer to a small projected consistent ``BatchGetItem``; ``None`` when it is not that."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import ProjectionExpressionParser

    requests = payload.get("RequestItems")
    if not isinstance(requests, dict) or len(requests) != 1 or set(payload) != {"RequestItems"}:
        return None
    ((table_name, request),) = requests.items()
    keys = request.get("Keys")
    if set(request) - {"Keys", "ConsistentRead", "ProjectionExpression"} or not keys or len(keys) > _MAX_KEYS:
        return None
    if len({json.dumps(k, sort_keys=True) for k in keys}) != len(keys):
        return None  # duplicates: moto's own validation error
    from moto.iam.models import get_account_id_from

    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(access_key) or DEFAULT_ACCOUNT_ID
    backend = dynamodb_backends[account][region]
    if table_name not in backend.tables:
        return None
    projection = ProjectionExpressionParser(request.get("ProjectionExpression"), {}).parse()
    found = []
    for key in keys:
        item = backend.get_item(table_name, key, projection or None)
        if item is not None:
            found.append({name: value.to_json() for name, value in item.attrs.items()})
    return {"Responses": {table_name: found}, "UnprocessedKeys": {}}


class FreshnessReads:
    """ASGI front of moto's app (see the module docstring)."""

    def __init__(self, moto: ASGIApp) -> None:
        self.moto = moto

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _header(scope, b"x-amz-target") != TARGET:
            await self.moto(scope, receive, send)
            return
        body = await _body(receive)
        credential = _CREDENTIAL.search(_header(scope, b"authorization") or b"")
        result = None
        if credential is not None:
            try:
                result = answer(json.loads(body), credential.group(1).decode(), credential.group(2).decode())
            except Exception:  # moto answers it then, with its own error
                result = None
        if result is None:
            await self.moto(scope, _replay(body), send)
            return
        data = json.dumps(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/x-amz-json-1.0"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


#: The DynamoDB operations that check a condition and write: each is one atomic step in DynamoDB.
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


class AtomicDynamoWrites:
    """moto's WSGI app with one DynamoDB write at a time.

    moto evaluates a write's condition and applies it in separate steps without a lock, so two
    concurrent writes (moto serves requests on worker threads) can both pass a condition only
    one of them may pass: two registrations could both find an account's counter under its
    limit. DynamoDB never lets that happen; serialising writes makes moto's as atomic as its."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        service, _, operation = str(environ.get("HTTP_X_AMZ_TARGET", "")).partition(".")
        if service != "DynamoDB_20120810" or operation not in _WRITES:
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
