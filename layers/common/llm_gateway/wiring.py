"""What every function's services share: settings, AWS clients, and the slot a handler holds.

``composition`` builds one ``Services`` subclass per function; a handler module keeps a
``ServicesSlot`` of its class, filled on first use (or by the local stack and the tests).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import ClassVar, Generic, Self, TypeVar

from llm_gateway.adapters.aws import AwsClients
from llm_gateway.settings import FunctionSettings


class Services:
    """A function's settings and AWS clients; subclasses build what the function uses from them."""

    settings_model: ClassVar[type[FunctionSettings]] = FunctionSettings
    settings: FunctionSettings

    def __init__(self, settings: FunctionSettings, aws: AwsClients | None = None) -> None:
        self.settings = settings
        self.aws = aws or AwsClients(endpoint_url=settings.aws_endpoint_url)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, aws: AwsClients | None = None) -> Self:
        """From the function's environment (the process's when None): a missing variable is named."""
        return cls(cls.settings_model.from_environ(environ), aws)

    def close(self) -> None:
        """Stop what runs in the background (the stream's traffic recorder); most have nothing."""


S = TypeVar("S", bound=Services)


class ServicesSlot(Generic[S]):
    """One function's services, built on first use from its environment (once per container)."""

    def __init__(self, kind: type[S]) -> None:
        self.kind = kind
        self._services: S | None = None
        self._lock = threading.Lock()

    def __call__(self) -> S:
        services = self._services
        if services is None:
            with self._lock:
                if self._services is None:
                    self._services = self.kind.from_environ()
                services = self._services
        return services

    @property
    def built(self) -> bool:
        return self._services is not None

    def use(self, services: S | None) -> None:
        """These services from now on (the local stack's, a test's); None forgets them."""
        with self._lock:
            self._services = services

    def configure(self, environ: Mapping[str, str], aws: AwsClients | None = None) -> S:
        """Build from an explicit environment (the local stack gives each function its own)."""
        services = self.kind.from_environ(environ, aws)
        self.use(services)
        return services
