"""The registry function, in-process on events/ files, against moto: DESIGN.md §2 behaviour."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from llm_gateway.adapters.guarded_http import registration_url_guard
from tests.conftest import CANARY
from tests.integration.conftest import AwsStack, Invoke

PUBLIC_ANSWERS = {"api.openai.com": ["104.18.6.192"], "my-resource.openai.azure.com": ["20.62.58.128"],
                  "generativelanguage.googleapis.com": ["142.250.80.10"], "llm.example.net": ["93.184.215.14"]}  # fmt: skip


def fake_resolver(host: str, port: int) -> list[str]:
    if host not in PUBLIC_ANSWERS:
        raise OSError("no such host")
    return PUBLIC_ANSWERS[host]


@pytest.fixture(autouse=True)
def _offline_dns(monkeypatch: pytest.MonkeyPatch, aws: AwsStack) -> None:
    """Registration resolves hosts; tests answer from a table instead of the network."""
    offline = registration_url_guard(allow_private=False, resolver=fake_resolver)
    aws.provide(url_guard=offline)


def openai_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "displayName": "Support bot",
        "llmFormat": "openai",
        "modelName": "gpt-4o-mini",
        "urls": [{"url": "https://api.openai.com/v1/chat/completions"}],
        "secret": CANARY,
    }
    return body | overrides


def test_create_returns_the_llm_without_its_secret(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    assert status == 201
    assert body["status"] == "pending"
    assert body["version"] == 1
    assert body["secretHint"] == "…" + CANARY[-4:]
    assert CANARY not in json.dumps(body)
    assert set(body) >= {"id", "displayName", "llmFormat", "urls", "modelName", "validation", "isDefault"}


@pytest.mark.parametrize(
    "event",
    [
        "registry/create_openai",
        "registry/create_azure_classic",
        "registry/create_azure_v1",
        "registry/create_gemini",
    ],
)
def test_each_spec_registers_from_its_sample_event(invoke_registry: Invoke, account: str, event: str) -> None:
    status, body, _ = invoke_registry(event, account)
    assert status == 201, body
    status, fetched, _ = invoke_registry("registry/get", account, llm_id=body["id"])
    assert status == 200
    assert fetched.pop("health")["state"] == "healthy"  # GET adds how it is doing
    assert fetched == body


def test_azure_classic_without_deployment_is_a_400_that_says_why(
    invoke_registry: Invoke, account: str
) -> None:
    status, body, _ = invoke_registry("registry/create_azure_missing_deployment", account)
    assert status == 400
    assert body["error"]["code"] == "validation_error"
    assert "deploymentName" in json.dumps(body["error"]["details"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headers", {"X-Trace": "a\r\nInjected: 1"}),
        ("headers", {"X-Trace": "a\x00b"}),
        ("headers", {"Authorization": "Bearer other"}),
        ("headers", {"x-goog-api-key": "k"}),
        ("headers", {"X-Long": "v" * 1025}),
        ("secret", "sk-with\nnewline"),
        ("secret", "sk-with\x00nul"),
        ("secret", "s" * 4097),
        ("urls", [{"url": "ftp://api.openai.com/v1"}]),
        ("displayName", ""),
        ("temperature", 3),
    ],
)
def test_bad_fields_get_400_and_nothing_is_stored(
    invoke_registry: Invoke, aws: AwsStack, account: str, field: str, value: Any
) -> None:
    status, body, _ = invoke_registry("registry/create_openai", account, body=openai_body(**{field: value}))
    assert status == 400, body
    assert body["error"]["code"] == "validation_error"
    assert "\n" not in json.dumps(body["error"]["details"]).replace("\\n", "")
    assert aws.registry.llm_repository.list(account) == []


def test_crlf_header_sample_event_is_refused(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry("registry/create_invalid_header_crlf", account)
    assert status == 400
    assert "control characters" in json.dumps(body)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/v1",
        "https://10.0.0.1/v1",
        "https://[::ffff:169.254.169.254]/v1",
        "https://2852039166/v1",
        "https://api.openai.com:6379/v1",
    ],
)
def test_blocked_endpoints_are_refused_at_registration(
    aws: AwsStack, invoke_registry: Invoke, account: str, url: str
) -> None:
    status, body, _ = invoke_registry(
        "registry/create_openai", account, body=openai_body(urls=[{"url": url}])
    )
    assert status == 400
    assert body["error"]["code"] in ("endpoint_blocked", "validation_error")
    assert aws.registry.llm_repository.list(account) == []


def test_unresolvable_host_registers_and_is_left_to_validation(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry(
        "registry/create_openai",
        account,
        body=openai_body(urls=[{"url": "https://not-yet-in-dns.example.org/v1"}]),
    )
    assert status == 201
    assert body["status"] == "pending"


def test_oversized_body_is_413(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry(
        "registry/create_openai", account, body=json.dumps(openai_body(description="x" * 1_100_000))
    )
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("[" * 5000 + "]" * 5000, "invalid_body"),
        ('{"displayName": "a\u0000"}', "invalid_body"),
        ("{not json", "invalid_json"),
    ],
)
def test_malformed_bodies_are_400(invoke_registry: Invoke, account: str, raw: str, code: str) -> None:
    status, body, _ = invoke_registry("registry/create_openai", account, body=raw)
    assert status == 400
    assert body["error"]["code"] == code


def test_invalid_utf8_is_400(aws: AwsStack, account: str) -> None:
    from functions.registry import handler
    from llm_gateway_local.front_door import LambdaContext
    from tests.conftest import load_event

    event = load_event("registry/create_openai")
    event["requestContext"]["authorizer"] = {"accountId": account}
    event["body"] = base64.b64encode(b'{"displayName": "\xff\xfe"}').decode()
    event["isBase64Encoded"] = True
    result = handler.lambda_handler(event, LambdaContext("registry"))
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"]["code"] == "invalid_encoding"


def test_list_pages_and_searches(invoke_registry: Invoke, account: str) -> None:
    for name in ("alpha", "beta", "gamma"):
        assert (
            invoke_registry("registry/create_openai", account, body=openai_body(displayName=name))[0] == 201
        )
    status, body, _ = invoke_registry("registry/list", account, query={"page": "1", "perPage": "2"})
    assert status == 200
    assert body["meta"] == {"page": 1, "perPage": 2, "total": 3}
    assert [i["displayName"] for i in body["data"]] == ["gamma", "beta"]
    status, body, _ = invoke_registry("registry/list", account, query={"search": "ALP"})
    assert [i["displayName"] for i in body["data"]] == ["alpha"]
    status, body, _ = invoke_registry("registry/list_with_defaults", account)
    assert status == 200
    assert {i["id"] for i in body["data"]} == {"9d8900ee-257d-4401-8817-ba9c835e9d36"}
    status, body, _ = invoke_registry("registry/list", account, query={"perPage": "101"})
    assert status == 400


def test_builtins_are_listed_readable_and_read_only(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry(
        "registry/list", account, query={"includeDefaults": "true", "perPage": "100"}
    )
    ids = {i["id"] for i in body["data"]}
    assert {"ANAM_GPT_4O_MINI_V1", "CUSTOMER_CLIENT_V1", "ANAM_LLAMA_v3_3_70B_V1"} <= ids
    status, body, _ = invoke_registry("registry/get_builtin", account)
    assert status == 200
    assert body["isDefault"] is True
    assert invoke_registry("registry/update_builtin", account)[0] == 403
    status, body, _ = invoke_registry("registry/delete_builtin", account)
    assert status == 403
    assert body["error"]["code"] == "builtin_read_only"


def test_other_accounts_ids_are_404_exactly_like_missing_ones(
    invoke_registry: Invoke, account: str, other_account: str
) -> None:
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    missing = "00000000-0000-4000-8000-000000000000"
    for event, extra in (
        ("registry/get", {}),
        ("registry/update", {"body": {"displayName": "stolen"}, "headers": {"If-Match": "1"}}),
        ("registry/delete", {}),
    ):
        theirs = invoke_registry(event, other_account, llm_id=created["id"], **extra)
        nothing = invoke_registry(event, other_account, llm_id=missing, **extra)
        assert theirs[0] == nothing[0] == 404
        assert theirs[1]["error"]["code"] == nothing[1]["error"]["code"] == "llm_not_found"
        assert theirs[1]["error"]["message"].replace(created["id"], "ID") == nothing[1]["error"][
            "message"
        ].replace(missing, "ID")
    assert invoke_registry("registry/get", account, llm_id=created["id"])[1]["displayName"] == "Support bot"


def test_update_is_partial_and_if_match_guards_the_version(invoke_registry: Invoke, account: str) -> None:
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body(temperature=0.5))
    status, updated, headers = invoke_registry(
        "registry/update",
        account,
        llm_id=created["id"],
        body={"displayName": "v2"},
        headers={"If-Match": "1"},
    )
    assert status == 200
    assert updated["displayName"] == "v2"
    assert updated["temperature"] == 0.5
    assert updated["version"] == 2
    assert headers["ETag"] == '"2"'
    status, body, _ = invoke_registry(
        "registry/update",
        account,
        llm_id=created["id"],
        body={"displayName": "v3"},
        headers={"If-Match": "1"},
    )
    assert status == 412
    assert body["error"]["code"] == "version_mismatch"
    assert body["error"]["details"] == {"currentVersion": 2}


def test_update_rechecks_the_whole_config(invoke_registry: Invoke, account: str) -> None:
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    status, body, _ = invoke_registry(
        "registry/update", account, llm_id=created["id"], body={"llmFormat": "azure_openai"}, headers={}
    )
    assert status == 400
    assert "deploymentName" in json.dumps(body)


def test_new_secret_is_staged_and_the_current_one_stays(
    invoke_registry: Invoke, aws: AwsStack, account: str
) -> None:
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    status, body, _ = invoke_registry(
        "registry/update_secret", account, llm_id=created["id"], body={"secret": "sk-rotated-000000000000"}
    )
    assert status == 200
    assert body["secretHint"] == created["secretHint"]
    store = aws.registry.credential_store
    stored = aws.registry.llm_repository.get(account, created["id"])
    assert stored is not None
    assert store.read(account, created["id"], stored.secret_ref) == CANARY
    assert (
        store.read(account, created["id"], stored.secret_ref, stage="AWSPENDING") == "sk-rotated-000000000000"
    )


def test_delete_removes_the_llm_and_its_secret(invoke_registry: Invoke, aws: AwsStack, account: str) -> None:
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    status, body, _ = invoke_registry("registry/delete", account, llm_id=created["id"])
    assert status == 204
    assert body is None
    assert invoke_registry("registry/get", account, llm_id=created["id"])[0] == 404
    secrets = aws.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in secrets if created["id"] in s["Name"]]


def test_secret_is_named_tagged_and_encrypted_under_the_cmk(
    invoke_registry: Invoke, aws: AwsStack, account: str
) -> None:
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    sm = aws.client("secretsmanager")
    described = sm.describe_secret(SecretId=f"llm-gateway/test/{account}/{created['id']}")
    assert described["KmsKeyId"] == aws.env["CREDENTIALS_KEY_ID"]
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {
        "llm-gateway:account": account,
        "llm-gateway:llm": created["id"],
    }
    raw = sm.get_secret_value(SecretId=described["ARN"])
    assert CANARY.encode() not in raw["SecretBinary"]


def test_idempotency_key_replays_within_an_account_only(
    aws: AwsStack, invoke_registry: Invoke, account: str, other_account: str
) -> None:
    first = invoke_registry("registry/create_openai_idempotent", account, body=openai_body())
    again = invoke_registry("registry/create_openai_idempotent", account, body=openai_body())
    theirs = invoke_registry("registry/create_openai_idempotent", other_account, body=openai_body())
    assert first[0] == again[0] == theirs[0] == 201
    assert first[1]["id"] == again[1]["id"]
    assert theirs[1]["id"] != first[1]["id"]
    assert len(aws.registry.llm_repository.list(account)) == 1
    assert len(aws.registry.llm_repository.list(other_account)) == 1
    reused = invoke_registry(
        "registry/create_openai_idempotent", account, body=openai_body(displayName="other")
    )
    assert reused[0] == 409
    assert reused[1]["error"]["code"] == "idempotency_key_reused"


def test_events_are_published_without_secrets(invoke_registry: Invoke, aws: AwsStack, account: str) -> None:
    sqs, events = aws.client("sqs"), aws.client("events")
    queue = sqs.create_queue(QueueName="capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = aws.env["EVENT_BUS_NAME"]
    events.put_rule(
        Name="capture-all", EventBusName=bus, EventPattern=json.dumps({"source": ["llm-gateway.registry"]})
    )
    events.put_targets(Rule="capture-all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    _, created, _ = invoke_registry("registry/create_openai", account, body=openai_body())
    invoke_registry("registry/update_secret", account, llm_id=created["id"], body={"secret": CANARY + "-2"})
    invoke_registry("registry/delete", account, llm_id=created["id"])
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["detail-type"] for b in bodies] == ["LLM Registered", "LLM Updated", "LLM Deleted"]
    assert bodies[0]["detail"] == {
        "accountId": account,
        "llmId": created["id"],
        "version": 1,
        "llmFormat": "openai",
    }
    assert bodies[1]["detail"]["secretStaged"] is True
    assert CANARY not in json.dumps(bodies)


def test_openapi_document_is_served_and_documents_bearer_auth(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry("registry/openapi", account)
    assert status == 200
    assert "/v1/llms" in body["paths"]
    assert "/v1/llms/{llm_id}" in body["paths"]
    assert body["components"]["securitySchemes"]["accountApiKey"]["scheme"] == "bearer"


def test_unknown_query_parameters_are_a_400(invoke_registry: Invoke, account: str) -> None:
    status, body, _ = invoke_registry("registry/list", account, query={"perpage": "5"})
    assert status == 400
    assert body["error"]["code"] == "unknown_parameter"
    assert body["error"]["details"] == [{"field": "perpage", "message": "not a parameter of this route"}]


def test_control_characters_in_the_path_are_a_400_not_another_route(
    invoke_registry: Invoke, account: str
) -> None:
    status, body, _ = invoke_registry("registry/get", account, llm_id="\r")
    assert status == 400
    assert body["error"]["code"] == "invalid_path"
