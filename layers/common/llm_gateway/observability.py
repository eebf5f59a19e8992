"""Powertools Logger/Tracer/Metrics, built once, with credentials redacted from every log record."""

from __future__ import annotations

import contextvars
import logging
import sys
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from llm_gateway.redaction import REDACTED, redact_text

#: Header and field names whose values are credentials, in any casing.
SENSITIVE_NAMES = frozenset(
    {"authorization", "x-api-key", "api-key", "cookie", "set-cookie", "x-goog-api-key", "secret",
     "apikey", "api_key", "proxy-authorization", "sessiontoken", "session_token"}
)  # fmt: skip
__all__ = [
    "REDACTED",
    "SENSITIVE_NAMES",
    "RedactingFormatter",
    "get_logger",
    "get_metrics",
    "get_tracer",
    "redact",
]


def redact(value: Any) -> Any:
    """Return a copy with credential-named keys masked, and key-bearing query strings cut."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SENSITIVE_NAMES else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Every record passes through :func:`redact` before it is serialised.

    The keys an invocation adds (``inject_lambda_context``: function name, request id; the
    authorizer's account) live in a context variable, one set per context: in Lambda a process
    serves one invocation at a time, but the local stack runs every function in one process and
    each invocation in a context of its own, so one function's lines never carry another's name."""

    _base_format: dict[str, Any] | None = None

    @property
    def log_format(self) -> dict[str, Any]:
        var = self._format_var()
        current = var.get(None)
        if current is None:
            current = dict(self._base_format or {})
            var.set(current)
        return current

    @log_format.setter
    def log_format(self, value: dict[str, Any]) -> None:
        if self._base_format is None:
            self._base_format = value  # the keys of the formatter's init, the start of every context
        self._format_var().set(value)

    def _format_var(self) -> contextvars.ContextVar[dict[str, Any]]:
        var: contextvars.ContextVar[dict[str, Any]] | None = self.__dict__.get("_log_format_var")
        if var is None:
            var = contextvars.ContextVar(f"log_format_{id(self)}")
            self.__dict__["_log_format_var"] = var
        return var

    def serialize(self, log: Any) -> str:
        return super().serialize(redact(log) if isinstance(log, dict) else log)


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is now (Lambda's, or a test's capture), not the one at import."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    return Logger(
        logger_formatter=RedactingFormatter(), logger_handler=StdoutHandler(), log_uncaught_exceptions=False
    )


#: The one library whose calls the Tracer records as subsegments: the AWS SDK (DynamoDB, KMS,
#: Secrets Manager, EventBridge), where the management functions spend their time. The default
#: (every library the X-Ray SDK knows) also imports and patches httpx, requests, sqlite3, httplib…
#: at cold start for calls these functions do not make, or that their reports already time.
TRACED_MODULES = ("botocore",)


@lru_cache(maxsize=1)
def get_tracer() -> Tracer:
    return Tracer(patch_modules=TRACED_MODULES)


@lru_cache(maxsize=1)
def get_metrics() -> Metrics:
    return Metrics()
