"""Load template.yaml, translate it with SAM offline, and check it against DESIGN/SECURITY rules.

Every checker takes template dicts as arguments and returns a list of violation strings (empty
means the rule holds), so the tests can feed both the real template and mutated copies. Each
violation names the offending resource, policy and statement.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from boto3.session import Session
from cfnlint.decode import decode_str
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"

Template = dict[str, Any]

#: Functions allowed to decrypt customer credentials (kms:Decrypt, secretsmanager:GetSecretValue).
DECRYPTING_FUNCTIONS = frozenset({"ValidatorFunction", "StreamProxyFunction"})
#: Routes that may skip the account-key authorizer: (METHOD, path).
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/v1/openapi.json"),  # the OpenAPI document
        ("GET", "/.well-known/jwks.json"),  # public verification keys
        ("POST", "/v1/chat/completions"),  # authenticates with a session token in the function
        ("GET", "/lab"),  # the Lab page: it signs in with an account API key itself, in the browser
        ("GET", "/lab/{proxy+}"),  # the Lab's static files
    }
)
#: AWS-managed policies SAM attaches on its own (basic logging, X-Ray, SQS event source).
ALLOWED_MANAGED_POLICIES = frozenset(
    {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    }
)
SECRET_ARN_PREFIX = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
SECRET_NAME_PREFIX = "llm-gateway/${Stage}/"
COMMON_LAYER = "CommonLayer"
RUNTIME = "python3.13"
REGION = "us-east-1"

_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "x-amazon-apigateway-any-method"}
_IAM_POLICY_TYPES = {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}


# ---------------------------------------------------------------------------- loading


def load_sam_template(text: str | None = None) -> Template:
    """template.yaml as plain dicts; !Ref/!Sub/!GetAtt become their long JSON forms."""
    source = TEMPLATE_PATH.read_text("utf-8") if text is None else text
    decoded, matches = decode_str(source)
    if matches or decoded is None:
        raise ValueError(f"template.yaml does not parse: {[str(m) for m in matches]}")
    # cfn-lint returns str/dict subclasses that carry line marks; make them plain JSON types.
    return dict(json.loads(json.dumps(decoded)))


def translate(sam: Template) -> Template:
    """The CloudFormation SAM deploys, translated offline (no AWS calls, no managed-policy map)."""
    doc = copy.deepcopy(sam)
    for resource in doc.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        # `sam build`/`sam package` replace local folders with S3 URIs; the translator wants those.
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = "s3://placeholder-bucket/placeholder-key"
    # The translator only reads `region_name` from its session; a stub keeps it off AWS config
    # files and profiles entirely.
    session = cast(Session, SimpleNamespace(region_name=REGION))
    translator = Translator({}, Parser(), boto_session=session)
    return dict(translator.translate(doc, parameter_values={}))


# ---------------------------------------------------------------------------- helpers


def resources(template: Template, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template.get("Resources", {}).items():
        if not types or resource.get("Type") in types:
            yield logical_id, resource


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ref_target(value: Any) -> str | None:
    """Logical id named by {"Ref": X} or {"Fn::GetAtt": [X, ...]} / "X.Attr"."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            if isinstance(att, list) and att:
                return str(att[0])
            if isinstance(att, str):
                return att.split(".", 1)[0]
    return None


