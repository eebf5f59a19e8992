"""The REQUEST authorizer on events/authorizer files, against moto: one key, one account, one usage key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from functions.authorizer import handler
from llm_gateway.domain.accounts import create_account
from llm_gateway.domain.usage_plans import usage_key_value
from llm_gateway_local.front_door import LambdaContext
from tests.conftest import LeakCollector, load_event
from tests.integration.conftest import AwsStack


def with_authorization(*values: str, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """The valid_key event carrying these Authorization values (as API Gateway would pass them)."""
    event = copy.deepcopy(load_event("authorizer/valid_key"))
    header_names = names or ("Authorization",) * len(values)
    multi: dict[str, list[str]] = {}
    for name, value in zip(header_names, values, strict=True):
        multi.setdefault(name, []).append(value)
    event["multiValueHeaders"] = {**multi, "Host": [event["headers"]["Host"]]}
    event["headers"] = {**{name: vs[-1] for name, vs in multi.items()}, "Host": event["headers"]["Host"]}
    if not values:
        event["multiValueHeaders"].pop("Authorization", None)
    return event


def authorize(event: dict[str, Any], leak_collector: LeakCollector) -> dict[str, Any] | None:
    """The policy, or None for the exact refusal API Gateway maps to a 401."""
    error: Exception | None = None
    try:
        policy: dict[str, Any] = handler.lambda_handler(event, LambdaContext("authorizer"))
    except Exception as exc:  # the authorizer contract: raise Exception("Unauthorized")
        error = exc
    if error is not None:
        assert str(error) == "Unauthorized", "API Gateway maps exactly this message to a 401"
        return None
    leak_collector.add("authorizer policy", policy)
    return policy


@pytest.fixture
def keys(aws: AwsStack) -> dict[str, tuple[str, str]]:
    """Two accounts: name -> (account id, API key)."""
    made = {name: create_account(aws.registry.account_repository, name) for name in ("a", "c")}
    return {name: (m.account_id, m.api_key) for name, m in made.items()}


def test_a_valid_key_allows_the_stage_with_the_account_and_its_usage_key(
    keys: dict[str, tuple[str, str]], leak_collector: LeakCollector
) -> None:
    account, key = keys["a"]
    policy = authorize(with_authorization(f"Bearer {key}"), leak_collector)
    assert policy is not None
    assert policy["principalId"] == account
    assert policy["context"] == {"accountId": account}
    assert policy["usageIdentifierKey"] == usage_key_value(account)
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/dev/*/*"]


@pytest.mark.parametrize(
    ("order", "names"),
    [
        (("c", "a"), ("Authorization", "Authorization")),
        (("a", "c"), ("Authorization", "Authorization")),
        (("c", "a"), ("Authorization", "authorization")),
        (("a", "a"), ("Authorization", "Authorization")),
    ],
    ids=["c-then-a", "a-then-c", "two-casings", "same-key-twice"],
)
def test_more_than_one_authorization_header_is_401(
    keys: dict[str, tuple[str, str]],
    order: tuple[str, str],
    names: tuple[str, str],
    leak_collector: LeakCollector,
) -> None:
    values = tuple(f"Bearer {keys[name][1]}" for name in order)
    assert authorize(with_authorization(*values, names=names), leak_collector) is None


@pytest.mark.parametrize("event", ["authorizer/missing_key", "authorizer/wrong_key"])
def test_no_key_or_an_unknown_key_is_401(
    aws: AwsStack, event: str, leak_collector: LeakCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert authorize(load_event(event), leak_collector) is None
    out = capsys.readouterr().out
    print(out, end="")
    assert '"message":"refused"' in out, "the authorizer logs each refusal (a Powertools JSON line)"
    assert "llmgw_not-a-real-key" not in out, "never the key it refused"
