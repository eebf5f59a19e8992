"""API models build on first use (``defer_build``): a function pays only for the models it
validates; the stream function builds its store models at init, so no request pays for a schema."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import plain_env

_SCRIPT = """
from llm_gateway import composition
from llm_gateway.models.llm import LlmUpdate, StoredLlm
from llm_gateway.models.session import SessionRecord
from llm_gateway.settings import RegistrySettings, StreamSettings
loaded = [m.__name__ for m in (StoredLlm, SessionRecord, LlmUpdate, StreamSettings, RegistrySettings)
          if m.__pydantic_complete__]
composition.warm_request_models()
warmed = [m.__name__ for m in (StoredLlm, SessionRecord, LlmUpdate) if m.__pydantic_complete__]
print(loaded, warmed)
"""


def test_models_wait_for_first_use_and_the_stream_warms_its_own() -> None:
    # A fresh interpreter: in this one, other tests have long built every model.
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        env=plain_env(),
        check=True,
        timeout=60,
    ).stdout.strip()
    assert out == "[] ['StoredLlm', 'SessionRecord']"
