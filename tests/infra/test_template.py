"""template.yaml (and what SAM turns it into) obeys DESIGN §1/§6/§8 and SECURITY items 9-10.

The tests iterate over whatever functions, roles, APIs and tables the template holds, so new
functions are covered the moment they are added. Each failure lists every offending resource.
"""

from __future__ import annotations

from tests.infra import template_checks as tc
from tests.infra.template_checks import Template, props


def _ok(problems: list[str]) -> None:
    assert not problems, "\n" + "\n".join(f"- {p}" for p in problems)


def test_template_decodes_and_translates(sam: Template, cfn: Template) -> None:
    assert sam["Transform"] == "AWS::Serverless-2016-10-31"
    assert "Transform" not in cfn
    assert tc.functions(cfn), "no Lambda function after translation"


# ---------------------------------------------------------------- functions


def test_functions_run_python313_on_arm64_with_active_tracing(cfn: Template) -> None:
    _ok(tc.check_function_runtime(cfn))


def test_functions_have_their_own_log_group_with_retention(cfn: Template) -> None:
    _ok(tc.check_function_log_groups(cfn))


def test_functions_use_the_common_layer(cfn: Template) -> None:
    _ok(tc.check_function_layers(cfn))


def test_powertools_never_logs_events_or_captures_responses(sam: Template, cfn: Template) -> None:
    """SECURITY 10."""
    _ok(tc.check_powertools_env(sam, cfn))


# ---------------------------------------------------------------- IAM (translated roles)


def test_roles_carry_only_sam_managed_policies(cfn: Template) -> None:
    _ok(tc.check_managed_policies(cfn))


def test_no_statement_allows_resource_star(cfn: Template) -> None:
    _ok(tc.check_no_wildcard_resources(cfn))


def test_no_statement_allows_wildcard_actions(cfn: Template) -> None:
    _ok(tc.check_no_wildcard_actions(cfn))


def test_each_statement_names_exactly_one_resource(cfn: Template) -> None:
    _ok(tc.check_one_resource_per_statement(cfn))


def test_secrets_manager_is_limited_to_the_stage_prefix(cfn: Template) -> None:
    _ok(tc.check_secrets_scoped_to_stage_prefix(cfn))


def test_only_decrypting_functions_can_decrypt_credentials(cfn: Template) -> None:
    """SECURITY 9: kms:Decrypt and GetSecretValue only on DECRYPTING_FUNCTIONS."""
    _ok(tc.check_decrypt_only_on_allowed_functions(cfn, tc.DECRYPTING_FUNCTIONS))


def test_every_decrypt_grant_requires_an_encryption_context(cfn: Template) -> None:
    """SECURITY 9."""
    _ok(tc.check_decrypt_has_encryption_context(cfn))


def test_key_policies_are_not_identity_policies(cfn: Template) -> None:
    """The KMS key policy's `Resource: "*"` is exempt because it is never read as a role statement."""
    where = {st.resource for st in tc.iam_statements(cfn)}
    keys = {key_id for key_id, _ in tc.resources(cfn, "AWS::KMS::Key")}
    assert not where & keys


# ---------------------------------------------------------------- API


def test_rest_api_default_authorizer_is_a_lambda_request_authorizer(sam: Template) -> None:
    _ok(tc.check_default_authorizer(sam))


def test_every_api_event_uses_the_default_authorizer(sam: Template) -> None:
    _ok(tc.check_api_events_use_authorizer(sam, tc.PUBLIC_ROUTES))


def test_every_deployed_route_is_secured_by_the_default_authorizer(sam: Template, cfn: Template) -> None:
    _ok(tc.check_translated_routes_use_authorizer(sam, cfn, tc.PUBLIC_ROUTES))


def test_known_paths_answer_other_methods_with_405_and_allow(sam: Template, cfn: Template) -> None:
    _ok(tc.check_method_not_allowed(sam, cfn))


def test_gateway_responses_are_json_errors(cfn: Template) -> None:
    _ok(tc.check_gateway_response_templates(cfn))


# ---------------------------------------------------------------- data and keys


def test_table_is_on_demand_with_ttl_and_pitr(cfn: Template) -> None:
    _ok(tc.check_tables(cfn))


def test_credentials_key_rotates(cfn: Template) -> None:
    _ok(tc.check_credentials_key_rotation(cfn))


# ---------------------------------------------------------------- issue 12: deployable for real


def test_streams_may_run_as_long_as_the_function(cfn: Template) -> None:
    _ok(tc.check_streaming_timeout(cfn))


def test_every_authorized_route_is_limited_per_account_by_the_usage_plan(cfn: Template) -> None:
    _ok(tc.check_usage_plan_wiring(cfn))


def test_stage_throttles_per_method_come_from_parameters(cfn: Template) -> None:
    _ok(tc.check_method_throttles(cfn))


def test_the_api_has_one_stage(cfn: Template) -> None:
    _ok(tc.check_single_stage(cfn))


def test_access_logs_are_json_with_retention(cfn: Template) -> None:
    _ok(tc.check_access_logs(cfn))


def test_the_table_survives_a_delete_and_allows_a_redeploy(cfn: Template) -> None:
    _ok(tc.check_table_redeployable(cfn))


def test_the_web_adapter_layer_follows_the_region(cfn: Template) -> None:
    _ok(tc.check_web_adapter_layer(cfn))


def test_reserved_concurrency_and_stream_memory_are_parameters(cfn: Template) -> None:
    _ok(tc.check_capacity_parameters(cfn))


