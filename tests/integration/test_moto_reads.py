"""The local stack's fast answer to the stream's freshness read gives exactly moto's own answer,
and hands everything else to moto (llm_gateway_local/moto_reads.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from llm_gateway.adapters.aws import AwsClients
from llm_gateway_local.moto_reads import answer


@pytest.fixture
def db() -> Iterator[Any]:
    with mock_aws():
        client = AwsClients(region="us-east-1", access_key_id="k", secret_access_key="s").dynamodb()
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName="t",
            Item={
                "PK": {"S": "SESSION#s"},
                "SK": {"S": "SESSION"},
                "revoked": {"BOOL": False},
                "doc": {"S": "x"},
            },
        )
        client.put_item(
            TableName="t",
            Item={"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "LLM#l"}, "rev": {"S": "r1"}, "version": {"N": "3"}},
        )
        yield client


SESSION = {"PK": {"S": "SESSION#s"}, "SK": {"S": "SESSION"}}
LLM = {"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "LLM#l"}}
GONE = {"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "LLM#gone"}}


def by_pk(response: dict[str, Any]) -> dict[str, Any]:
    return {
        table: sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
        for table, items in response["Responses"].items()
    }


@pytest.mark.parametrize(
    "request_items",
    [
        {"Keys": [SESSION, LLM], "ConsistentRead": True, "ProjectionExpression": "PK, revoked, rev"},
        {"Keys": [SESSION, GONE], "ConsistentRead": True, "ProjectionExpression": "PK, revoked, rev"},
        {"Keys": [SESSION], "ConsistentRead": True},
        {"Keys": [LLM], "ConsistentRead": True, "ProjectionExpression": "version"},
    ],
    ids=["projected", "one-missing", "whole-item", "other-projection"],
)
def test_the_fast_answer_is_motos_answer(db: Any, request_items: dict[str, Any]) -> None:
    payload = {"RequestItems": {"t": request_items}}
    fast = answer(payload, "k", "us-east-1")
    assert fast is not None
    assert by_pk(fast) == by_pk(db.batch_get_item(**payload))
    assert fast["UnprocessedKeys"] == {}


@pytest.mark.parametrize(
    "payload",
    [
        {"RequestItems": {"nope": {"Keys": [SESSION]}}},
        {"RequestItems": {"t": {"Keys": [SESSION, SESSION]}}},
        {"RequestItems": {"t": {"Keys": [SESSION, LLM, GONE]}}},
        {"RequestItems": {"t": {"Keys": [SESSION], "ExpressionAttributeNames": {"#r": "revoked"}}}},
        {"RequestItems": {"t": {"Keys": [SESSION]}}, "ReturnConsumedCapacity": "TOTAL"},
    ],
    ids=["unknown-table", "duplicates", "three-keys", "attribute-names", "consumed-capacity"],
)
def test_anything_else_is_left_to_moto(db: Any, payload: dict[str, Any]) -> None:
    assert answer(payload, "k", "us-east-1") is None
