"""The stream route really streams: SAM's RESPONSE_STREAM must become the response-streaming
integration in the translated template (a plain `STREAM` value silently gives a buffered one)."""

from __future__ import annotations

import json
from typing import Any

from tests.infra import template_checks as tc
from tests.infra.template_checks import Template, props, resources, stream_function_id


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
    assert f"${{{stream_function_id(cfn)}Aliaslive}}" in uri, "the deployed stream function's alias"
    assert integration["responseTransferMode"] == "STREAM"
    assert integration["type"] == "aws_proxy"


def test_the_stream_may_run_fifteen_minutes_not_the_buffered_29_seconds(cfn: Template) -> None:
    """Without TimeoutInMillis the integration keeps the 29,000 ms default and cuts longer answers."""
    assert _chat_completions_integration(cfn)["timeoutInMillis"] == 900_000
    assert props(cfn["Resources"][stream_function_id(cfn)])["Timeout"] * 1000 == 900_000


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

    role = props(cfn["Resources"][stream_function_id(cfn)])["Role"]["Fn::GetAtt"][0]
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


# ---------------------------------------------------------------- issue 22: StreamCompute


def _deployed(sam: Template, variant: str) -> Template:
    params = tc.parameters_for(variant)
    return tc.with_conditions_applied(tc.translate(sam, params), params)


def test_each_stream_compute_deploys_exactly_one_stream_function_under_the_same_name(sam: Template) -> None:
    for variant, expected in zip(tc.STREAM_COMPUTE_VARIANTS, tc.STREAM_FUNCTIONS, strict=True):
        cfn = _deployed(sam, variant)
        deployed = [f for f in tc.STREAM_FUNCTIONS if f in cfn["Resources"]]
        assert deployed == [expected], variant
        function = props(cfn["Resources"][expected])
        assert function["FunctionName"] == {"Fn::Sub": "llm-gateway-${Stage}-stream-proxy"}
        assert function["LoggingConfig"] == {"LogGroup": {"Ref": "StreamProxyLogGroup"}}
        permissions = [
            props(p)["FunctionName"]
            for _, p in resources(cfn, "AWS::Lambda::Permission")
            if "/POST/v1/chat/completions" in json.dumps(props(p).get("SourceArn"))
        ]
        assert permissions == [{"Ref": f"{expected}Aliaslive"}], "API Gateway may invoke the alias it calls"


def test_both_stream_functions_have_the_same_code_permissions_and_environment(sam: Template) -> None:
    """The managed-instances function is the same function on other compute: a permission or a
    variable added to one only (the request log's writes were, in a merge) breaks the other."""
    on_lambda, managed = (props(sam["Resources"][f]) for f in tc.STREAM_FUNCTIONS)
    for key in ("CodeUri", "Handler", "Timeout", "Layers", "Environment", "Policies", "LoggingConfig"):
        assert managed.get(key) == on_lambda.get(key), key


def test_the_lambda_default_has_no_capacity_provider(sam: Template) -> None:
    cfn = _deployed(sam, "lambda")
    assert not list(resources(cfn, "AWS::Lambda::CapacityProvider"))
    function = props(cfn["Resources"]["StreamProxyFunction"])
    assert "CapacityProviderConfig" not in function
    assert function["MemorySize"] == {"Ref": "StreamMemorySize"}


def test_managed_instances_run_on_an_arm64_capacity_provider_in_the_given_vpc(sam: Template) -> None:
    cfn = _deployed(sam, "managed-instances")
    ((provider_id, provider),) = list(resources(cfn, "AWS::Lambda::CapacityProvider"))
    cp = props(provider)
    assert cp["VpcConfig"] == {
        "SubnetIds": {"Ref": "StreamSubnetIds"},
        "SecurityGroupIds": {"Ref": "StreamSecurityGroupIds"},
    }
    assert cp["InstanceRequirements"]["Architectures"] == ["arm64"]
    assert cp["CapacityProviderScalingConfig"]["MaxVCpuCount"] == {"Ref": "StreamMaxVCpuCount"}
    config = props(cfn["Resources"]["StreamProxyManagedFunction"])["CapacityProviderConfig"]
    lmi = config["LambdaManagedInstancesCapacityProviderConfig"]
    assert f"capacity-provider:${{{provider_id}}}" in lmi["CapacityProviderArn"]["Fn::Sub"]
    assert lmi["PerExecutionEnvironmentMaxConcurrency"] == {"Ref": "StreamPerEnvironmentMaxConcurrency"}
    assert lmi["ExecutionEnvironmentMemoryGiBPerVCpu"] == {"Ref": "StreamMemoryGiBPerVCpu"}
    assert props(cfn["Resources"]["StreamProxyManagedFunction"])["MemorySize"] == {
        "Ref": "StreamManagedMemorySize"
    }


def test_the_managed_instances_parameters_fit_what_lambda_accepts(sam: Template) -> None:
    """PerExecutionEnvironmentMaxConcurrency 1-1,600; 2, 4 or 8 GiB per vCPU; at least 2 GB."""
    params = sam["Parameters"]
    assert params["StreamCompute"]["Default"] == "lambda"
    assert params["StreamCompute"]["AllowedValues"] == ["lambda", "managed-instances"]
    concurrency = params["StreamPerEnvironmentMaxConcurrency"]
    assert concurrency["MinValue"] >= 1 and concurrency["MaxValue"] <= 1600
    assert sorted(params["StreamMemoryGiBPerVCpu"]["AllowedValues"]) == [2, 4, 8]
    assert params["StreamManagedMemorySize"]["MinValue"] >= 2048


def test_managed_instances_alarm_on_the_app_gauge_and_instance_cpu(sam: Template) -> None:
    """Streams are no longer one per execution: the fullest environment and the instances' CPU."""
    cfn = _deployed(sam, "managed-instances")
    watched = json.dumps([props(a) for _, a in resources(cfn, "AWS::CloudWatch::Alarm")])
    assert '"MetricName": "ConcurrentStreams"' in watched
    assert '"MetricName": "CPUUtilization"' in watched and '"CapacityProviderName"' in watched
    assert "ConcurrentStreams" in tc.emitted_metrics(), "the app emits the gauge the alarm watches"
    lambda_alarms = json.dumps(
        [props(a) for _, a in resources(_deployed(sam, "lambda"), "AWS::CloudWatch::Alarm")]
    )
    assert "ConcurrentStreams" not in lambda_alarms and "CapacityProviderName" not in lambda_alarms
