"""Settings of one fake-provider instance: which keys and models it accepts, default pacing."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

DEFAULT_KEY = "fake-key"
DEFAULT_MODELS = ("fake-model", "gpt-4o-mini", "gemini-2.5-flash")
DEFAULT_DEPLOYMENTS = ("fake-deployment",)
# Any model or deployment name with this prefix is known, so tests can invent names freely.
FAKE_PREFIX = "fake-"


@dataclass(frozen=True)
class FakeProviderConfig:
    """Immutable so one config can be shared by the app and the thread that serves it."""

    keys: tuple[str, ...] = (DEFAULT_KEY,)
    models: tuple[str, ...] = DEFAULT_MODELS
    deployments: tuple[str, ...] = DEFAULT_DEPLOYMENTS
    default_chunks: int = 5
    default_interval_ms: float = 0.0
    # A stalled stream gives up after this long so a forgotten client cannot pin the server forever.
    max_stall_s: float = 600.0
    # Let the kernel hand already-sent bytes to the peer before a deliberate reset discards the rest.
    reset_flush_s: float = 0.05

    def accepts_key(self, presented: str | None) -> bool:
        """Constant-time, like a real check: the fake serves secret-handling tests."""
        if not presented:
            return False
        return any(hmac.compare_digest(presented.encode(), key.encode()) for key in self.keys)

    def knows_model(self, name: str) -> bool:
        return name in self.models or name.startswith(FAKE_PREFIX)

    def knows_deployment(self, name: str) -> bool:
        """Azure deployment names are free-form; real setups often name them after the model."""
        return name in self.deployments or self.knows_model(name)
