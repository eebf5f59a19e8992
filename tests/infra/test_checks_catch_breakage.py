"""The checkers are not vacuous: break one property in a copy of template.yaml, re-translate, and
the matching checker must report it, naming the offending resource or statement.

A few positive controls show that what the rules allow (a decrypting validator, the public JWKS
route, the correct gateway-response form) does pass.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.infra import template_checks as tc
from tests.infra.template_checks import Template

Mutation = Callable[[Template], None]
Checker = Callable[[Template, Template], list[str]]


def _pop(doc: Template, *path: str) -> None:
    """Delete doc[path[0]]...[path[-1]]."""
    for key in path[:-1]:
        doc = doc[key]
    del doc[path[-1]]


def _set(sam: Template, resource: str, key: str, value: Any) -> None:
    sam["Resources"][resource]["Properties"][key] = value


def _statements(sam: Template, fn: str) -> list[dict[str, Any]]:
    return list(sam["Resources"][fn]["Properties"]["Policies"][0]["Statement"])


def _add_statement(sam: Template, fn: str, statement: dict[str, Any]) -> None:
    sam["Resources"][fn]["Properties"]["Policies"][0]["Statement"].append(statement)


def _add_function(sam: Template, name: str, statements: list[dict[str, Any]]) -> None:
    """A new function shaped like the authorizer (own log group, inline policy)."""
    fn = copy.deepcopy(sam["Resources"]["AuthorizerFunction"])
    lg = copy.deepcopy(sam["Resources"]["AuthorizerLogGroup"])
    fn["Properties"]["FunctionName"] = {"Fn::Sub": f"llm-gateway-${{Stage}}-{name.lower()}"}
    fn["Properties"]["LoggingConfig"] = {"LogGroup": {"Ref": f"{name}LogGroup"}}
    fn["Properties"]["Policies"] = [{"Version": "2012-10-17", "Statement": statements}]
    lg["Properties"]["LogGroupName"] = {"Fn::Sub": f"/aws/lambda/llm-gateway-${{Stage}}-{name.lower()}"}
    sam["Resources"][name] = fn
    sam["Resources"][f"{name}LogGroup"] = lg


def _set_event_auth(sam: Template, fn: str, event: str, authorizer: str) -> None:
    sam["Resources"][fn]["Properties"]["Events"][event]["Properties"]["Auth"] = {"Authorizer": authorizer}


def _add_api_event(
    sam: Template, fn: str, event: str, method: str, path: str, authorizer: str | None
) -> None:
    props: dict[str, Any] = {"RestApiId": {"Ref": "Api"}, "Path": path, "Method": method}
    if authorizer:
        props["Auth"] = {"Authorizer": authorizer}
    sam["Resources"][fn]["Properties"]["Events"][event] = {"Type": "Api", "Properties": props}


def _gateway(sam: Template, rtype: str, template: str) -> None:
    responses = sam["Resources"]["Api"]["Properties"]["GatewayResponses"]
    responses.setdefault(rtype, {})["ResponseTemplates"] = {"application/json": template}


_SECRET = {"Fn::Sub": tc.SECRET_ARN_PREFIX + tc.SECRET_NAME_PREFIX + "*"}
_PLATFORM = {"Fn::Sub": tc.SECRET_ARN_PREFIX + tc.PLATFORM_SECRETS}


def _sid(sam: Template, fn: str, sid: str) -> dict[str, Any]:
    return next(st for st in _statements(sam, fn) if st.get("Sid") == sid)


def _event(sam: Template, fn: str, event: str) -> dict[str, Any]:
    props: dict[str, Any] = sam["Resources"][fn]["Properties"]["Events"][event]["Properties"]
    return props


def _chat_integration(sam: Template) -> dict[str, Any]:
    """The stream route's integration, written in the API's DefinitionBody."""
    paths = sam["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]
    integration: dict[str, Any] = paths["/v1/chat/completions"]["post"]["x-amazon-apigateway-integration"]
    return integration


def _api(sam: Template) -> dict[str, Any]:
    props: dict[str, Any] = sam["Resources"]["Api"]["Properties"]
    return props


def _target(sam: Template) -> dict[str, Any]:
    target: dict[str, Any] = sam["Resources"]["LlmChangedRule"]["Properties"]["Targets"][0]
    return target


def _drop(sam: Template, *resources: str) -> None:
    for resource in resources:
        sam["Resources"].pop(resource)
    for name, output in list(sam.get("Outputs", {}).items()):
        if any(r in json.dumps(output) for r in resources):
            sam["Outputs"].pop(name)


def _dashboard(sam: Template, old: str, new: str) -> None:
    body = sam["Resources"]["StreamDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body[0] = body[0].replace(old, new)


_KEY = {"Fn::GetAtt": ["CredentialsKey", "Arn"]}
_CONTEXT = {"StringEquals": {"kms:EncryptionContext:tenant_id": "t"}}
_DECRYPT_OK = {
    "Sid": "Decrypt",
    "Effect": "Allow",
    "Action": "kms:Decrypt",
    "Resource": _KEY,
    "Condition": _CONTEXT,
}
_READ_SECRET = {
    "Sid": "ReadSecret",
    "Effect": "Allow",
    "Action": "secretsmanager:GetSecretValue",
    "Resource": _SECRET,
}
_FIXED_5XX = '{"error": {"code": "gateway_error", "message": $context.error.messageString}}'


def _cfn_only(check: Callable[[Template], list[str]]) -> Checker:
    return lambda _sam, cfn: check(cfn)


def _sam_only(check: Callable[[Template], list[str]]) -> Checker:
    return lambda sam, _cfn: check(sam)


BREAKAGES: list[tuple[str, Mutation, Checker, str]] = [
    # -------------------------------------------------------------- issue 12: deployable for real
    (
        "stream-timeout-default",
        lambda s: _chat_integration(s).pop("timeoutInMillis"),
        _cfn_only(tc.check_streaming_timeout),
        "timeoutInMillis is None",
    ),
    (
        "stream-timeout-below-function",
        lambda s: _chat_integration(s).update(timeoutInMillis=600_000),
        _cfn_only(tc.check_streaming_timeout),
        "timeoutInMillis 600000 differs from StreamProxyFunction Timeout 900",
    ),
    (
        "api-key-from-header",
        lambda s: _api(s).update(ApiKeySourceType="HEADER"),
        _cfn_only(tc.check_usage_plan_wiring),
        "Api: ApiKeySourceType is 'HEADER'",
    ),
    (
        "no-api-key-required",
        lambda s: (_api(s)["Auth"].pop("ApiKeyRequired"), _drop_api_key_opt_outs(s)),
        _cfn_only(tc.check_usage_plan_wiring),
        "Api GET /v1/llms: authorized but no API key required",
    ),
    (
        "public-route-needs-a-key",
        lambda s: _event(s, "SessionTokensFunction", "Jwks")["Auth"].pop("ApiKeyRequired"),
        _cfn_only(tc.check_usage_plan_wiring),
        "Api GET /.well-known/jwks.json: requires an API key but has no authorizer",
    ),
    (
        "usage-plan-fixed-throttle",
        lambda s: s["Resources"]["AccountUsagePlan"]["Properties"]["Throttle"].update(RateLimit=100),
        _cfn_only(tc.check_usage_plan_wiring),
        "AccountUsagePlan: Throttle.RateLimit is 100",
    ),
    (
        "no-usage-plan",
        lambda s: _drop(s, "AccountUsagePlan"),
        _cfn_only(tc.check_usage_plan_wiring),
        "no AWS::ApiGateway::UsagePlan",
    ),
    (
        "no-chat-throttle",
        lambda s: _api(s)["MethodSettings"].pop(1),
        _cfn_only(tc.check_method_throttles),
        "no MethodSettings for POST /~1v1~1chat~1completions",
    ),
    (
        "throttle-path-not-encoded",
        lambda s: _api(s)["MethodSettings"][2].update(ResourcePath="/v1/auth/session-token"),
        _cfn_only(tc.check_method_throttles),
        "MethodSettings /v1/auth/session-token names no route",
    ),
    (
        "mint-throttle-fixed",
        lambda s: _api(s)["MethodSettings"][3].update(ThrottlingRateLimit=100),
        _cfn_only(tc.check_method_throttles),
        "MethodSettings POST /~1v1~1session-token: ThrottlingRateLimit is 100",
    ),
    (
        "legacy-stage",
        lambda s: _api(s).pop("OpenApiVersion"),
        _cfn_only(tc.check_single_stage),
        "creates the extra stage 'Stage'",
    ),
    (
        "no-access-logs",
        lambda s: _api(s).pop("AccessLogSetting"),
        _cfn_only(tc.check_access_logs),
        "ApiStage: AccessLogSetting.DestinationArn",
    ),
    (
        "access-logs-not-json",
        lambda s: _api(s)["AccessLogSetting"].update(Format="$context.requestId $context.status"),
        _cfn_only(tc.check_access_logs),
        "ApiStage: access log Format is not one JSON object",
    ),
    (
        "access-logs-no-latency",
        lambda s: _api(s)["AccessLogSetting"].update(Format='{"requestId":"$context.requestId"}'),
        _cfn_only(tc.check_access_logs),
        "lacks ['errorType', 'httpMethod', 'integrationLatency'",
    ),
    (
        "table-fixed-name",
        lambda s: _set(s, "Table", "TableName", {"Fn::Sub": "llm-gateway-${Stage}"}),
        _cfn_only(tc.check_table_redeployable),
        "Table: fixed TableName",
    ),
    (
        "table-deleted-with-the-stack",
        lambda s: s["Resources"]["Table"].update(DeletionPolicy="Delete"),
        _cfn_only(tc.check_table_redeployable),
        "Table: DeletionPolicy is 'Delete'",
    ),
    (
        "layer-one-region",
        lambda s: _set(
            s,
            "StreamProxyFunction",
            "Layers",
            ["arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerArm64:25"],
        ),
        _cfn_only(tc.check_web_adapter_layer),
        "StreamProxyFunction: Layers",
    ),
    (
        "no-reserved-authorizer",
        lambda s: s["Resources"]["AuthorizerFunction"]["Properties"].pop("ReservedConcurrentExecutions"),
        _cfn_only(tc.check_capacity_parameters),
        "AuthorizerFunction: ReservedConcurrentExecutions is null",
    ),
    (
        "fixed-stream-memory",
        lambda s: _set(s, "StreamProxyFunction", "MemorySize", 1024),
        _cfn_only(tc.check_capacity_parameters),
        "StreamProxyFunction: MemorySize is 1024",
    ),
    (
        "batch-of-five",
        lambda s: _set(s, "ValidatorQueueMapping", "BatchSize", 5),
        _cfn_only(tc.check_queue_consumers),
        "ValidatorQueueMapping: BatchSize 5",
    ),
    (
        "short-visibility",
        lambda s: _set(s, "ValidationQueue", "VisibilityTimeout", 300),
        _cfn_only(tc.check_queue_consumers),
        "ValidationQueue: VisibilityTimeout 300 s is less than 6 x ValidatorFunction Timeout 90 s",
    ),
    (
        "validator-timeout-below-budget",
        lambda s: _set(s, "ValidatorFunction", "Timeout", 60),
        _cfn_only(tc.check_validation_budgets),
        "ValidatorFunction: Timeout 60 s is less than the validation budget 75 s + margin 10 s",
    ),
    (
        "validate-requests-not-routed",
        lambda s: s["Resources"]["LlmChangedRule"]["Properties"]["EventPattern"].update(
            {"detail-type": ["LLM Registered", "LLM Updated"]}
        ),
        _cfn_only(tc.check_validation_budgets),
        "no rule sends 'LLM Validation Requested' events to ValidationQueue",
    ),
    (
        "unbounded-validation",
        lambda s: s["Resources"]["ValidatorQueueMapping"]["Properties"].pop("ScalingConfig"),
        _cfn_only(tc.check_queue_consumers),
        "ValidatorQueueMapping: no ScalingConfig.MaximumConcurrency",
    ),
    (
        "rule-without-dlq",
        lambda s: _target(s).pop("DeadLetterConfig"),
        _cfn_only(tc.check_rule_targets),
        "LlmChangedRule target validation-queue: no DeadLetterConfig",
    ),
    (
        "rule-without-retry-policy",
        lambda s: _target(s).pop("RetryPolicy"),
        _cfn_only(tc.check_rule_targets),
        "LlmChangedRule target validation-queue: no RetryPolicy",
    ),
    (
        "rule-dlq-closed",
        lambda s: _drop(s, "LlmEventsDeadLetterQueuePolicy"),
        _cfn_only(tc.check_rule_targets),
        "dead-letter queue LlmEventsDeadLetterQueue has no policy",
    ),
    (
        "context-keys-unguarded",
        lambda s: _sid(s, "ValidatorFunction", "DecryptTenantBoundCredentials")["Condition"].pop("Null"),
        _cfn_only(tc.check_encryption_context_guards),
        "(Sid DecryptTenantBoundCredentials): ForAllValues:StringEquals on kms:EncryptionContextKeys without",
    ),
    (
        "registry-without-decrypt",
        lambda s: _sid(s, "RegistryFunction", "SecretsManagerEnvelopeOnly").update(
            Action="kms:GenerateDataKey"
        ),
        _cfn_only(tc.check_secrets_manager_cmk_permissions),
        "RegistryFunctionRole: writes secrets under CredentialsKey without kms:decrypt",
    ),
    (
        "registry-decrypts-directly",
        lambda s: _sid(s, "RegistryFunction", "SecretsManagerEnvelopeOnly")["Condition"]["StringEquals"].pop(
            "kms:ViaService"
        ),
        _cfn_only(tc.check_decrypt_only_on_allowed_functions),
        "(Sid SecretsManagerEnvelopeOnly): grants ['kms:decrypt'] to RegistryFunction",
    ),
    (
        "registry-decrypt-and-read",
        lambda s: _add_statement(s, "RegistryFunction", {**_READ_SECRET, "Resource": _SECRET}),
        _cfn_only(tc.check_decrypt_only_on_allowed_functions),
        "(Sid SecretsManagerEnvelopeOnly): grants ['kms:decrypt'] to RegistryFunction",
    ),
    (
        "registry-whole-stage",
        lambda s: _sid(s, "RegistryFunction", "ManageCustomerSecrets").update(Resource=_SECRET),
        _cfn_only(tc.check_secret_scopes),
        "(Sid ManageCustomerSecrets): secret scope 'llm-gateway/${Stage}/*'",
    ),
    (
        "validator-reads-platform",
        lambda s: _add_statement(s, "ValidatorFunction", {**_READ_SECRET, "Resource": _PLATFORM}),
        _cfn_only(tc.check_secret_scopes),
        "(Sid ReadSecret): gives ValidatorFunction the platform secrets",
    ),
    (
        "validator-reads-webhook-secrets",
        lambda s: _add_statement(
            s,
            "ValidatorFunction",
            {**_READ_SECRET, "Resource": {"Fn::Sub": tc.SECRET_ARN_PREFIX + tc.WEBHOOK_SECRETS}},
        ),
        _cfn_only(tc.check_secret_scopes),
        "(Sid ReadSecret): gives ValidatorFunction the webhook signing secrets",
    ),
    (
        "stream-writes-any-item",
        lambda s: _sid(s, "StreamProxyFunction", "WriteHealthCountersOnly").pop("Condition"),
        _cfn_only(tc.check_stream_writes_health_only),
        "StreamProxyFunction: dynamodb:putitem on the table without a HEALTH# (or request log) leading-key condition",
    ),
    (
        "stream-writes-sessions",
        lambda s: _sid(s, "StreamProxyFunction", "WriteRequestLogOnly")["Condition"][
            "ForAllValues:StringLike"
        ]["dynamodb:LeadingKeys"].append("SESSION#*"),
        _cfn_only(tc.check_stream_writes_health_only),
        "StreamProxyFunction: dynamodb:batchwriteitem on the table without a HEALTH# (or request log) leading-key condition",
    ),
    (
        "schedule-role-invokes-more",
        lambda s: s["Resources"]["RevalidationScheduleRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ][0].update(Resource={"Fn::GetAtt": ["ValidatorFunction", "Arn"]}),
        _cfn_only(tc.check_schedules),
        "RevalidationSchedule: role RevalidationScheduleRole grants ['lambda:invokefunction'] on ['ValidatorFunction']",
    ),
    (
        "schedule-window-mismatch",
        lambda s: s["Resources"]["RevalidationSchedule"]["Properties"].update(
            ScheduleExpression="rate(30 minutes)"
        ),
        _cfn_only(tc.check_schedules),
        "RevalidationSchedule: windowSeconds 900 must equal the rate",
    ),
    (
        "registry-writes-platform",
        lambda s: _add_statement(
            s,
            "RegistryFunction",
            {
                "Sid": "Overwrite",
                "Effect": "Allow",
                "Action": "secretsmanager:PutSecretValue",
                "Resource": _PLATFORM,
            },
        ),
        _cfn_only(tc.check_secret_scopes),
        "(Sid Overwrite): may change platform secrets",
    ),
    (
        "validator-envelope-whole-stage",
        lambda s: _sid(s, "ValidatorFunction", "DecryptSecretsManagerEnvelope")["Condition"][
            "StringLike"
        ].update({"kms:EncryptionContext:SecretARN": _SECRET}),
        _cfn_only(tc.check_secret_scopes),
        "(Sid DecryptSecretsManagerEnvelope): secret scope 'llm-gateway/${Stage}/*'",
    ),
    (
        "no-dlq-alarm",
        lambda s: _drop(s, "ValidationDeadLetterAlarm"),
        _cfn_only(tc.check_alarms),
        "ValidationDeadLetterQueue: no alarm on its depth",
    ),
    (
        "no-event-dlq-alarm",
        lambda s: _drop(s, "LlmEventsDeadLetterAlarm"),
        _cfn_only(tc.check_alarms),
        "LlmEventsDeadLetterQueue: no alarm on its depth",
    ),
    (
        "no-throttle-alarm",
        lambda s: _drop(s, "StreamProxyFunctionThrottlesAlarm"),
        _cfn_only(tc.check_alarms),
        "StreamProxyFunction: no alarm on Throttles",
    ),
    (
        "no-error-alarm",
        lambda s: _drop(s, "AuthorizerFunctionErrorsAlarm"),
        _cfn_only(tc.check_alarms),
        "AuthorizerFunction: no alarm on Errors",
    ),
    (
        "no-5xx-alarm",
        lambda s: _drop(s, "Api5xxRateAlarm"),
        _cfn_only(tc.check_alarms),
        "no alarm on the API's 5XXError rate",
    ),
    (
        "no-stream-error-alarm",
        lambda s: _drop(s, "StreamErrorsByCodeAlarm"),
        _cfn_only(tc.check_alarms),
        "no alarm on stream errors by code",
    ),
    (
        "no-mint-alarm",
        lambda s: _drop(s, "MintThrottledAlarm"),
        _cfn_only(tc.check_alarms),
        "no alarm on mint throttles",
    ),
    (
        "no-concurrency-alarm",
        lambda s: _drop(s, "ConcurrencyNearLimitAlarm"),
        _cfn_only(tc.check_alarms),
        "no alarm on account concurrency",
    ),
    (
        "silent-alarm",
        lambda s: s["Resources"]["Api5xxRateAlarm"]["Properties"].pop("AlarmActions"),
        _cfn_only(tc.check_alarms),
        "Api5xxRateAlarm: notifies no SNS topic",
    ),
    (
        "topic-fixed-name",
        lambda s: _set(s, "AlarmTopic", "TopicName", "alarms"),
        _cfn_only(tc.check_alarms),
        'AlarmTopic: TopicName "alarms" is not named by a parameter',
    ),
    (
        "dashboard-metric-typo",
        lambda s: _dashboard(s, "TimeToFirstToken", "TimeToFirstByte"),
        _cfn_only(tc.check_stream_dashboard),
        "charts TimeToFirstByte, which the stream app never emits",
    ),
    (
        "dashboard-no-p95",
        lambda s: _dashboard(s, '"stat": "p95"', '"stat": "p90"'),
        _cfn_only(tc.check_stream_dashboard),
        "StreamDashboard: no TimeToFirstToken p95",
    ),
    (
        "dashboard-other-service",
        lambda s: s["Globals"]["Function"]["Environment"]["Variables"].update(
            POWERTOOLS_SERVICE_NAME="llm-gateway"
        ),
        _cfn_only(tc.check_stream_dashboard),
        "StreamDashboard: does not chart namespace/service 'LlmGateway'/'llm-gateway'",
    ),
    (
        "logging-policy-on-a-function",
        lambda s: s["Resources"]["RegistryFunction"]["Properties"]["Policies"].append(
            "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
        ),
        _cfn_only(tc.check_managed_policies),
        "RegistryFunctionRole: managed policy",
    ),
    (
        "runtime",
        lambda s: _set(s, "RegistryFunction", "Runtime", "python3.12"),
        _cfn_only(tc.check_function_runtime),
        "RegistryFunction: Runtime",
    ),
    (
        "architecture",
        lambda s: _set(s, "AuthorizerFunction", "Architectures", ["x86_64"]),
        _cfn_only(tc.check_function_runtime),
        "AuthorizerFunction: Architectures",
    ),
    (
        "tracing",
        lambda s: _set(s, "RegistryFunction", "Tracing", "PassThrough"),
        _cfn_only(tc.check_function_runtime),
        "RegistryFunction: TracingConfig",
    ),
    (
        "no-log-group",
        lambda s: (
            _pop(s, "Resources", "RegistryFunction", "Properties", "LoggingConfig"),
            _pop(s, "Resources", "RegistryLogGroup"),
        ),
        _cfn_only(tc.check_function_log_groups),
        "RegistryFunction: no AWS::Logs::LogGroup",
    ),
    (
        "shared-log-group",
        lambda s: _set(s, "AuthorizerFunction", "LoggingConfig", {"LogGroup": {"Ref": "RegistryLogGroup"}}),
        _cfn_only(tc.check_function_log_groups),
        "log group RegistryLogGroup is shared",
    ),
    (
        "no-retention",
        lambda s: s["Resources"]["RegistryLogGroup"]["Properties"].pop("RetentionInDays"),
        _cfn_only(tc.check_function_log_groups),
        "RegistryFunction: log group RegistryLogGroup has no RetentionInDays",
    ),
    (
        "no-common-layer",
        lambda s: s["Globals"]["Function"].pop("Layers"),
        _cfn_only(tc.check_function_layers),
        "AuthorizerFunction: Layers",
    ),
    (
        "log-event-on-function",
        lambda s: _set(
            s, "RegistryFunction", "Environment", {"Variables": {"POWERTOOLS_LOGGER_LOG_EVENT": "true"}}
        ),
        tc.check_powertools_env,
        "RegistryFunction: environment POWERTOOLS_LOGGER_LOG_EVENT",
    ),
    (
        "log-event-global-missing",
        lambda s: s["Globals"]["Function"]["Environment"]["Variables"].pop("POWERTOOLS_LOGGER_LOG_EVENT"),
        tc.check_powertools_env,
        "Globals.Function.Environment: POWERTOOLS_LOGGER_LOG_EVENT",
    ),
    (
        "capture-response-global",
        lambda s: s["Globals"]["Function"]["Environment"]["Variables"].update(
            POWERTOOLS_TRACER_CAPTURE_RESPONSE="true"
        ),
        tc.check_powertools_env,
        "Globals.Function.Environment: POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    ),
    (
        "managed-policy",
        lambda s: s["Resources"]["RegistryFunction"]["Properties"]["Policies"].append(
            "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"
        ),
        _cfn_only(tc.check_managed_policies),
        "RegistryFunctionRole: managed policy",
    ),
    (
        "resource-star",
        lambda s: _add_statement(
            s,
            "AuthorizerFunction",
            {"Sid": "Star", "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"},
        ),
        _cfn_only(tc.check_no_wildcard_resources),
        "AuthorizerFunctionRole policy AuthorizerFunctionRolePolicy0 statement #1 (Sid Star): Resource is '*'",
    ),
    (
        "action-star",
        lambda s: _add_statement(
            s, "AuthorizerFunction", {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": _KEY}
        ),
        _cfn_only(tc.check_no_wildcard_actions),
        "(Sid All): wildcard action '*'",
    ),
    (
        "service-star",
        lambda s: _statements(s, "RegistryFunction")[0].update(Action=["dynamodb:*"]),
        _cfn_only(tc.check_no_wildcard_actions),
        "(Sid ReadWriteTable): wildcard action 'dynamodb:*'",
    ),
    (
        "two-resources",
        lambda s: _statements(s, "AuthorizerFunction")[0].update(
            Resource=[{"Fn::GetAtt": ["Table", "Arn"]}, {"Fn::Sub": "${Table.Arn}/index/*"}]
        ),
        _cfn_only(tc.check_one_resource_per_statement),
        "(Sid ReadApiKeyHashesRecordLastUse): names 2 resources",
    ),
    (
        "secrets-outside-prefix",
        lambda s: _statements(s, "RegistryFunction")[1].update(
            Resource={
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"
            }
        ),
        _cfn_only(tc.check_secrets_scoped_to_stage_prefix),
        "(Sid ManageCustomerSecrets): Secrets Manager resource",
    ),
    (
        "secrets-other-stage",
        lambda s: _statements(s, "RegistryFunction")[1].update(
            Resource={"Fn::Sub": tc.SECRET_ARN_PREFIX + "llm-gateway/*"}
        ),
        _cfn_only(tc.check_secrets_scoped_to_stage_prefix),
        "(Sid ManageCustomerSecrets): Secrets Manager resource",
    ),
    (
        "decrypt-on-registry",
        lambda s: _add_statement(s, "RegistryFunction", dict(_DECRYPT_OK)),
        _cfn_only(tc.check_decrypt_only_on_allowed_functions),
        "(Sid Decrypt): grants ['kms:decrypt'] to RegistryFunction",
    ),
    (
        "get-secret-on-authorizer",
        lambda s: _add_statement(s, "AuthorizerFunction", dict(_READ_SECRET)),
        _cfn_only(tc.check_decrypt_only_on_allowed_functions),
        "(Sid ReadSecret): grants ['secretsmanager:getsecretvalue'] to AuthorizerFunction",
    ),
    (
        "decrypt-without-context",
        lambda s: _add_function(
            s, "ValidatorFunction", [{k: v for k, v in _DECRYPT_OK.items() if k != "Condition"}]
        ),
        _cfn_only(tc.check_decrypt_has_encryption_context),
        "ValidatorFunctionRole policy ValidatorFunctionRolePolicy0 statement #0 (Sid Decrypt): grants kms:Decrypt "
        "without a kms:EncryptionContext condition",
    ),
    (
        "decrypt-with-unrelated-condition",
        lambda s: _add_function(
            s,
            "StreamProxyFunction",
            [
                {
                    **_DECRYPT_OK,
                    "Condition": {
                        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
                    },
                }
            ],
        ),
        _cfn_only(tc.check_decrypt_has_encryption_context),
        "StreamProxyFunctionRole policy StreamProxyFunctionRolePolicy0 statement #0 (Sid Decrypt)",
    ),
    (
        "no-default-authorizer",
        lambda s: (
            _pop(s, "Resources", "Api", "Properties", "Auth", "DefaultAuthorizer"),
            # SAM rejects `Authorizer: NONE` once there is no default to opt out of.
            _drop_public_route_opt_outs(s),
        ),
        _sam_only(tc.check_default_authorizer),
        "Api: Auth.DefaultAuthorizer is not set",
    ),
    (
        "token-authorizer",
        lambda s: s["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["AccountKeyAuthorizer"].update(
            FunctionPayloadType="TOKEN", Identity={"Header": "Authorization"}
        ),
        _sam_only(tc.check_default_authorizer),
        "Api: DefaultAuthorizer 'AccountKeyAuthorizer' FunctionPayloadType is 'TOKEN'",
    ),
    (
        "token-authorizer-translated",
        lambda s: s["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["AccountKeyAuthorizer"].update(
            FunctionPayloadType="TOKEN", Identity={"Header": "Authorization"}
        ),
        tc.check_translated_routes_use_authorizer,
        "Api: securityDefinitions.AccountKeyAuthorizer authorizer type is 'token'",
    ),
    (
        "event-without-auth",
        lambda s: _set_event_auth(s, "RegistryFunction", "GetLlm", "NONE"),
        _sam_only(tc.check_api_events_use_authorizer),
        "RegistryFunction event GetLlm GET /v1/llms/{id}: Authorizer is 'NONE'",
    ),
    (
        "route-without-auth-translated",
        lambda s: _set_event_auth(s, "RegistryFunction", "DeleteLlm", "NONE"),
        tc.check_translated_routes_use_authorizer,
        "Api DELETE /v1/llms/{id}: security",
    ),
    (
        "public-path-wrong-method",
        lambda s: _add_api_event(s, "RegistryFunction", "PostJwks", "POST", "/.well-known/jwks.json", "NONE"),
        tc.check_translated_routes_use_authorizer,
        "Api POST /.well-known/jwks.json",
    ),
    (
        "implicit-api",
        lambda s: _pop(
            s, "Resources", "RegistryFunction", "Properties", "Events", "ListLlms", "Properties", "RestApiId"
        ),
        _sam_only(tc.check_api_events_use_authorizer),
        "RegistryFunction event ListLlms ('GET', '/v1/llms'): no RestApiId",
    ),
    (
        "implicit-api-translated",
        lambda s: _pop(
            s, "Resources", "RegistryFunction", "Properties", "Events", "ListLlms", "Properties", "RestApiId"
        ),
        tc.check_translated_routes_use_authorizer,
        "ServerlessRestApi: REST API has no DefaultAuthorizer",
    ),
    (
        "gateway-not-json",
        lambda s: _gateway(s, "THROTTLED", "Too many requests"),
        _cfn_only(tc.check_gateway_response_templates),
        "Api gateway response THROTTLED [application/json]: not valid JSON",
    ),
    (
        "gateway-wrong-shape",
        lambda s: _gateway(s, "UNAUTHORIZED", '{"message": $context.error.messageString}'),
        _cfn_only(tc.check_gateway_response_templates),
        "Api gateway response UNAUTHORIZED [application/json]: not of the shape",
    ),
    (
        "gateway-missing-code",
        lambda s: _gateway(s, "ACCESS_DENIED", '{"error": {"message": "no"}}'),
        _cfn_only(tc.check_gateway_response_templates),
        "Api gateway response ACCESS_DENIED [application/json]: error.code is missing",
    ),
    (
        "gateway-raw-message-unquoted",
        lambda s: _gateway(
            s, "REQUEST_TOO_LARGE", '{"error": {"code": "x", "message": $context.error.message}}'
        ),
        _cfn_only(tc.check_gateway_response_templates),
        "Api gateway response REQUEST_TOO_LARGE [application/json]: not valid JSON",
    ),
    (
        "gateway-no-template",
        lambda s: s["Resources"]["Api"]["Properties"]["GatewayResponses"].update(
            BAD_REQUEST_BODY={"StatusCode": 400}
        ),
        _cfn_only(tc.check_gateway_response_templates),
        "Api gateway response BAD_REQUEST_BODY: has no response template",
    ),
    (
        "table-provisioned",
        lambda s: (
            _set(s, "Table", "BillingMode", "PROVISIONED"),
            _set(s, "Table", "ProvisionedThroughput", {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}),
        ),
        _cfn_only(tc.check_tables),
        "Table: BillingMode is 'PROVISIONED'",
    ),
    (
        "table-ttl-attribute",
        lambda s: _set(s, "Table", "TimeToLiveSpecification", {"AttributeName": "expires", "Enabled": True}),
        _cfn_only(tc.check_tables),
        "Table: TimeToLiveSpecification",
    ),
    (
        "table-no-pitr",
        lambda s: s["Resources"]["Table"]["Properties"].pop("PointInTimeRecoverySpecification"),
        _cfn_only(tc.check_tables),
        "Table: point-in-time recovery is not enabled",
    ),
    (
        "405-allow-out-of-date",
        lambda s: _any_method(s, "/v1/llms/{id}")["x-amazon-apigateway-integration"]["responses"]["default"][
            "responseParameters"
        ].update({"method.response.header.Allow": "'GET, PUT'"}),
        tc.check_method_not_allowed,
        "Api /v1/llms/{id}: Allow lists ['GET', 'PUT'], the path serves ['DELETE', 'GET', 'PUT']",
    ),
    (
        "405-missing-for-a-path",
        lambda s: _pop(s, "Resources", "Api", "Properties", "DefinitionBody", "paths", "/v1/llms/test"),
        tc.check_method_not_allowed,
        "Api /v1/llms/test: no x-amazon-apigateway-any-method mock answering 405",
    ),
    (
        "405-new-route-without-one",
        lambda s: _add_api_event(s, "RegistryFunction", "Extra", "GET", "/v1/extra", None),
        tc.check_method_not_allowed,
        "Api /v1/extra: no x-amazon-apigateway-any-method mock answering 405",
    ),
    (
        "key-no-rotation",
        lambda s: _set(s, "CredentialsKey", "EnableKeyRotation", False),
        _cfn_only(tc.check_credentials_key_rotation),
        "CredentialsKey: EnableKeyRotation is False",
    ),
]


def _any_method(sam: Template, path: str) -> dict[str, Any]:
    paths = sam["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]
    return paths[path]["x-amazon-apigateway-any-method"]  # type: ignore[no-any-return]


def _translated(sam: Template, mutate: Mutation) -> tuple[Template, Template]:
    broken = copy.deepcopy(sam)
    mutate(broken)
    return broken, tc.with_conditions_applied(tc.translate(broken))


@pytest.mark.parametrize(
    ("mutate", "check", "expected"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_checker_reports_the_breakage(sam: Template, mutate: Mutation, check: Checker, expected: str) -> None:
    broken, cfn = _translated(sam, mutate)
    problems = check(broken, cfn)
    assert any(expected in p for p in problems), f"expected a problem containing {expected!r}, got {problems}"


def test_key_policy_star_is_exempt_but_the_same_statement_in_a_role_is_not(cfn: Template) -> None:
    key_policy = cfn["Resources"]["CredentialsKey"]["Properties"]["KeyPolicy"]
    assert any(st.get("Resource") == "*" for st in key_policy["Statement"]), "fixture assumption changed"
    assert not tc.check_no_wildcard_resources(cfn)
    role = cfn["Resources"]["RegistryFunctionRole"]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Sid": "Copied", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}
    )
    problems = tc.check_no_wildcard_resources(cfn)
    assert any("RegistryFunctionRole" in p and "(Sid Copied)" in p for p in problems), problems


def test_standalone_iam_policy_resources_are_checked_too(cfn: Template) -> None:
    cfn["Resources"]["ExtraPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "extra",
            "Roles": [{"Ref": "AuthorizerFunctionRole"}],
            "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]},
        },
    }
    assert any("ExtraPolicy" in p for p in tc.check_no_wildcard_resources(cfn))
    assert any("AuthorizerFunction" in p for p in tc.check_decrypt_only_on_allowed_functions(cfn))
    assert any("ExtraPolicy" in p for p in tc.check_decrypt_has_encryption_context(cfn))


# ---------------------------------------------------------------- positive controls


def test_decrypting_function_on_the_allow_list_passes(sam: Template) -> None:
    """A validator that decrypts with an encryption-context condition and reads its own secrets is fine."""
    _, cfn = _translated(
        sam, lambda s: _add_function(s, "ValidatorFunction", [dict(_DECRYPT_OK), dict(_READ_SECRET)])
    )
    assert "ValidatorFunction" in dict(tc.functions(cfn))
    for check in (
        tc.check_decrypt_only_on_allowed_functions,
        tc.check_decrypt_has_encryption_context,
        tc.check_secrets_scoped_to_stage_prefix,
        tc.check_no_wildcard_resources,
        tc.check_one_resource_per_statement,
        tc.check_function_runtime,
        tc.check_function_log_groups,
        tc.check_function_layers,
    ):
        assert check(cfn) == [], check.__name__


def test_new_functions_are_covered_without_listing_them(sam: Template) -> None:
    _, cfn = _translated(
        sam,
        lambda s: (
            _add_function(s, "SessionTokensFunction", _statements(s, "AuthorizerFunction")),
            _set(s, "SessionTokensFunction", "Runtime", "python3.12"),
        ),
    )
    assert any(p.startswith("SessionTokensFunction: Runtime") for p in tc.check_function_runtime(cfn))


def test_public_routes_may_skip_the_authorizer(sam: Template) -> None:
    """The template's own public routes (OpenAPI, JWKS, the session-token stream, the Lab's page and
    files) pass the checks."""
    public = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for r in sam["Resources"].values()
        if r.get("Type") == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e.get("Type") == "Api" and e["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    }
    assert public == {
        ("GET", "/v1/openapi.json"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/lab"),
        ("GET", "/lab/{proxy+}"),
    }
    # The session-token stream's route is written in the DefinitionBody (its function depends on
    # StreamCompute): no authorizer, no API key there.
    stream_route = _api(sam)["DefinitionBody"]["paths"]["/v1/chat/completions"]["post"]
    assert stream_route["security"] == [{"NONE": []}, {"api_key_false": []}]
    same, cfn = _translated(sam, lambda s: None)
    assert tc.check_api_events_use_authorizer(same) == []
    assert tc.check_translated_routes_use_authorizer(same, cfn) == []


def test_the_correct_messagestring_form_passes(sam: Template) -> None:
    """`$context.error.messageString` is already quoted, so it must appear unquoted in the template."""
    _, cfn = _translated(sam, lambda s: _gateway(s, "DEFAULT_5XX", _FIXED_5XX))
    assert not [p for p in tc.check_gateway_response_templates(cfn) if "DEFAULT_5XX" in p]


def _drop_api_key_opt_outs(s: Template) -> None:
    """SAM refuses ApiKeyRequired: false on an event once the API requires no key."""
    for resource in s["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            event.get("Properties", {}).get("Auth", {}).pop("ApiKeyRequired", None)


def _drop_public_route_opt_outs(s: Template) -> None:
    for resource in s["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            event.get("Properties", {}).pop("Auth", None)


def test_the_dashboard_check_follows_the_code_not_a_copy_of_the_names(cfn: Template) -> None:
    """Rename a metric in adapters/metrics.py and the dashboard check fails until the dashboard follows."""
    renamed = tc.METRICS_ADAPTER.read_text("utf-8").replace('name="TimeToFirstToken"', 'name="FirstTokenMs"')
    problems = tc.check_stream_dashboard(cfn, tc.emitted_metrics(renamed))
    assert any("charts TimeToFirstToken, which the stream app never emits" in p for p in problems), problems


def test_decrypt_through_secrets_manager_for_a_writer_that_cannot_read_passes(cfn: Template) -> None:
    """The registry's kms:Decrypt (needed to write under the CMK) is not a way to read secrets."""
    assert not tc.check_decrypt_only_on_allowed_functions(cfn)
    registry = [st for st in tc.iam_statements(cfn) if st.body.get("Sid") == "SecretsManagerEnvelopeOnly"]
    assert registry and "kms:decrypt" in registry[0].actions_lower
