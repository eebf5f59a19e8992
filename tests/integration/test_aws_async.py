"""The stream's per-request read on the event loop (``aws_async.AwsJsonCall``): SigV4-signed by
botocore, sent with aiohttp, against a real moto server; retried like botocore's standard mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from moto.server import ThreadedMotoServer

from llm_gateway.adapters.aws import AwsClients
from llm_gateway.adapters.aws_async import AwsCallFailed, AwsJsonCall
from llm_gateway.adapters.session_state import DynamoSessionStateStore
from llm_gateway.domain.sessions import LlmRef
from llm_gateway_local.servers import free_port


@pytest.fixture
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_the_check_reads_revoked_and_the_revision_from_a_real_endpoint(moto_url: str) -> None:
    db = AwsClients(moto_url, "us-east-1", "k", "s").dynamodb()
    db.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    db.put_item(
        TableName="t", Item={"PK": {"S": "SESSION#s1"}, "SK": {"S": "SESSION"}, "revoked": {"BOOL": True}}
    )
    db.put_item(
        TableName="t",
        Item={"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "LLM#l"}, "rev": {"S": "r7"}, "doc": {"S": "{}"}},
    )
    store = DynamoSessionStateStore(db, "t")

    async def checks() -> list[Any]:
        try:
            return [
                await store.check("s1", LlmRef("a", "l")),
                await store.check("s2", LlmRef("a", "gone")),
                await store.check("s1", None),
            ]
        finally:
            await store.aclose()

    found, missing, session_only = asyncio.run(checks())
    assert (found.session_found, found.revoked, found.llm_found, found.llm_revision) == (
        True,
        True,
        True,
        "r7",
    )
    assert (missing.session_found, missing.llm_found) == (False, False)
    assert session_only.revoked and session_only.llm_found


class Scripted:
    """An endpoint that answers with the scripted (status, body) pairs, in order."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        status, body = self.answers.pop(0)
        return web.Response(status=status, text=json.dumps(body), content_type="application/x-amz-json-1.0")


async def call_against(scripted: Scripted) -> dict[str, Any] | AwsCallFailed:
    app = web.Application()
    app.router.add_post("/", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = AwsClients(f"http://127.0.0.1:{port}", "us-east-1", "k", "s").dynamodb()
    call = AwsJsonCall(client, operation="BatchGetItem")
    try:
        return await call({"RequestItems": {}})
    except AwsCallFailed as failure:
        return failure
    finally:
        await call.aclose()
        await runner.cleanup()


def test_throttling_is_retried_and_a_client_error_is_not() -> None:
    throttled = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}
    retried = Scripted((400, throttled), (500, {}), (200, {"Responses": {}}))
    assert asyncio.run(call_against(retried)) == {"Responses": {}}
    assert len(retried.seen) == 3
    first = retried.seen[0]
    assert first["X-Amz-Target"] == "DynamoDB_20120810.BatchGetItem"
    assert first["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")
    assert "/us-east-1/dynamodb/aws4_request" in first["Authorization"]

    invalid = Scripted((400, {"__type": "com.amazon.coral.validate#ValidationException"}), (200, {}))
    failure = asyncio.run(call_against(invalid))
    assert isinstance(failure, AwsCallFailed) and str(failure) == "ValidationException"
    assert len(invalid.seen) == 1
