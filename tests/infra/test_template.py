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


def test_gateway_responses_are_json_errors(cfn: Template) -> None:
    _ok(tc.check_gateway_response_templates(cfn))


# ---------------------------------------------------------------- data and keys


def test_table_is_on_demand_with_ttl_and_pitr(cfn: Template) -> None:
    _ok(tc.check_tables(cfn))


def test_credentials_key_rotates(cfn: Template) -> None:
    _ok(tc.check_credentials_key_rotation(cfn))


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
