"""A local OpenAI, Azure OpenAI, Gemini and Anthropic upstream with scriptable faults (tests, demo, bench)."""

from .app import create_app
from .config import FakeProviderConfig
from .faults import FAULT_NAMES, Fault
from .server import FakeProviderHandle, serve, start_in_thread
from .state import FakeState

__all__ = [
    "FAULT_NAMES",
    "FakeProviderConfig",
    "FakeProviderHandle",
    "FakeState",
    "Fault",
    "create_app",
    "serve",
    "start_in_thread",
]
