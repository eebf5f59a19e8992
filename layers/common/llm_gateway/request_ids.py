"""The request id every response carries (``x-request-id``): imported by functions that need
nothing else of the REST edge (the lab), so it stays light."""

from __future__ import annotations

import uuid
from typing import Any


def request_id(event: dict[str, Any]) -> str:
    """The id API Gateway gave this request (``x-amzn-RequestId``): every response carries it as
    ``x-request-id``, and a 500 names it, so a user can quote it."""
    value = (event.get("requestContext") or {}).get("requestId")
    return str(value) if value else str(uuid.uuid4())


def with_request_id(result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """``x-request-id`` on a proxy result, whichever header form Powertools used."""
    rid = request_id(event)
    if isinstance(result.get("multiValueHeaders"), dict):
        result["multiValueHeaders"]["x-request-id"] = [rid]
    else:
        result["headers"] = {**(result.get("headers") or {}), "x-request-id": rid}
    return result
