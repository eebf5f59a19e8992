"""The conformance engine: one live probe of an endpoint, judged on its raw bytes, as a ``Report``.

Used by the validator function, the on-demand routes, ``llm-gateway check`` and ``llms/test``,
so all four say the same thing about the same endpoint. The engine sends what the platform
will send (``stream: true``, a short user message, a small ``max_tokens``), reads the raw
response bytes itself (never an SDK: the customer's clients read bytes too), and hands them
to the spec's ``Provider``. It adds what only a live call can tell: address, connection, time
to first byte/token, a stream that stalls or is cut, and whether the endpoint rejects a wrong key.

Pure domain: the HTTP client and the URL guard come in through ``HttpPort`` (the composition
layer passes a guarded client whose failures are typed ``TransportError``s), so tests inject
fakes and no socket is opened here.

Semantics (DESIGN.md §4):

- ``compatible`` is false iff some check failed. For a LIVE probe an error answer (401, 404,
  429, 5xx, a redirect) is a failure even when its body is well formed: the endpoint does not
  work with this config. The provider's weaker ``conforms()`` ("the bytes follow the spec")
  is kept in ``details.specConforms`` for callers that want it (fixture verdicts).
- A check that cannot run because an earlier one failed is ``skip``, never ``fail``.
- ``errorCode`` is the gateway code of the first failed check.
- Several ``urls``: every URL is probed, all at once (the gateway fails over between them, so
  each must work). Checks of the first URL keep their plain ids; those of URL *n* > 1 get
  ``@n``, and every message names its URL. ``timings`` and ``endpoint`` describe the first URL.
- Deadlines: per URL, connect / first token / idle / total from the config's ``Timeouts``,
  with the total capped at ``max_total_s`` (30 s by default). A read blocks at most
  ``min(first token, idle, total)``, so one URL takes at most about total + that read timeout.
- Budget: a whole run may have a hard ``RunBudget`` (``budget``): every bound is cut to what is
  left of it, and what it cuts short fails or is skipped with a message and a hint naming it, so
  the report arrives by the deadline (plus one read). See ``budget`` for each caller's budget.
"""

from llm_gateway.domain.conformance.budget import RunBudget, config_test_budget, validator_budget
from llm_gateway.domain.conformance.config import (
    PROBE_MAX_TOKENS,
    EndpointConfig,
    HttpPort,
    ProbeConfigError,
    ProbeResponse,
    StreamingClient,
    build_probe_request,
    public_url,
)
from llm_gateway.domain.conformance.engine import DEFAULT_MAX_TOTAL_S, WRONG_KEY, run_conformance

__all__ = [
    "DEFAULT_MAX_TOTAL_S",
    "PROBE_MAX_TOKENS",
    "WRONG_KEY",
    "EndpointConfig",
    "HttpPort",
    "ProbeConfigError",
    "ProbeResponse",
    "RunBudget",
    "StreamingClient",
    "build_probe_request",
    "config_test_budget",
    "public_url",
    "run_conformance",
    "validator_budget",
]
