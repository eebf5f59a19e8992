"""The request log's adapters, built from the stream's and the registry's settings and AWS clients
(beside ``composition.py``): the stream app's batching writer and the API's reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_gateway.adapters.aws import AwsClients
    from llm_gateway.adapters.request_log_store import DynamoRequestLogStore
    from llm_gateway.adapters.request_recorder import BufferedRequestLog
    from llm_gateway.domain.request_log import RequestLogService
    from llm_gateway.settings import RegistrySettings, StreamSettings


def request_log_store(settings: RegistrySettings | StreamSettings, aws: AwsClients) -> DynamoRequestLogStore:
    from llm_gateway.adapters.request_log_store import DynamoRequestLogStore

    return DynamoRequestLogStore(aws.dynamodb(), settings.table_name, settings.request_log_retention_days)


def request_log_writer(settings: StreamSettings, aws: AwsClients) -> BufferedRequestLog:
    """The stream app's writer: built without touching AWS; its thread starts on the first stream."""
    from llm_gateway.adapters.request_recorder import BufferedRequestLog

    store = request_log_store(settings, aws)
    return BufferedRequestLog(
        store.put,
        interval_s=settings.request_log_flush_seconds,
        max_pending=settings.request_log_flush_records,
    )


class SessionOwner:
    """Whether a session (still stored) belongs to an account."""

    def __init__(self, get: Callable[[str], Any]) -> None:
        self._get = get

    def owns_session(self, account_id: str, session_id: str) -> bool:
        record = self._get(session_id)
        return record is not None and record.account_id == account_id


def request_log_service(
    settings: RegistrySettings, aws: AwsClients, get_session: Callable[[str], Any]
) -> RequestLogService:
    """The API's reads (``get_session``: the session repository's ``get``)."""
    from llm_gateway.domain.request_log import RequestLogService

    return RequestLogService(
        store=request_log_store(settings, aws),
        sessions=SessionOwner(get_session),
        retention_days=settings.request_log_retention_days,
    )
