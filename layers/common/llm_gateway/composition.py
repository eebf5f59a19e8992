"""Builds adapters from settings once per container and hands them to the domain.

Handlers call these factories; nothing here runs at import time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from llm_gateway.adapters import aws
from llm_gateway.adapters.dynamodb import DynamoAccountRepository, DynamoLlmRepository
from llm_gateway.adapters.events import EventBridgePublisher
from llm_gateway.adapters.secrets import SecretsManagerCredentialStore
from llm_gateway.domain.ports import UrlGuard
from llm_gateway.domain.registry import Registry
from llm_gateway.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer


@lru_cache(maxsize=1)
def credential_store() -> SecretsManagerCredentialStore:
    s = get_settings()
    return SecretsManagerCredentialStore(aws.secretsmanager(), aws.kms(), s.credentials_key_id, s.stage)


@lru_cache(maxsize=1)
def llm_repository() -> DynamoLlmRepository:
    return DynamoLlmRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def account_repository() -> DynamoAccountRepository:
    return DynamoAccountRepository(aws.dynamodb(), get_settings().table_name)


@lru_cache(maxsize=1)
def event_publisher() -> EventBridgePublisher:
    s = get_settings()
    return EventBridgePublisher(aws.events(), s.event_bus_name, s.event_source)


@lru_cache(maxsize=1)
def url_guard() -> UrlGuard:
    from llm_gateway.adapters.guarded_http import registration_url_guard

    return registration_url_guard(allow_private=get_settings().allow_private_endpoints)


@lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry(
        llms=llm_repository(), credentials=credential_store(), events=event_publisher(), url_guard=url_guard()
    )


def reset() -> None:
    """Forget every cached adapter (tests change settings between cases)."""
    for factory in (
        credential_store, llm_repository, account_repository, event_publisher, url_guard, registry,
        idempotency_store,
    ):  # fmt: skip
        getattr(factory, "cache_clear", lambda: None)()  # tests may have swapped a factory out
    aws.client.cache_clear()
    get_settings.cache_clear()


@lru_cache(maxsize=1)
def idempotency_store() -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY#create-llm",
        expiry_attr="ttl",
        boto3_client=aws.dynamodb(),
    )
