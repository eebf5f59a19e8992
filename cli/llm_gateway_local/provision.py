"""Creates the template's stateful resources in moto, from the template's own properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llm_gateway_local.template import ACCOUNT_ID, REGION, Resolver

Client = Callable[[str], Any]


def _table(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    ddb = client("dynamodb")
    kwargs: dict[str, Any] = {
        k: r.resolve(props[k])
        for k in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
        if k in props
    }
    # Without a TableName CloudFormation names the table after the stack; so do we (per stage).
    kwargs.setdefault(
        "TableName", f"{r.lookup('AWS::StackName')}-{r.parameters.get('Stage', 'local')}-{logical}"
    )
    desc = ddb.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(
            TableName=kwargs["TableName"],
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
        )
    r.refs[logical] = kwargs["TableName"]
    r.attrs[(logical, "Arn")] = desc["TableArn"]


def _kms_key(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    meta = client("kms").create_key(
        Description=str(r.resolve(props.get("Description", logical))),
        KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
    )["KeyMetadata"]
    r.refs[logical] = meta["KeyId"]
    r.attrs[(logical, "Arn")] = meta["Arn"]
    r.attrs[(logical, "KeyId")] = meta["KeyId"]


def _kms_alias(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    name = r.resolve(props["AliasName"])
    client("kms").create_alias(AliasName=name, TargetKeyId=r.resolve(props["TargetKeyId"]))
    r.refs[logical] = name


def _event_bus(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    name = r.resolve(props["Name"])
    arn = client("events").create_event_bus(Name=name)["EventBusArn"]
    r.refs[logical] = name
    r.attrs[(logical, "Arn")] = arn
    r.attrs[(logical, "Name")] = name


def _queue(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    name = r.resolve(props.get("QueueName", logical))
    attributes = {
        k: (json.dumps(r.resolve(v)) if isinstance(v, dict) else str(r.resolve(v)))
        for k, v in props.items()
        if k
        in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "ReceiveMessageWaitTimeSeconds")
    }
    url = client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    r.refs[logical] = url
    r.attrs[(logical, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
    r.attrs[(logical, "QueueName")] = name
    r.attrs[(logical, "QueueUrl")] = url


def _rule(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    events = client("events")
    name = str(r.resolve(props.get("Name", logical)))
    bus = r.resolve(props.get("EventBusName", "default"))
    targets = [{"Id": t["Id"], "Arn": r.resolve(t["Arn"])} for t in props.get("Targets", [])]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(r.resolve(props["EventPattern"])))
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    r.refs[logical] = name


def _usage_plan(client: Client, r: Resolver, logical: str, props: dict[str, Any]) -> None:
    """The plan and its throttle; its API stages are the local front door, which enforces it."""
    throttle = r.resolve(props.get("Throttle", {}))
    plan = client("apigateway").create_usage_plan(
        name=str(r.resolve(props.get("UsagePlanName", logical))),
        throttle={
            "rateLimit": float(throttle.get("RateLimit", 0)),
            "burstLimit": int(float(throttle.get("BurstLimit", 0))),
        },
    )
    r.refs[logical] = plan["id"]


PROVISIONERS: dict[str, Callable[[Client, Resolver, str, dict[str, Any]], None]] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::Events::EventBus": _event_bus,
    "AWS::SQS::Queue": _queue,
    "AWS::Events::Rule": _rule,
    "AWS::ApiGateway::UsagePlan": _usage_plan,
}
#: Creation order: things referenced first (queues before the DLQ-using queue is handled by sorting).
ORDER = list(PROVISIONERS)


def provision(template: dict[str, Any], resolver: Resolver, client: Client) -> list[str]:
    """Create every resource the local stack needs; return the logical ids created."""
    created: list[str] = []
    pending = [
        (logical, res)
        for kind in ORDER
        for logical, res in template["Resources"].items()
        if res.get("Type") == kind
    ]
    # A resource whose references are not ready yet (e.g. a queue naming its DLQ) waits a round.
    while pending:
        progressed = False
        for item in list(pending):
            logical, res = item
            try:
                PROVISIONERS[res["Type"]](client, resolver, logical, res.get("Properties", {}))
            except KeyError:
                continue
            pending.remove(item)
            created.append(logical)
            progressed = True
        if not progressed:
            raise RuntimeError(f"cannot resolve references of {[p[0] for p in pending]}")
    return created
