"""The stream's table reads: the per-request freshness check and the once-per-container load.

Kept apart from the registry's repositories: this is the only table access on the stream's hot
path, and the stream function's role allows exactly this read (``BatchGetItem``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.adapters.health_store import URL_BREAKERS_SK, health_pk, read_url_breakers
from llm_gateway.adapters.table_keys import SESSION_SK, account_pk, llm_revision, llm_sk, session_pk
from llm_gateway.domain.sessions import Freshness, LlmRef, Loaded, RevisedLlm
from llm_gateway.models.llm import StoredLlm
from llm_gateway.models.session import SessionRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoSessionStateStore:
    """The stream's reads: one strongly consistent ``BatchGetItem`` for a session and its LLM.

    ``check`` projects only what decides freshness (``revoked``, the LLM's ``rev``): one small read
    per request, on the event loop (``aws_async``: no thread hop on the hot path). ``load`` reads
    the whole items with botocore (in a worker thread), once per container and session or revision.
    """

    #: ``brk``: the LLM's shared URL breakers (``HEALTH#…`` / ``URLS``), read in the same request.
    CHECK_PROJECTION = "PK, revoked, rev, brk"
    MAX_ROUNDS = 5

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        batch_get: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        """``batch_get`` sends a ``BatchGetItem`` request asynchronously; the default is
        ``aws_async.AwsJsonCall`` with this client's endpoint, region and credentials."""
        self._db = client
        self._table = table_name
        self._batch_get = batch_get

    async def check(self, session_id: str, llm: LlmRef | None) -> Freshness:
        if self._batch_get is None:
            from llm_gateway.adapters.aws_async import AwsJsonCall

            self._batch_get = AwsJsonCall(self._db, operation="BatchGetItem")
        request: Any = self._request(session_id, llm, self.CHECK_PROJECTION)
        found: dict[str, Any] = {}
        for attempt in range(self.MAX_ROUNDS):
            response = await self._batch_get({"RequestItems": {self._table: request}})
            request = self._collect(response, found)
            if request is None:
                break
            await asyncio.sleep(0.005 * 2**attempt)  # throttled: the rest again, after a short pause
        else:
            raise RuntimeError("DynamoDB left keys unprocessed; the session could not be checked")
        session = found.get(session_pk(session_id))
        llm_item = found.get(account_pk(llm.account_id)) if llm is not None else None
        return Freshness(
            session_found=session is not None,
            revoked=bool(session and session.get("revoked", {}).get("BOOL")),
            llm_found=llm is None or llm_item is not None,
            llm_revision=llm_item["rev"]["S"] if llm_item and "rev" in llm_item else None,
            url_breakers=self._breakers(found, llm),
        )

    def load(self, session_id: str | None, llm: LlmRef | None) -> Loaded:
        request: Any = self._request(session_id, llm, None)
        found: dict[str, Any] = {}
        for attempt in range(self.MAX_ROUNDS):
            request = self._collect(self._db.batch_get_item(RequestItems={self._table: request}), found)
            if request is None:
                break
            time.sleep(0.005 * 2**attempt)
        else:
            raise RuntimeError("DynamoDB left keys unprocessed; the session could not be read")
        record = None
        session = found.get(session_pk(session_id)) if session_id is not None else None
        if session is not None and "doc" in session:
            record = SessionRecord.model_validate_json(session["doc"]["S"])
            if session.get("revoked", {}).get("BOOL"):
                record = record.model_copy(update={"revoked": True})
        revised = None
        llm_item = found.get(account_pk(llm.account_id)) if llm is not None else None
        if llm_item is not None:
            doc = llm_item["doc"]["S"]
            rev = llm_item["rev"]["S"] if "rev" in llm_item else llm_revision(doc)
            revised = RevisedLlm(StoredLlm.model_validate_json(doc), rev)
        return Loaded(record=record, llm=revised, url_breakers=self._breakers(found, llm))

    @staticmethod
    def _breakers(found: dict[str, Any], llm: LlmRef | None) -> Mapping[str, float]:
        item = found.get(health_pk(llm.account_id, llm.llm_id)) if llm is not None else None
        return read_url_breakers(item)

    async def aclose(self) -> None:
        close = getattr(self._batch_get, "aclose", None)
        if close is not None:
            await close()

    @staticmethod
    def _request(session_id: str | None, llm: LlmRef | None, projection: str | None) -> dict[str, Any]:
        keys: list[dict[str, Any]] = []
        if session_id is not None:
            keys.append({"PK": {"S": session_pk(session_id)}, "SK": {"S": SESSION_SK}})
        if llm is not None:
            keys.append({"PK": {"S": account_pk(llm.account_id)}, "SK": {"S": llm_sk(llm.llm_id)}})
            keys.append({"PK": {"S": health_pk(llm.account_id, llm.llm_id)}, "SK": {"S": URL_BREAKERS_SK}})
        request: dict[str, Any] = {"Keys": keys, "ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = projection
        return request

    def _collect(self, response: Any, found: dict[str, Any]) -> Any:
        """Items by ``PK`` (a session, an LLM and its health never share one); what is left to read."""
        for item in response.get("Responses", {}).get(self._table, []):
            found[item["PK"]["S"]] = item
        return response.get("UnprocessedKeys", {}).get(self._table) or None
