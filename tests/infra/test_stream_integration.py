"""The stream route really streams: SAM's RESPONSE_STREAM must become the response-streaming
integration in the translated template (a plain `STREAM` value silently gives a buffered one)."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.template_checks import Template, props, resources


def _chat_completions_integration(cfn: Template) -> dict[str, Any]:
    for _, api in resources(cfn, "AWS::ApiGateway::RestApi"):
        body = props(api).get("Body") or {}
        operation = body.get("paths", {}).get("/v1/chat/completions", {}).get("post")
        if operation:
            integration: dict[str, Any] = operation["x-amazon-apigateway-integration"]
            return integration
    raise AssertionError("no POST /v1/chat/completions in the translated REST API")


def test_chat_completions_uses_the_response_streaming_integration(cfn: Template) -> None:
    integration = _chat_completions_integration(cfn)
    uri = json.dumps(integration["uri"])
    assert "2021-11-15/functions/" in uri
    assert "/response-streaming-invocations" in uri
    assert "StreamProxyFunction" in uri
    assert integration["responseTransferMode"] == "STREAM"
    assert integration["type"] == "aws_proxy"


def test_the_stream_may_run_fifteen_minutes_not_the_buffered_29_seconds(cfn: Template) -> None:
    """Without TimeoutInMillis the integration keeps the 29,000 ms default and cuts longer answers."""
    assert _chat_completions_integration(cfn)["timeoutInMillis"] == 900_000
    assert props(cfn["Resources"]["StreamProxyFunction"])["Timeout"] * 1000 == 900_000


def test_the_relay_gives_up_before_the_integration_and_the_function_do(cfn: Template) -> None:
    """The longest per-LLM total plus the proxy's safety margin ends before the integration's
    timeout, so the client always gets a terminal event rather than a cut connection."""
    from llm_gateway.domain.proxy import LAMBDA_SAFETY_MARGIN_S
    from llm_gateway.models.llm import Timeouts

    longest_total_ms = next(m.le for m in Timeouts.model_fields["total_ms"].metadata if hasattr(m, "le"))
    timeout_ms = _chat_completions_integration(cfn)["timeoutInMillis"]
    assert longest_total_ms + LAMBDA_SAFETY_MARGIN_S * 1000 <= timeout_ms


def test_the_stream_function_runs_behind_the_web_adapter(sam: Template) -> None:
    function = sam["Resources"]["StreamProxyFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert function["Handler"] == "run.sh"
    layer = function["Layers"][0]["Fn::If"]
    assert layer[1] == {"Ref": "LambdaWebAdapterLayerArn"}, "the layer ARN can be overridden"
    assert "${AWS::Region}" in layer[2]["Fn::Sub"], "by default it is built from the region"
    assert function["Timeout"] > 300, "long enough for a session's answer"


def test_the_stream_reads_the_table_with_batch_get_item_only_and_writes_only_health_counters(
    cfn: Template,
) -> None:
    """Issue 10: the per-request freshness read (session + LLM) is one BatchGetItem, the only way
    the stream function's role may touch sessions and LLMs; issue 14: its traffic counters may be
    written, under ``HEALTH#`` partition keys only; issue 21: its request log, under its own."""
    from tests.infra.template_checks import iam_statements

    role = props(cfn["Resources"]["StreamProxyFunction"])["Role"]["Fn::GetAtt"][0]
    dynamodb = [
        st
        for st in iam_statements(cfn)
        if role in st.roles and st.allows and any(a.startswith("dynamodb:") for a in st.actions_lower)
    ]
    everywhere = [st for st in dynamodb if "Condition" not in st.body]
    assert [st.actions for st in everywhere] == [["dynamodb:BatchGetItem"]]
    assert everywhere[0].body["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}
    for st in dynamodb:
        if st is everywhere[0]:
            continue
        leading = st.body["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        assert leading in (["HEALTH#*"], ["REQLOG#*", "REQSESSION#*", "USAGE#*"]), st.body
        assert st.body["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}