def test_queue_consumers_take_one_record_with_bounded_concurrency_and_a_long_enough_visibility(
    cfn: Template,
) -> None:
    _ok(tc.check_queue_consumers(cfn))


def test_validation_budgets_fit_the_validator_timeout_and_requests_reach_the_queue(cfn: Template) -> None:
    _ok(tc.check_validation_budgets(cfn))


def test_event_rule_targets_retry_and_dead_letter(cfn: Template) -> None:
    _ok(tc.check_rule_targets(cfn))


def test_encryption_context_conditions_cannot_match_an_empty_context(cfn: Template) -> None:
    _ok(tc.check_encryption_context_guards(cfn))


def test_secret_writers_have_the_kms_permissions_secrets_manager_documents(cfn: Template) -> None:
    _ok(tc.check_secrets_manager_cmk_permissions(cfn))


def test_tenant_and_platform_secrets_are_separate_grants(cfn: Template) -> None:
    _ok(tc.check_secret_scopes(cfn))


def test_alarms_watch_dlqs_functions_api_streams_mints_and_concurrency(cfn: Template) -> None:
    _ok(tc.check_alarms(cfn))


def test_the_dashboard_charts_the_metrics_the_stream_app_emits(cfn: Template) -> None:
    _ok(tc.check_stream_dashboard(cfn))


def test_the_metrics_the_dashboard_needs_are_the_ones_the_code_emits() -> None:
    assert {"TimeToFirstToken", "GatewayOverhead", "StreamErrors"} <= tc.emitted_metrics()


def test_throttled_answers_say_when_to_retry(sam: Template) -> None:
    throttled = sam["Resources"]["Api"]["Properties"]["GatewayResponses"]["THROTTLED"]
    assert throttled["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"


def test_limits_default_to_more_for_minting_than_management_per_account(sam: Template) -> None:
    params = sam["Parameters"]
    assert params["AccountMintThrottleRateLimit"]["Default"] > params["AccountThrottleRateLimit"]["Default"]
    assert params["MintThrottleRateLimit"]["Default"] < 300, "below the account's KMS ECC Sign quota"


def test_platform_folder_can_never_look_like_a_tenant(sam: Template) -> None:
    """Tenant grants are acct_*; the platform folder pattern has no underscore, so they never meet."""
    assert "_" not in sam["Parameters"]["PlatformSecretsFolder"]["AllowedPattern"]


# ---------------------------------------------------------------- API keys and the Lab


def _authorizer_identity(sam: Template) -> dict[str, object]:
    (api,) = [props(r) for _, r in tc.resources(sam, "AWS::Serverless::Api")]
    auth = api["Auth"]
    return dict(auth["Authorizers"][auth["DefaultAuthorizer"]]["Identity"])


def test_authorizer_results_are_cached_for_ten_seconds_so_a_revoked_key_stops_soon(
    sam: Template, cfn: Template
) -> None:
    """DELETE /v1/api-keys/{id} promises the key stops working within 10 s: API Gateway's cache."""
    assert _authorizer_identity(sam)["ReauthorizeEvery"] == 10
    # What SAM deploys: the REST API's OpenAPI body carries the TTL.
    ttls = [
        definition["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"]
        for _, api in tc.resources(cfn, "AWS::ApiGateway::RestApi")
        for definition in props(api)["Body"]["securityDefinitions"].values()
        if "x-amazon-apigateway-authorizer" in definition
    ]
    assert ttls == [10]


def test_lab_routes_have_no_authorizer_and_nothing_else_under_lab_exists(sam: Template) -> None:
    """The Lab's page signs in itself in the browser; the gateway must serve it to anyone."""
    lab = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"]
        .get("Auth", {})
        .get("Authorizer")
        for _, r in tc.resources(sam, "AWS::Serverless::Function")
        for e in (props(r).get("Events") or {}).values()
        if e.get("Type") == "Api" and str(e["Properties"]["Path"]).startswith("/lab")
    }
    assert lab == {("GET", "/lab"): "NONE", ("GET", "/lab/{proxy+}"): "NONE"}


def test_api_key_routes_use_the_authorizer(sam: Template) -> None:
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"].get("Auth")
        for _, r in tc.resources(sam, "AWS::Serverless::Function")
        for e in (props(r).get("Events") or {}).values()
        if e.get("Type") == "Api" and str(e["Properties"]["Path"]).startswith("/v1/api-keys")
    }
    assert routes == {
        ("GET", "/v1/api-keys"): None,
        ("POST", "/v1/api-keys"): None,
        ("DELETE", "/v1/api-keys/{id}"): None,
    }


def test_the_stream_function_writes_only_health_items(cfn: Template) -> None:
    _ok(tc.check_stream_writes_health_only(cfn))


def test_the_revalidation_schedule_invokes_one_function_per_window(cfn: Template) -> None:
    assert list(tc.resources(cfn, "AWS::Scheduler::Schedule")), "no re-validation schedule"
    _ok(tc.check_schedules(cfn))


def test_the_index_the_schedule_lists_from_exists(cfn: Template) -> None:
    from llm_gateway.adapters.dynamodb import LLMS_BY_STATUS_INDEX

    indexes = {
        index["IndexName"]
        for _, table in tc.resources(cfn, "AWS::DynamoDB::Table")
        for index in props(table).get("GlobalSecondaryIndexes", [])
    }
    assert LLMS_BY_STATUS_INDEX in indexes