def sub_text(value: Any) -> str | None:
    """The text of a plain string or of an Fn::Sub (either form); None for other intrinsics."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        if isinstance(sub, str):
            return sub
        if isinstance(sub, list) and sub and isinstance(sub[0], str):
            return sub[0]
    return None


def show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Statement:
    """One identity-policy statement, with where it lives and which roles it is attached to."""

    resource: str
    policy: str
    index: int
    body: dict[str, Any]
    roles: tuple[str, ...]

    @property
    def where(self) -> str:
        sid = self.body.get("Sid")
        label = f"statement #{self.index}" + (f" (Sid {sid})" if sid else "")
        return f"{self.resource} policy {self.policy} {label}"

    @property
    def allows(self) -> bool:
        return self.body.get("Effect") == "Allow"

    @property
    def actions(self) -> list[str]:
        return [str(a) for a in as_list(self.body.get("Action"))]

    @property
    def actions_lower(self) -> set[str]:
        return {a.lower() for a in self.actions}


def iam_statements(cfn: Template) -> list[Statement]:
    """Every identity-policy statement: roles' inline policies and attached IAM policy resources.

    Resource policies (KMS key policies, queue policies) are not identity policies and are
    deliberately excluded: a key policy must name its key as "*".
    """
    found: list[Statement] = []
    for role_id, role in resources(cfn, "AWS::IAM::Role"):
        for n, policy in enumerate(as_list(props(role).get("Policies"))):
            name = policy.get("PolicyName", f"#{n}")
            found += _statements(role_id, str(name), policy.get("PolicyDocument"), (role_id,))
    for policy_id, policy in resources(cfn, *_IAM_POLICY_TYPES):
        p = props(policy)
        roles = tuple(t for t in (ref_target(r) for r in as_list(p.get("Roles") or p.get("RoleName"))) if t)
        found += _statements(policy_id, policy_id, p.get("PolicyDocument"), roles)
    return found


def _statements(owner: str, name: str, document: Any, roles: tuple[str, ...]) -> list[Statement]:
    if not isinstance(document, dict):
        return []
    return [
        Statement(owner, name, i, body, roles)
        for i, body in enumerate(as_list(document.get("Statement")))
        if isinstance(body, dict)
    ]


def role_functions(cfn: Template) -> dict[str, set[str]]:
    """role logical id -> the Lambda functions that run as it."""
    mapping: dict[str, set[str]] = {}
    for fn_id, fn in resources(cfn, "AWS::Lambda::Function"):
        role = ref_target(props(fn).get("Role"))
        if role:
            mapping.setdefault(role, set()).add(fn_id)
    return mapping


def functions(cfn: Template) -> list[tuple[str, dict[str, Any]]]:
    return list(resources(cfn, "AWS::Lambda::Function"))


# ---------------------------------------------------------------------------- functions


def check_function_runtime(cfn: Template) -> list[str]:
    """Every function: python3.13 on arm64 with active X-Ray tracing."""
    problems = []
    fns = functions(cfn)
    if not fns:
        problems.append("no AWS::Lambda::Function in the translated template")
    for fn_id, fn in fns:
        p = props(fn)
        if p.get("Runtime") != RUNTIME:
            problems.append(f"{fn_id}: Runtime is {p.get('Runtime')!r}, expected {RUNTIME!r}")
        if p.get("Architectures") != ["arm64"]:
            problems.append(f"{fn_id}: Architectures is {p.get('Architectures')!r}, expected ['arm64']")
        mode = (p.get("TracingConfig") or {}).get("Mode")
        if mode != "Active":
            problems.append(f"{fn_id}: TracingConfig.Mode is {mode!r}, expected 'Active'")
    return problems


def check_function_log_groups(cfn: Template) -> list[str]:
    """Every function has its own AWS::Logs::LogGroup, with RetentionInDays set."""
    problems = []
    log_groups = dict(resources(cfn, "AWS::Logs::LogGroup"))
    by_name = {sub_text(props(lg).get("LogGroupName")): lg_id for lg_id, lg in log_groups.items()}
    owners: dict[str, list[str]] = {}
    for fn_id, fn in functions(cfn):
        p = props(fn)
        lg_id = ref_target((p.get("LoggingConfig") or {}).get("LogGroup"))
        if lg_id is None:
            # No LoggingConfig: Lambda writes to /aws/lambda/<FunctionName>; a LogGroup may own that name.
            fn_name = sub_text(p.get("FunctionName"))
            lg_id = by_name.get(f"/aws/lambda/{fn_name}") if fn_name else None
        if lg_id is None or lg_id not in log_groups:
            problems.append(
                f"{fn_id}: no AWS::Logs::LogGroup of its own (set LoggingConfig.LogGroup: !Ref <LogGroup>)"
            )
            continue
        owners.setdefault(lg_id, []).append(fn_id)
        if props(log_groups[lg_id]).get("RetentionInDays") in (None, ""):
            problems.append(f"{fn_id}: log group {lg_id} has no RetentionInDays")
    for lg_id, fn_ids in owners.items():
        if len(fn_ids) > 1:
            problems.append(f"log group {lg_id} is shared by {sorted(fn_ids)}; each function needs its own")
    return problems


def check_function_layers(cfn: Template) -> list[str]:
    """Every function uses the shared CommonLayer (SAM renames it CommonLayer<hash>)."""
    problems = []
    common = {
        lid
        for lid, _ in resources(cfn, "AWS::Lambda::LayerVersion")
        if re.fullmatch(rf"{COMMON_LAYER}\w*", lid)
    }
    if not common:
        problems.append(f"no {COMMON_LAYER} AWS::Lambda::LayerVersion in the translated template")
    for fn_id, fn in functions(cfn):
        layers = {ref_target(layer) for layer in as_list(props(fn).get("Layers"))}
        if not layers & common:
            problems.append(
                f"{fn_id}: Layers {show(props(fn).get('Layers'))} does not include {COMMON_LAYER}"
            )
    return problems


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def check_powertools_env(sam: Template, cfn: Template) -> list[str]:
    """SECURITY 10: event logging and tracer response capture are off, globally and per function."""
    problems = []
    global_vars = (
        (sam.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables")
    ) or {}
    for name in ("POWERTOOLS_LOGGER_LOG_EVENT", "POWERTOOLS_TRACER_CAPTURE_RESPONSE"):
        if not _is_false(global_vars.get(name)):
            problems.append(
                f"Globals.Function.Environment: {name} is {global_vars.get(name)!r}, expected 'false'"
            )
    for fn_id, fn in functions(cfn):
        env = (props(fn).get("Environment") or {}).get("Variables") or {}
        for name in ("POWERTOOLS_LOGGER_LOG_EVENT", "POWERTOOLS_TRACER_CAPTURE_RESPONSE"):
            if not _is_false(env.get(name)):
                problems.append(f"{fn_id}: environment {name} is {show(env.get(name))}, must be 'false'")
    return problems


# ---------------------------------------------------------------------------- IAM


def check_managed_policies(cfn: Template) -> list[str]:
    """Function roles carry only the AWS-managed policies SAM itself adds; everything else inline."""
    problems = []
    for role_id, role in resources(cfn, "AWS::IAM::Role"):
        for arn in as_list(props(role).get("ManagedPolicyArns")):
            if arn not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{role_id}: managed policy {show(arn)} is not allowed; use an inline policy")
    return problems


def check_no_wildcard_resources(cfn: Template) -> list[str]:
    """No Allow statement has Resource "*" (or NotResource)."""
    problems = []
    for st in iam_statements(cfn):
        if not st.allows:
            continue
        if "NotResource" in st.body:
            problems.append(f"{st.where}: uses NotResource")
        for res in as_list(st.body.get("Resource")):
            if sub_text(res) == "*":
                problems.append(f"{st.where}: Resource is '*' (actions {st.actions})")
    return problems


def check_no_wildcard_actions(cfn: Template) -> list[str]:
    """No Allow statement has Action "*", "service:*" or any other wildcard (or NotAction)."""
    problems = []
    for st in iam_statements(cfn):
        if not st.allows:
            continue
        if "NotAction" in st.body:
            problems.append(f"{st.where}: uses NotAction")
        for action in st.actions:
            if "*" in action or "?" in action:
                problems.append(f"{st.where}: wildcard action {action!r}")
    return problems


def check_one_resource_per_statement(cfn: Template) -> list[str]:
    """DESIGN §8: each statement names exactly one resource."""
    problems = []
    for st in iam_statements(cfn):
        if not st.allows:
            continue
        res = as_list(st.body.get("Resource"))
        if len(res) != 1:
            problems.append(f"{st.where}: names {len(res)} resources {show(res)}, expected exactly one")
    return problems


def check_secrets_scoped_to_stage_prefix(cfn: Template) -> list[str]:
    """Secrets Manager actions only on secrets named llm-gateway/${Stage}/..."""
    problems = []
    wanted = SECRET_ARN_PREFIX + SECRET_NAME_PREFIX
    for st in iam_statements(cfn):
        if not st.allows or not any(a.startswith("secretsmanager:") for a in st.actions_lower):
            continue
        for res in as_list(st.body.get("Resource")):
            text = sub_text(res)
            if text is None or not text.startswith(wanted):
                problems.append(f"{st.where}: Secrets Manager resource {show(res)} is outside {wanted}")
    return problems


_DECRYPT_ACTIONS = {"kms:decrypt", "secretsmanager:getsecretvalue"}


def check_decrypt_only_on_allowed_functions(
    cfn: Template, allowed: frozenset[str] = DECRYPTING_FUNCTIONS
) -> list[str]:
    """SECURITY 9: kms:Decrypt / GetSecretValue only on the allow-listed decrypting functions."""
    problems = []
    fn_by_role = role_functions(cfn)
    for st in iam_statements(cfn):
        granted = st.actions_lower & _DECRYPT_ACTIONS
        if not st.allows or not granted:
            continue
        if not st.roles:
            problems.append(f"{st.where}: grants {sorted(granted)} but is attached to no role")
        for role in st.roles:
            fns = fn_by_role.get(role, set())
            if not fns:
                problems.append(f"{st.where}: grants {sorted(granted)} to role {role}, used by no function")
            for fn_id in sorted(fns - allowed):
                problems.append(
                    f"{st.where}: grants {sorted(granted)} to {fn_id}, which is not in "
                    f"DECRYPTING_FUNCTIONS {sorted(allowed)}"
                )
    return problems


def check_decrypt_has_encryption_context(cfn: Template) -> list[str]:
    """SECURITY 9: every statement granting kms:Decrypt is conditioned on kms:EncryptionContext*."""
    problems = []
    for st in iam_statements(cfn):
        if not st.allows or "kms:decrypt" not in st.actions_lower:
            continue
        keys = [
            key
            for operator in (st.body.get("Condition") or {}).values()
            if isinstance(operator, dict)
            for key in operator
        ]
        if not any(key.lower().startswith("kms:encryptioncontext") for key in keys):
            problems.append(f"{st.where}: grants kms:Decrypt without a kms:EncryptionContext condition")
    return problems


# ---------------------------------------------------------------------------- API


def check_default_authorizer(sam: Template) -> list[str]:
    """Every SAM REST API has a Lambda REQUEST authorizer as its DefaultAuthorizer."""
    problems = []
    apis = list(resources(sam, "AWS::Serverless::Api"))
    if not apis:
        problems.append("no AWS::Serverless::Api in template.yaml")
    for api_id, api in apis:
        auth = props(api).get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        if not default:
            problems.append(f"{api_id}: Auth.DefaultAuthorizer is not set")
            continue
        spec = (auth.get("Authorizers") or {}).get(default)
        if not isinstance(spec, dict):
            problems.append(f"{api_id}: DefaultAuthorizer {default!r} is not defined under Auth.Authorizers")
            continue
        if "FunctionArn" not in spec:
            problems.append(f"{api_id}: DefaultAuthorizer {default!r} is not a Lambda authorizer")
        if spec.get("FunctionPayloadType") != "REQUEST":
            problems.append(
                f"{api_id}: DefaultAuthorizer {default!r} FunctionPayloadType is "
                f"{spec.get('FunctionPayloadType')!r}, expected 'REQUEST'"
            )
    return problems


def _default_authorizers(sam: Template) -> dict[str, str]:
    return {
        api_id: (props(api).get("Auth") or {}).get("DefaultAuthorizer") or ""
        for api_id, api in resources(sam, "AWS::Serverless::Api")
    }


def check_api_events_use_authorizer(
    sam: Template, public: frozenset[tuple[str, str]] = PUBLIC_ROUTES
) -> list[str]:
    """Every Api event of every function keeps the default authorizer, except the public routes."""
    problems = []
    defaults = _default_authorizers(sam)
    for fn_id, fn in resources(sam, "AWS::Serverless::Function"):
        for event_id, event in (props(fn).get("Events") or {}).items():
            if event.get("Type") != "Api":
                continue
            ep = event.get("Properties") or {}
            route = (str(ep.get("Method", "")).upper(), ep.get("Path"))
            api_id = ref_target(ep.get("RestApiId"))
            if api_id is None:
                problems.append(f"{fn_id} event {event_id} {route}: no RestApiId, lands on the implicit API")
                continue
            authorizer = (ep.get("Auth") or {}).get("Authorizer", defaults.get(api_id))
            if authorizer != defaults.get(api_id) and route not in public:
                problems.append(
                    f"{fn_id} event {event_id} {route[0]} {route[1]}: Authorizer is {authorizer!r}, "
                    f"expected the default {defaults.get(api_id)!r}"
                )
    return problems


def check_translated_routes_use_authorizer(
    sam: Template, cfn: Template, public: frozenset[tuple[str, str]] = PUBLIC_ROUTES
) -> list[str]:
    """In the deployed OpenAPI body, every method is secured by the default authorizer (bar public routes).

    This also covers routes defined in a DefinitionBody rather than as function events.
    """
    problems = []
    defaults = _default_authorizers(sam)
    rest_apis = list(resources(cfn, "AWS::ApiGateway::RestApi"))
    if not rest_apis:
        problems.append("no AWS::ApiGateway::RestApi in the translated template")
    for api_id, api in rest_apis:
        body = props(api).get("Body") or {}
        default = defaults.get(api_id)
        if not default:
            problems.append(f"{api_id}: REST API has no DefaultAuthorizer in template.yaml")
            continue
        definition = (body.get("securityDefinitions") or {}).get(default) or {}
        auth_type = (definition.get("x-amazon-apigateway-authorizer") or {}).get("type")
        if auth_type != "request":
            problems.append(f"{api_id}: securityDefinitions.{default} authorizer type is {auth_type!r}")
        top_security = body.get("security")
        for path, item in (body.get("paths") or {}).items():
            for method, op in (item or {}).items():
                if method.lower() not in _HTTP_METHODS or not isinstance(op, dict):
                    continue
                route = ("ANY" if method.startswith("x-amazon") else method.upper(), path)
                security = op.get("security", top_security) or []
                names = {name for req in security for name in req}
                if default not in names and route not in public:
                    problems.append(
                        f"{api_id} {route[0]} {path}: security {show(security)} does not use {default!r}"
                    )
    return problems


_VAR = r"(?:context|stageVariables|input|util)(?:\.[A-Za-z_]\w*)+"
_CONTEXT_VAR = re.compile(rf"\$!?(?:\{{{_VAR}\}}|{_VAR})")
_MESSAGE_STRING = re.compile(r"\$!?(?:\{context\.error\.messageString\}|context\.error\.messageString)")


def render_gateway_template(text: str) -> str:
    """Substitute API Gateway variables as API Gateway would, with sample values.

    `$context.error.messageString` is already a quoted JSON string ("..."), every other variable
    is raw text, so a template is only valid if it quotes the latter and not the former.
    """
    text = _MESSAGE_STRING.sub('"Sample error message"', text)
    return _CONTEXT_VAR.sub("sample-value", text)


def _gateway_responses(cfn: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for api_id, api in resources(cfn, "AWS::ApiGateway::RestApi"):
        body = props(api).get("Body") or {}
        for rtype, resp in (body.get("x-amazon-apigateway-gateway-responses") or {}).items():
            yield f"{api_id} gateway response {rtype}", resp.get("responseTemplates") or {}
    for res_id, res in resources(cfn, "AWS::ApiGateway::GatewayResponse"):
        yield f"{res_id} ({props(res).get('ResponseType')})", props(res).get("ResponseTemplates") or {}


def check_gateway_response_templates(cfn: Template) -> list[str]:
    """Every gateway response template renders to JSON {"error": {"code": str, "message": str}}."""
    problems = []
    for where, templates in _gateway_responses(cfn):
        if not templates:
            problems.append(f"{where}: has no response template, so it answers in API Gateway's own shape")
        for content_type, text in templates.items():
            label = f"{where} [{content_type}]"
            if not isinstance(text, str):
                problems.append(f"{label}: template is not a literal string: {show(text)}")
                continue
            rendered = render_gateway_template(text)
            try:
                doc = json.loads(rendered)
            except ValueError as exc:
                problems.append(f"{label}: not valid JSON once rendered ({exc}): {rendered}")
                continue
            error = doc.get("error") if isinstance(doc, dict) else None
            if not isinstance(doc, dict) or set(doc) != {"error"} or not isinstance(error, dict):
                problems.append(f"{label}: not of the shape {{'error': {{...}}}}: {rendered}")
                continue
            for key in ("code", "message"):
                if not isinstance(error.get(key), str) or not error.get(key):
                    problems.append(f"{label}: error.{key} is missing or not a non-empty string: {rendered}")
            if isinstance(error.get("code"), str) and not re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]):
                problems.append(f"{label}: error.code {error['code']!r} is not snake_case")
    return problems


# ---------------------------------------------------------------------------- data and keys


def check_tables(cfn: Template) -> list[str]:
    """Every DynamoDB table: on-demand, TTL on `ttl`, point-in-time recovery."""
    problems = []
    tables = list(resources(cfn, "AWS::DynamoDB::Table"))
    if not tables:
        problems.append("no AWS::DynamoDB::Table in the translated template")
    for table_id, table in tables:
        p = props(table)
        if p.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(
                f"{table_id}: BillingMode is {p.get('BillingMode')!r}, expected 'PAY_PER_REQUEST'"
            )
        ttl = p.get("TimeToLiveSpecification") or {}
        if ttl.get("AttributeName") != "ttl" or ttl.get("Enabled") is not True:
            problems.append(
                f"{table_id}: TimeToLiveSpecification is {show(ttl)}, expected TTL enabled on 'ttl'"
            )
        pitr = p.get("PointInTimeRecoverySpecification") or {}
        if pitr.get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{table_id}: point-in-time recovery is not enabled ({show(pitr)})")
    return problems


def check_credentials_key_rotation(cfn: Template) -> list[str]:
    """CredentialsKey exists, is a KMS key, and has automatic rotation enabled."""
    key = cfn.get("Resources", {}).get("CredentialsKey")
    if not key or key.get("Type") != "AWS::KMS::Key":
        return ["CredentialsKey: no AWS::KMS::Key of that name"]
    if props(key).get("EnableKeyRotation") is not True:
        return [
            f"CredentialsKey: EnableKeyRotation is {props(key).get('EnableKeyRotation')!r}, expected true"
        ]
    return []
