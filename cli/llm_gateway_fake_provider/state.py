"""What the fake saw: requests (secrets fingerprinted) and stream lifecycles, for test assertions."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-goog-api-key", "x-api-key", "proxy-authorization", "cookie"}
)
SECRET_QUERY_PARAMS = frozenset({"key", "api-key", "api_key"})


def fingerprint(secret: str) -> str:
    """A stable stand-in for a secret: tests can compare keys without the log holding one."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def redact_header(name: str, value: str) -> str:
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, sep, credential = value.partition(" ")
    if sep and scheme.lower() in ("bearer", "basic"):
        return f"{scheme} {fingerprint(credential.strip())}"
    return fingerprint(value)


class FakeState:
    """Shared by request handlers (event-loop thread) and readers (any thread), hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._fault_uses: dict[str, int] = {}
        self._next_stream_id = 1
        self._open: set[int] = set()
        self._counts = {"opened": 0, "closed": 0, "aborted": 0, "reset": 0, "stalled_out": 0}
        #: Scripted faults (``PUT /_fake/faults``): model (or "*") -> the rule and its request count.
        self._scripted: dict[str, dict[str, Any]] = {}

    def record_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry = {"seq": len(self._requests) + 1, "at": time.time(), **entry}
            self._requests.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def take_fault(self, key: str, times: int) -> bool:
        """True while the scenario has used the fault fewer than ``times`` times (and counts this use)."""
        with self._lock:
            used = self._fault_uses.get(key, 0)
            if used >= times:
                return False
            self._fault_uses[key] = used + 1
            return True

    def script_fault(
        self,
        model: str,
        spec: str | None,
        ratio: float = 1.0,
        when: str | None = None,
        unless: str | None = None,
        at: str | None = None,
    ) -> None:
        """From now on ``ratio`` of the requests for ``model`` ("*": any) get the fault ``spec``
        (``spec`` None removes it); only requests whose body contains ``when`` / lacks ``unless``
        count, and with ``at`` only requests whose URL contains it. Deterministic: with 0.3, the 4th, 7th, 10th, 14th, ... request fails."""
        with self._lock:
            if spec is None:
                self._scripted.pop(model, None)
            else:
                ratio = max(0.0, min(1.0, ratio))
                self._scripted[model] = {
                    "fault": spec,
                    "ratio": ratio,
                    "when": when,
                    "unless": unless,
                    "at": at,
                    "requests": 0,
                }

    def scripted_fault(self, model: str, body: str, url: str = "") -> str | None:
        """The scripted fault spec this request of ``model`` gets, if its turn has come."""
        with self._lock:
            rule = self._scripted.get(model) or self._scripted.get("*")
            if rule is None or (rule["when"] and rule["when"] not in body):
                return None
            if rule.get("at") and rule["at"] not in url:
                return None
            if rule["unless"] and rule["unless"] in body:
                return None
            seen = rule["requests"]
            rule["requests"] = seen + 1
            return str(rule["fault"]) if int((seen + 1) * rule["ratio"]) > int(seen * rule["ratio"]) else None

    def scripted_faults(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {model: dict(rule) for model, rule in self._scripted.items()}

    def stream_opened(self, path: str) -> int:
        with self._lock:
            stream_id = self._next_stream_id
            self._next_stream_id += 1
            self._open.add(stream_id)
            self._counts["opened"] += 1
            self._events.append({"stream": stream_id, "event": "opened", "path": path, "at": time.time()})
            return stream_id

    def stream_finished(self, stream_id: int, outcome: str) -> None:
        """outcome: closed (normal end), aborted (client went away), reset (we cut it), stalled_out."""
        with self._lock:
            if stream_id not in self._open:
                return  # opened before the last reset(): it belongs to an earlier test
            self._open.discard(stream_id)
            self._counts[outcome] = self._counts.get(outcome, 0) + 1
            self._events.append({"stream": stream_id, "event": outcome, "at": time.time()})

    def connections(self) -> dict[str, Any]:
        with self._lock:
            return {**self._counts, "active": len(self._open), "events": list(self._events)}

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._events.clear()
            self._fault_uses.clear()
            self._scripted.clear()
            for key in self._counts:
                self._counts[key] = 0
            # Streams still running keep their ids; they are no longer counted as active.
            self._open.clear()
