"""The stream function's init (the app's lifespan, before the Web Adapter's readiness check)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

import functions.stream_proxy.app as stream_app
from tests.integration.conftest import AwsStack


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_init_loads_the_token_key_builds_the_proxy_and_freezes_what_it_built(
    aws: AwsStack, unfrozen: None
) -> None:
    """A request finds the key and the proxy ready; and the collector's full passes skip what init
    built (unfrozen, each one stopped every stream for ~200 ms in the local stack under load)."""
    runtime = stream_app.create_app(aws.stream).state.runtime
    asyncio.run(runtime.warm_up())
    assert runtime.proxy is not None
    assert "public_key_set" in aws.stream.__dict__, "the token key is loaded"
    assert gc.get_freeze_count() > 0
