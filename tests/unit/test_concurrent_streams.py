"""The concurrent-streams gauge (issue 22): under Lambda Managed Instances one environment serves
many streams, so the app counts them itself and emits the peak of each interval as EMF."""

from __future__ import annotations

import json

import pytest

from llm_gateway.adapters.metrics import StreamMetrics
from llm_gateway.domain.concurrency import ConcurrentStreams
from llm_gateway.settings import StreamSettings


def _emf_records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and "_aws" in line]


def test_the_peak_of_an_interval_is_reported_even_after_the_streams_ended() -> None:
    gauge = ConcurrentStreams()
    for _ in range(3):
        gauge.started()
    gauge.ended()
    gauge.ended()
    assert gauge.open == 1
    assert gauge.take_peak() == 3
    assert gauge.take_peak() == 1, "the next interval starts from the streams still open"
    gauge.ended()
    assert gauge.take_peak() == 1
    assert gauge.take_peak() == 0


def test_each_interval_is_one_emf_record_of_its_peak_and_an_idle_one_is_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    metrics = StreamMetrics(enabled=True, namespace="LlmGateway")
    gauge = ConcurrentStreams()
    gauge.started()
    gauge.started()
    gauge.ended()
    metrics.concurrent_streams(gauge.take_peak())
    records = _emf_records(capsys.readouterr().out)
    assert [r["ConcurrentStreams"] for r in records] == [[2.0]]
    assert records[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LlmGateway"  # type: ignore[index]
    gauge.ended()
    metrics.concurrent_streams(gauge.take_peak())  # the interval still had one stream open at its start
    metrics.concurrent_streams(gauge.take_peak())  # idle: nothing
    assert [r["ConcurrentStreams"] for r in _emf_records(capsys.readouterr().out)] == [[1.0]]
    StreamMetrics(enabled=False).concurrent_streams(5)  # switched off by settings: nothing
    assert _emf_records(capsys.readouterr().out) == []


def test_the_app_samples_the_gauge_only_where_lambda_sends_many_streams() -> None:
    """Lambda Managed Instances sets AWS_LAMBDA_MAX_CONCURRENCY; classic Lambda does not."""
    from types import SimpleNamespace

    from functions.stream_proxy.app import serves_many_streams

    base = {
        "STAGE": "t", "TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "CREDENTIALS_KEY_ID": "k",
        "TOKEN_SIGNING_KEY_ID": "k2", "TOKEN_ISSUER": "https://issuer.example", "HOP_MARKER": "stack",
    }  # fmt: skip

    def runtime(environ: dict[str, str]) -> object:
        return SimpleNamespace(services=SimpleNamespace(settings=StreamSettings.from_environ(base | environ)))

    assert not serves_many_streams(runtime({}))  # type: ignore[arg-type]
    assert not serves_many_streams(runtime({"AWS_LAMBDA_MAX_CONCURRENCY": "1"}))  # type: ignore[arg-type]
    assert serves_many_streams(runtime({"AWS_LAMBDA_MAX_CONCURRENCY": "256"}))  # type: ignore[arg-type]
