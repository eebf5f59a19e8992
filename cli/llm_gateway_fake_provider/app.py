"""The fake upstream's assembly: OpenAI, Azure OpenAI (classic and v1), Gemini and Anthropic routes with
scriptable faults; reasoning requests get thoughts in each spec's form.

Routes (see DESIGN.md §3–§5 and WIRE_FORMATS.md for the shapes imitated):
  OpenAI   POST /v1/chat/completions (Bearer), GET /v1/models
  Azure    POST /openai/deployments/{deployment}/chat/completions?api-version=… (api-key or Bearer),
           POST /openai/v1/chat/completions, GET /openai/v1/models
  Gemini   POST /{v1beta|v1}/models/{model}:streamGenerateContent[?alt=sse], …:generateContent,
           GET /v1beta/models (x-goog-api-key or ?key=)
  Anthropic POST /v1/messages (x-api-key or Bearer; anthropic-version required)
  Control  GET /_fake/requests, GET /_fake/connections, POST /_fake/reset, GET /_fake/health,
           GET|PUT|DELETE /_fake/faults (scripted faults per model, for a fraction of its requests)
Each spec's routes, handlers and wire shapes live in ``specs/<spec>.py``; the shared steps (gate,
faults, pacing) in ``provider.py``, ``faults.py`` and ``streaming.py``. Per-request knobs: headers x-fake-chunks, x-fake-interval-ms, x-fake-fault[-times], x-fake-scenario,
x-fake-reasoning.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from . import control
from .config import FakeProviderConfig
from .provider import FakeProvider
from .specs import anthropic, azure, gemini, openai
from .state import FakeState
from .streaming import TRANSPORT_SCOPE_KEY, find_transport


class FakeProviderApp(Starlette):
    """Starlette wraps ``send`` in closures, so the transport (for resets) is captured before that."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[TRANSPORT_SCOPE_KEY] = find_transport(send)
        await super().__call__(scope, receive, send)


def create_app(config: FakeProviderConfig | None = None, state: FakeState | None = None) -> Starlette:
    """Build the fake upstream: every spec's routes and the control routes; ``app.state.fake_state``
    exposes the observations in-process."""
    provider = FakeProvider(config or FakeProviderConfig(), state or FakeState())
    routes = [
        *openai.routes(provider),
        *anthropic.routes(provider),
        *azure.routes(provider),
        *gemini.routes(provider),
        *control.routes(provider),
    ]
    not_found = control.not_found_handler(provider)
    app = FakeProviderApp(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.fake_state = provider.state
    app.state.fake_config = provider.config
    return app
