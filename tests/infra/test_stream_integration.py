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


def test_the_stream_function_runs_behind_the_web_adapter(sam: Template) -> None:
    function = sam["Resources"]["StreamProxyFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert function["Handler"] == "run.sh"
    assert {"Ref": "LambdaWebAdapterLayerArn"} in function["Layers"], "the layer ARN is a parameter"
    assert function["Timeout"] > 300, "long enough for a session's answer"
