"""The stream function's init (the app's lifespan, before the Web Adapter's readiness check)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

import functions.stream_proxy.app as stream_app
from llm_gateway import composition
from tests.integration.conftest import AwsStack


@pytest.fixture
def unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    gc.unfreeze()
    monkeypatch.setattr(stream_app, "_proxy", None)
    yield
    gc.unfreeze()


def test_init_loads_the_token_key_builds_the_proxy_and_freezes_what_it_built(
    aws: AwsStack, unfrozen: None
) -> None:
    """A request finds the key and the proxy ready; and the collector's full passes skip what init
    built (unfrozen, each one stopped every stream for ~200 ms in the local stack under load)."""
    asyncio.run(stream_app.warm_up())
    assert stream_app._proxy is not None
    assert composition.public_key_set.cache_info().currsize == 1
    assert gc.get_freeze_count() > 0
