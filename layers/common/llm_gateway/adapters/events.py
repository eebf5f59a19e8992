"""Domain events on the EventBridge bus (the validator listens for registrations and updates)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class EventPublishFailed(Exception):
    pass


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str, source: str) -> None:
        self._events = client
        self._bus = bus_name
        self._source = source

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(dict(detail), separators=(",", ":")),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise EventPublishFailed(f"{detail_type} was not accepted by the event bus")
