"""The concurrent-streams gauge (issue 22): under Lambda Managed Instances one environment serves
many streams, so the app counts them itself and emits the peak of each interval as EMF."""

from __future__ import annotations

import json

import pytest

from llm_gateway.adapters.metrics import ConcurrentStreams


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


def test_emit_writes_one_emf_record_with_the_peak_and_nothing_when_idle(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LlmGateway")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "llm-gateway-test")
    gauge = ConcurrentStreams()
    gauge.started()
    gauge.started()
    gauge.ended()
    gauge.emit()
    records = _emf_records(capsys.readouterr().out)
    assert [r["ConcurrentStreams"] for r in records] == [[2.0]]
    assert records[0]["service"] == "llm-gateway-test"
    gauge.ended()
    gauge.emit()  # the interval still had one stream open at its start
    gauge.emit()  # idle: nothing
    assert [r["ConcurrentStreams"] for r in _emf_records(capsys.readouterr().out)] == [[1.0]]


def test_the_app_samples_the_gauge_only_where_lambda_sends_many_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.stream_proxy.app import serves_many_streams

    monkeypatch.delenv("AWS_LAMBDA_MAX_CONCURRENCY", raising=False)
    assert not serves_many_streams()
    monkeypatch.setenv("AWS_LAMBDA_MAX_CONCURRENCY", "1")
    assert not serves_many_streams()
    monkeypatch.setenv("AWS_LAMBDA_MAX_CONCURRENCY", "256")
    assert serves_many_streams()
