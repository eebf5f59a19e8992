"""Powertools Logger/Tracer/Metrics, built once, with credentials redacted from every log record."""

from __future__ import annotations

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
    """Every record passes through :func:`redact` before it is serialised."""

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
