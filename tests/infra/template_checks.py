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
DECRYPTING_FUNCTIONS = frozenset({"ValidatorFunction", "StreamProxyFunction", "WebhookDeliveryFunction"})
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
#: AWS-managed policies allowed only on the role API Gateway assumes to write its access logs.
API_GATEWAY_LOGGING_POLICY = (
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)
SECRET_ARN_PREFIX = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
SECRET_NAME_PREFIX = "llm-gateway/${Stage}/"
#: Tenant secrets are llm-gateway/<stage>/<accountId>/<llmId>, and account ids start with acct_.
TENANT_SECRETS = SECRET_NAME_PREFIX + "acct_*"
#: Webhook signing secrets: llm-gateway/<stage>/webhooks/<accountId>/<webhookId>, apart from LLM keys.
WEBHOOK_SECRETS = SECRET_NAME_PREFIX + "webhooks/acct_*"
#: Functions that may touch webhook signing secrets (the webhooks API writes, delivery reads).
WEBHOOK_SECRET_USERS = frozenset({"WebhooksFunction", "WebhookDeliveryFunction"})
#: Built-in LLMs' platform keys: llm-gateway/<stage>/<PlatformSecretsFolder>/<built-in id>.
PLATFORM_SECRETS = SECRET_NAME_PREFIX + "${PlatformSecretsFolder}/*"
#: Functions that may read platform secrets (the built-ins' keys).
PLATFORM_SECRET_READERS = frozenset({"StreamProxyFunction"})
#: Secrets Manager actions that change a secret (never on platform secrets).
SECRET_WRITES = frozenset(
    {"secretsmanager:createsecret", "secretsmanager:putsecretvalue", "secretsmanager:deletesecret",
     "secretsmanager:updatesecretversionstage", "secretsmanager:tagresource", "secretsmanager:updatesecret"}
)  # fmt: skip
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


def _assumed_by(role: dict[str, Any]) -> set[str]:
    document = props(role).get("AssumeRolePolicyDocument") or {}
    return {
        str(service)
        for st in as_list(document.get("Statement"))
        if isinstance(st, dict)
        for service in as_list((st.get("Principal") or {}).get("Service"))
    }


def check_managed_policies(cfn: Template) -> list[str]:
    """Function roles carry only the AWS-managed policies SAM itself adds; everything else inline.

    The one exception is API Gateway's own logging role, which may carry only AWS's policy for it.
    """
    problems = []
    for role_id, role in resources(cfn, "AWS::IAM::Role"):
        apigateway_only = _assumed_by(role) == {"apigateway.amazonaws.com"}
        for arn in as_list(props(role).get("ManagedPolicyArns")):
            if isinstance(arn, str) and arn in ALLOWED_MANAGED_POLICIES:
                continue
            if apigateway_only and sub_text(arn) == API_GATEWAY_LOGGING_POLICY:
                continue
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


def _condition_values(st: Statement, key: str) -> list[Any]:
    """Every value a condition of the statement gives ``key`` (any operator; case-insensitive key)."""
    return [
        value
        for operator in (st.body.get("Condition") or {}).values()
        if isinstance(operator, dict)
        for name, values in operator.items()
        if name.lower() == key.lower()
        for value in as_list(values)
    ]


def _only_through_secrets_manager(st: Statement) -> bool:
    """A kms:Decrypt that only Secrets Manager can exercise (kms:ViaService secretsmanager.*)."""
    via = [sub_text(v) or "" for v in _condition_values(st, "kms:ViaService")]
    return bool(via) and all(v.startswith("secretsmanager.") for v in via)


def check_decrypt_only_on_allowed_functions(
    cfn: Template, allowed: frozenset[str] = DECRYPTING_FUNCTIONS
) -> list[str]:
    """SECURITY 9: kms:Decrypt / GetSecretValue only on the allow-listed decrypting functions.

    A writer of secrets (CreateSecret/PutSecretValue under a customer managed key) needs kms:Decrypt
    too; that grant is allowed elsewhere only through Secrets Manager (kms:ViaService), and only to
    a role that cannot call GetSecretValue, so it still cannot read a secret.
    """
    problems = []
    fn_by_role = role_functions(cfn)
    readers = {
        role
        for st in iam_statements(cfn)
        if st.allows and "secretsmanager:getsecretvalue" in st.actions_lower
        for role in st.roles
    }
    for st in iam_statements(cfn):
        granted = st.actions_lower & _DECRYPT_ACTIONS
        if not st.allows or not granted:
            continue
        if granted == {"kms:decrypt"} and _only_through_secrets_manager(st) and not set(st.roles) & readers:
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
                if _is_mock(op):
                    continue  # a mock integration (the 405s) reaches no function: nothing to guard
                security = op.get("security", top_security) or []
                names = {name for req in security for name in req}
                if default not in names and route not in public:
                    problems.append(
                        f"{api_id} {route[0]} {path}: security {show(security)} does not use {default!r}"
                    )
    return problems


def _is_mock(op: dict[str, Any]) -> bool:
    return str((op.get("x-amazon-apigateway-integration") or {}).get("type", "")).lower() == "mock"


def _event_methods(sam: Template) -> dict[str, set[str]]:
    """Path → the methods the functions' Api events serve on it."""
    methods: dict[str, set[str]] = {}
    for _, fn in resources(sam, "AWS::Serverless::Function"):
        for event in (props(fn).get("Events") or {}).values():
            if event.get("Type") == "Api":
                ep = event.get("Properties") or {}
                methods.setdefault(str(ep.get("Path")), set()).add(str(ep.get("Method", "")).upper())
    return methods


def check_method_not_allowed(sam: Template, cfn: Template) -> list[str]:
    """Every path the API serves answers other methods with a 405 whose Allow lists exactly the
    path's methods, from a mock integration, a JSON error body and no authorizer."""
    problems = []
    expected = _event_methods(sam)
    for api_id, api in resources(cfn, "AWS::ApiGateway::RestApi"):
        paths = (props(api).get("Body") or {}).get("paths") or {}
        for path, methods in sorted(expected.items()):
            if "ANY" in methods:
                continue  # a path served for every method has no other method to refuse
            op = (paths.get(path) or {}).get("x-amazon-apigateway-any-method")
            where = f"{api_id} {path}"
            if not isinstance(op, dict) or not _is_mock(op):
                problems.append(f"{where}: no x-amazon-apigateway-any-method mock answering 405")
                continue
            answer = (op["x-amazon-apigateway-integration"].get("responses") or {}).get("default") or {}
            if str(answer.get("statusCode")) != "405":
                problems.append(f"{where}: the mock answers {answer.get('statusCode')!r}, not 405")
            allow = (answer.get("responseParameters") or {}).get("method.response.header.Allow", "")
            listed = {m.strip().upper() for m in str(allow).strip("'").split(",") if m.strip()}
            if listed != methods:
                problems.append(f"{where}: Allow lists {sorted(listed)}, the path serves {sorted(methods)}")
            declared = ((op.get("responses") or {}).get("405") or {}).get("headers") or {}
            if "Allow" not in declared:
                problems.append(f"{where}: the 405 method response does not declare the Allow header")
            body = (answer.get("responseTemplates") or {}).get("application/json", "")
            try:
                code = json.loads(body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = None
            if code != "method_not_allowed":
                problems.append(f"{where}: the 405 body is not a method_not_allowed JSON error: {body!r}")
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


# ---------------------------------------------------------------------------- issue 12: deployable


def parameter_default(template: Template, value: Any) -> Any:
    """A literal, or the Default of the parameter a {"Ref": ...} names (None for other intrinsics)."""
    if isinstance(value, dict):
        name = value.get("Ref") if len(value) == 1 else None
        spec = (template.get("Parameters") or {}).get(name) if isinstance(name, str) else None
        return spec.get("Default") if isinstance(spec, dict) else None
    return value


def _number(template: Template, value: Any) -> float | None:
    try:
        return float(parameter_default(template, value))
    except (TypeError, ValueError):
        return None


def stream_integration(cfn: Template, path: str = "/v1/chat/completions") -> dict[str, Any] | None:
    for _, api in resources(cfn, "AWS::ApiGateway::RestApi"):
        operation = ((props(api).get("Body") or {}).get("paths") or {}).get(path, {}).get("post")
        if operation:
            integration: dict[str, Any] = operation.get("x-amazon-apigateway-integration") or {}
            return integration
    return None


def check_streaming_timeout(cfn: Template, function: str = "StreamProxyFunction") -> list[str]:
    """The streaming integration may run as long as the function: TimeoutInMillis = Timeout x 1000."""
    integration = stream_integration(cfn)
    if integration is None:
        return ["no POST /v1/chat/completions integration in the translated REST API"]
    timeout_ms = integration.get("timeoutInMillis")
    fn_timeout = _number(cfn, props(cfn["Resources"].get(function, {})).get("Timeout"))
    problems = []
    if integration.get("responseTransferMode") != "STREAM":
        problems.append(
            f"POST /v1/chat/completions: responseTransferMode is {integration.get('responseTransferMode')!r}"
        )
    if not isinstance(timeout_ms, int) or timeout_ms > 900_000:
        problems.append(
            f"POST /v1/chat/completions: timeoutInMillis is {timeout_ms!r}; a streaming integration needs it set "
            "(the buffered default of 29,000 ms cuts every longer answer), at most 900,000"
        )
    elif fn_timeout is None or timeout_ms != fn_timeout * 1000:
        problems.append(
            f"POST /v1/chat/completions: timeoutInMillis {timeout_ms} differs from {function} Timeout {fn_timeout} s"
        )
    return problems


def _operations(cfn: Template) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for api_id, api in resources(cfn, "AWS::ApiGateway::RestApi"):
        for path, item in ((props(api).get("Body") or {}).get("paths") or {}).items():
            for method, op in (item or {}).items():
                if method.lower() in _HTTP_METHODS and isinstance(op, dict):
                    yield api_id, method.upper(), path, op


def check_usage_plan_wiring(cfn: Template) -> list[str]:
    """Per-account limits: keys come from the authorizer, every authorized method needs one, and a
    usage plan covers the API's stage with its throttles taken from parameters."""
    problems = []
    apis = dict(resources(cfn, "AWS::ApiGateway::RestApi"))
    for api_id, api in apis.items():
        if props(api).get("ApiKeySourceType") != "AUTHORIZER":
            problems.append(
                f"{api_id}: ApiKeySourceType is {props(api).get('ApiKeySourceType')!r}, expected 'AUTHORIZER'"
            )
    for api_id, method, path, op in _operations(cfn):
        names = {name for req in (op.get("security") or []) for name in req}
        has_authorizer = bool(names - {"api_key", "NONE"})
        if has_authorizer and "api_key" not in names:
            problems.append(
                f"{api_id} {method} {path}: authorized but no API key required, so no per-account limit"
            )
        if not has_authorizer and "api_key" in names:
            problems.append(
                f"{api_id} {method} {path}: requires an API key but has no authorizer to supply it (403)"
            )
    plans = list(resources(cfn, "AWS::ApiGateway::UsagePlan"))
    if not plans:
        problems.append("no AWS::ApiGateway::UsagePlan")
    for plan_id, plan in plans:
        p = props(plan)
        stages = as_list(p.get("ApiStages"))
        if not any(ref_target(st.get("ApiId")) in apis and ref_target(st.get("Stage")) for st in stages):
            problems.append(f"{plan_id}: ApiStages {show(stages)} do not name the REST API and its stage")
        throttle = p.get("Throttle") or {}
        for key in ("RateLimit", "BurstLimit"):
            if not (isinstance(throttle.get(key), dict) and "Ref" in throttle[key]):
                problems.append(
                    f"{plan_id}: Throttle.{key} is {show(throttle.get(key))}, expected a parameter"
                )
    return problems


def _method_settings(cfn: Template) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (str(ms.get("ResourcePath")), str(ms.get("HttpMethod"))): ms
        for _, stage in resources(cfn, "AWS::ApiGateway::Stage")
        for ms in as_list(props(stage).get("MethodSettings"))
    }


#: (resource path as MethodSettings encodes it, method) of the high-volume routes.
CHAT_ROUTE = ("/~1v1~1chat~1completions", "POST")
MINT_ROUTES = (("/~1v1~1auth~1session-token", "POST"), ("/~1v1~1session-token", "POST"))


def check_method_throttles(cfn: Template) -> list[str]:
    """Stage throttles per method from parameters: stream starts above mints above management."""
    settings = _method_settings(cfn)
    problems = []
    paths = {path for _, _, path, _ in _operations(cfn)}
    rates: dict[str, float] = {}
    for path, _method in settings:
        if path != "/*" and path[1:].replace("~1", "/") not in paths:
            problems.append(f"MethodSettings {path} names no route of the API (paths encode / as ~1)")
    for label, key in (
        ("management", ("/*", "*")),
        ("chat", CHAT_ROUTE),
        *(("mint", r) for r in MINT_ROUTES),
    ):
        ms = settings.get(key)
        if ms is None:
            problems.append(f"no MethodSettings for {key[1]} {key[0]} ({label})")
            continue
        for field in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            if not (isinstance(ms.get(field), dict) and "Ref" in ms[field]):
                problems.append(
                    f"MethodSettings {key[1]} {key[0]}: {field} is {show(ms.get(field))}, expected a parameter"
                )
        rate = _number(cfn, ms.get("ThrottlingRateLimit"))
        if rate is not None:
            rates[label] = rate
    if {"chat", "mint", "management"} <= set(rates) and not rates["chat"] > rates["mint"] > 0:
        problems.append(f"default stage rates {rates}: stream starts must get more than mints")
    if {"mint", "management"} <= set(rates) and not rates["mint"] > rates["management"] / 2:
        problems.append(f"default stage rates {rates}: minting is starved next to management")
    return problems


def check_single_stage(cfn: Template) -> list[str]:
    """One stage per REST API: no SAM legacy stage named "Stage" (set OpenApiVersion)."""
    problems = []
    for dep_id, dep in resources(cfn, "AWS::ApiGateway::Deployment"):
        if props(dep).get("StageName"):
            problems.append(
                f"{dep_id}: creates the extra stage {props(dep)['StageName']!r} (set OpenApiVersion on the Api)"
            )
    by_api: dict[str, list[str]] = {}
    for stage_id, stage in resources(cfn, "AWS::ApiGateway::Stage"):
        by_api.setdefault(str(ref_target(props(stage).get("RestApiId"))), []).append(stage_id)
    for api_id, stages in by_api.items():
        if len(stages) != 1:
            problems.append(f"{api_id}: {len(stages)} stages {stages}, expected one")
    return problems


def check_access_logs(cfn: Template) -> list[str]:
    """Every stage writes JSON access logs (with the streaming-relevant fields) to a retained log group."""
    problems = []
    log_groups = dict(resources(cfn, "AWS::Logs::LogGroup"))
    required = {"requestId", "status", "responseLatency", "responseLength", "integrationLatency", "integrationStatus",
                "resourcePath", "httpMethod", "errorType"}  # fmt: skip
    for stage_id, stage in resources(cfn, "AWS::ApiGateway::Stage"):
        setting = props(stage).get("AccessLogSetting") or {}
        target = ref_target(setting.get("DestinationArn"))
        if target not in log_groups:
            problems.append(
                f"{stage_id}: AccessLogSetting.DestinationArn {show(setting.get('DestinationArn'))} is no log group of the stack"
            )
        elif props(log_groups[target]).get("RetentionInDays") in (None, ""):
            problems.append(f"{stage_id}: access log group {target} has no RetentionInDays")
        fmt = setting.get("Format")
        try:
            fields = json.loads(render_gateway_template(fmt)) if isinstance(fmt, str) else None
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            problems.append(
                f"{stage_id}: access log Format is not one JSON object once rendered: {show(fmt)}"
            )
            continue
        missing = required - set(fields)
        if missing:
            problems.append(f"{stage_id}: access log Format lacks {sorted(missing)}")
    if list(resources(cfn, "AWS::ApiGateway::Stage")) and not list(
        resources(cfn, "AWS::ApiGateway::Account")
    ):
        problems.append("no AWS::ApiGateway::Account: REST access logs need the region's CloudWatch role")
    return problems


def check_table_redeployable(cfn: Template) -> list[str]:
    """Tables keep their data on delete but have no fixed name, so a redeploy of the stage works."""
    problems = []
    for table_id, table in resources(cfn, "AWS::DynamoDB::Table"):
        if "TableName" in props(table):
            problems.append(
                f"{table_id}: fixed TableName {show(props(table)['TableName'])} blocks delete-and-redeploy while the data is retained"
            )
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if table.get(policy) not in ("Retain", "RetainExceptOnCreate", "Snapshot"):
                problems.append(
                    f"{table_id}: {policy} is {table.get(policy)!r}; the data must survive a stack delete"
                )
    return problems


WEB_ADAPTER_LAYER = "753240598075:layer:LambdaAdapterLayerArm64:"


def check_web_adapter_layer(cfn: Template, function: str = "StreamProxyFunction") -> list[str]:
    """The Web Adapter layer ARN is built from the region (no fixed region), with an override parameter."""
    layers = as_list(props(cfn["Resources"].get(function, {})).get("Layers"))
    built = [layer for layer in layers if isinstance(layer, dict) and "Fn::If" in layer]
    if not built:
        return [f"{function}: Layers {show(layers)} has no Fn::If between an override and the regional ARN"]
    _, override, regional = built[0]["Fn::If"]
    problems = []
    if not (isinstance(override, dict) and "Ref" in override):
        problems.append(f"{function}: the layer override is {show(override)}, expected a parameter")
    text = sub_text(regional) or ""
    if "${AWS::Region}" not in text or WEB_ADAPTER_LAYER not in text:
        problems.append(
            f"{function}: the default layer ARN {show(regional)} is not built from ${{AWS::Region}}"
        )
    for layer in layers:
        if isinstance(layer, str) and re.search(r":lambda:[a-z]{2}-[a-z]+-\d:", layer):
            problems.append(f"{function}: layer {layer} is fixed to one region")
    return problems


def check_capacity_parameters(cfn: Template) -> list[str]:
    """Authorizer and minting keep reserved concurrency; the stream function's memory is a parameter."""
    problems = []
    res = cfn["Resources"]
    for fn in ("AuthorizerFunction", "SessionTokensFunction"):
        reserved = props(res.get(fn, {})).get("ReservedConcurrentExecutions")
        refs = json.dumps(reserved)
        if reserved is None or '"Ref": "' not in refs:
            problems.append(f"{fn}: ReservedConcurrentExecutions is {show(reserved)}, expected a parameter")
        elif not any((_number(cfn, {"Ref": name}) or 0) > 0 for name in re.findall(r'"Ref": "(\w+)"', refs)):
            problems.append(f"{fn}: the reserved-concurrency parameter defaults to no reservation")
    memory = props(res.get("StreamProxyFunction", {})).get("MemorySize")
    if not (isinstance(memory, dict) and "Ref" in memory):
        problems.append(f"StreamProxyFunction: MemorySize is {show(memory)}, expected a parameter")
    return problems


def check_queue_consumers(cfn: Template) -> list[str]:
    """SQS event sources: one record per invocation (or per-record failures), bounded concurrency,
    and a queue visibility timeout of at least six times the function timeout."""
    problems = []
    res = cfn["Resources"]
    fn_timeouts = {fn_id: _number(cfn, props(fn).get("Timeout")) or 3 for fn_id, fn in functions(cfn)}
    for esm_id, esm in resources(cfn, "AWS::Lambda::EventSourceMapping"):
        p = props(esm)
        queue = ref_target(p.get("EventSourceArn"))
        if queue not in res or res[queue].get("Type") != "AWS::SQS::Queue":
            continue
        fn = ref_target(p.get("FunctionName"))
        batch = _number(cfn, p.get("BatchSize")) or 10
        if batch != 1 and "ReportBatchItemFailures" not in as_list(p.get("FunctionResponseTypes")):
            problems.append(
                f"{esm_id}: BatchSize {batch:g} without ReportBatchItemFailures: one slow record fails the batch"
            )
        if batch != 1:
            problems.append(
                f"{esm_id}: BatchSize {batch:g}; records run one after another inside one timeout"
            )
        if not (p.get("ScalingConfig") or {}).get("MaximumConcurrency"):
            problems.append(f"{esm_id}: no ScalingConfig.MaximumConcurrency")
        visibility = _number(cfn, props(res[queue]).get("VisibilityTimeout")) or 30
        timeout = fn_timeouts.get(str(fn), 3)
        if visibility < 6 * timeout:
            problems.append(
                f"{queue}: VisibilityTimeout {visibility:g} s is less than 6 x {fn} Timeout {timeout:g} s"
            )
    return problems


def check_validation_budgets(cfn: Template) -> list[str]:
    """The validator's Timeout leaves room for a queued run's budget, its routes' for /llms/test's 25 s, and
    on-demand requests (POST /validate) reach the validation queue through the bus like registrations."""
    from llm_gateway.domain.conformance import budget
    from llm_gateway.domain.validation import LLM_VALIDATION_REQUESTED

    problems = []
    validator = props(cfn["Resources"].get("ValidatorFunction", {}))
    timeout = _number(cfn, validator.get("Timeout")) or 3
    needed = budget.VALIDATOR_BUDGET_S + budget.VALIDATOR_MARGIN_S
    if timeout < needed:
        problems.append(
            f"ValidatorFunction: Timeout {timeout:g} s is less than the validation budget "
            f"{budget.VALIDATOR_BUDGET_S:g} s + margin {budget.VALIDATOR_MARGIN_S:g} s"
        )
    routes = props(cfn["Resources"].get("ValidatorApiFunction", {}))
    routes_timeout = _number(cfn, routes.get("Timeout")) or 3
    if routes_timeout < budget.CONFIG_TEST_BUDGET_S + budget.CONFIG_TEST_MARGIN_S:
        problems.append(
            f"ValidatorApiFunction: Timeout {routes_timeout:g} s is too short for /llms/test's budget"
        )
    routed = [
        rule_id
        for rule_id, rule in resources(cfn, "AWS::Events::Rule")
        if LLM_VALIDATION_REQUESTED in as_list((props(rule).get("EventPattern") or {}).get("detail-type"))
        and any(ref_target(t.get("Arn")) == "ValidationQueue" for t in as_list(props(rule).get("Targets")))
    ]
    if not routed:
        problems.append(f"no rule sends {LLM_VALIDATION_REQUESTED!r} events to ValidationQueue")
    return problems


def check_rule_targets(cfn: Template) -> list[str]:
    """EventBridge targets retry on purpose and dead-letter what they cannot deliver."""
    problems = []
    policies = [props(qp) for _, qp in resources(cfn, "AWS::SQS::QueuePolicy")]
    for rule_id, rule in resources(cfn, "AWS::Events::Rule"):
        for target in as_list(props(rule).get("Targets")):
            where = f"{rule_id} target {target.get('Id')}"
            retry = target.get("RetryPolicy") or {}
            if not {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} <= set(retry):
                problems.append(
                    f"{where}: no RetryPolicy (MaximumRetryAttempts and MaximumEventAgeInSeconds)"
                )
            dlq = ref_target((target.get("DeadLetterConfig") or {}).get("Arn"))
            if dlq is None:
                problems.append(f"{where}: no DeadLetterConfig")
                continue
            allowed = any(
                dlq in {ref_target(q) for q in as_list(qp.get("Queues"))}
                and any(
                    "events.amazonaws.com" in json.dumps(st.get("Principal"))
                    and rule_id in json.dumps(st.get("Condition"))
                    for st in as_list((qp.get("PolicyDocument") or {}).get("Statement"))
                )
                for qp in policies
            )
            if not allowed:
                problems.append(
                    f"{where}: dead-letter queue {dlq} has no policy letting this rule send to it"
                )
    return problems


def check_encryption_context_guards(cfn: Template) -> list[str]:
    """ForAllValues on kms:EncryptionContextKeys also matches a request with no context at all:
    each such statement needs a Null (or ForAnyValue) guard that requires the keys."""
    problems = []
    for st in iam_statements(cfn):
        conditions = st.body.get("Condition") or {}
        for operator, keys in conditions.items():
            if not (operator.startswith("ForAllValues:") and isinstance(keys, dict)):
                continue
            if not any(k.lower() == "kms:encryptioncontextkeys" for k in keys):
                continue
            null = conditions.get("Null") or {}
            guarded = any(
                k.lower().startswith("kms:encryptioncontext") and str(v).lower() == "false"
                for k, v in null.items()
            ) or any(
                op.startswith("ForAnyValue:") and any(k.lower() == "kms:encryptioncontextkeys" for k in body)
                for op, body in conditions.items()
                if isinstance(body, dict)
            )
            if not guarded:
                problems.append(
                    f"{st.where}: {operator} on kms:EncryptionContextKeys without a Null/ForAnyValue guard also allows an empty context"
                )
    return problems


def check_secrets_manager_cmk_permissions(cfn: Template, key: str = "CredentialsKey") -> list[str]:
    """A role that writes secrets under the customer managed key needs kms:GenerateDataKey and
    kms:Decrypt on it (Secrets Manager documents both for CreateSecret/PutSecretValue)."""
    problems = []
    statements = iam_statements(cfn)
    writers = {
        role
        for st in statements
        if st.allows and st.actions_lower & {"secretsmanager:createsecret", "secretsmanager:putsecretvalue"}
        for role in st.roles
    }
    for role in sorted(writers):
        granted = {
            action
            for st in statements
            if st.allows
            and role in st.roles
            and any(ref_target(r) == key for r in as_list(st.body.get("Resource")))
            for action in st.actions_lower
        }
        for needed in ("kms:generatedatakey", "kms:decrypt"):
            if needed not in granted:
                problems.append(f"{role}: writes secrets under {key} without {needed} on it")
    return problems


def _secret_names(st: Statement) -> list[str]:
    """The secret names (after the ARN prefix) a statement's resources and SecretARN conditions use."""
    texts = (
        [sub_text(r) for r in as_list(st.body.get("Resource"))]
        if any(a.startswith("secretsmanager:") for a in st.actions_lower)
        else []
    )
    texts += [sub_text(v) for v in _condition_values(st, "kms:EncryptionContext:SecretARN")]
    return [t[len(SECRET_ARN_PREFIX) :] if t and t.startswith(SECRET_ARN_PREFIX) else str(t) for t in texts]


def check_secret_scopes(
    cfn: Template, platform_readers: frozenset[str] = PLATFORM_SECRET_READERS
) -> list[str]:
    """Tenant secrets (acct_*) and platform secrets are separate grants: nobody writes platform keys,
    only the stream function reads them, and no grant spans the whole stage prefix."""
    problems = []
    fn_by_role = role_functions(cfn)
    for st in iam_statements(cfn):
        if not st.allows:
            continue
        fns = {fn for role in st.roles for fn in fn_by_role.get(role, set())}
        for name in _secret_names(st):
            if name == TENANT_SECRETS:
                continue
            if name == WEBHOOK_SECRETS:
                for fn in sorted(fns - WEBHOOK_SECRET_USERS):
                    problems.append(f"{st.where}: gives {fn} the webhook signing secrets")
                continue
            if name == PLATFORM_SECRETS:
                if st.actions_lower & SECRET_WRITES:
                    problems.append(
                        f"{st.where}: may change platform secrets ({sorted(st.actions_lower & SECRET_WRITES)})"
                    )
                for fn in sorted(fns - platform_readers):
                    problems.append(f"{st.where}: gives {fn} the platform secrets")
                continue
            problems.append(
                f"{st.where}: secret scope {name!r} is none of {TENANT_SECRETS!r}, {WEBHOOK_SECRETS!r}, "
                f"{PLATFORM_SECRETS!r}"
            )
    return problems


_TABLE_WRITES = {"dynamodb:putitem", "dynamodb:updateitem", "dynamodb:deleteitem", "dynamodb:batchwriteitem"}


#: The partition keys the stream function may write: health counters and the request log.
STREAM_WRITE_PREFIXES = ("HEALTH#", "REQLOG#", "REQSESSION#", "USAGE#")


def check_stream_writes_health_only(cfn: Template, function: str = "StreamProxyFunction") -> list[str]:
    """The function that faces every stream client writes only health and request-log items
    (``HEALTH#*``, ``REQLOG#*``, ``REQSESSION#*``, ``USAGE#*`` partition keys, by a
    ``dynamodb:LeadingKeys`` condition): never a session, an LLM or an account."""
    problems = []
    roles = {role for role, fns in role_functions(cfn).items() if function in fns}
    for st in iam_statements(cfn):
        writes = st.actions_lower & _TABLE_WRITES
        if not st.allows or not writes or not set(st.roles) & roles:
            continue
        keys = [sub_text(v) for v in _condition_values(st, "dynamodb:LeadingKeys")]
        if not keys or any(k is None or not k.startswith(STREAM_WRITE_PREFIXES) for k in keys):
            for action in sorted(writes):
                problems.append(
                    f"{function}: {action} on the table without a HEALTH# (or request log) leading-key condition"
                )
    return problems


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours)\)$")


def check_schedules(cfn: Template) -> list[str]:
    """Each EventBridge Scheduler schedule invokes one function through a role that may invoke only
    that function, and tells it the window it covers: ``windowSeconds`` equals the rate, at most
    the 900 s an SQS message can be delayed (domain/revalidation.py)."""
    problems = []
    for s_id, schedule in resources(cfn, "AWS::Scheduler::Schedule"):
        p = props(schedule)
        target = p.get("Target") or {}
        function = ref_target(target.get("Arn"))
        role = ref_target(target.get("RoleArn"))
        if function not in dict(functions(cfn)):
            problems.append(f"{s_id}: target {show(target.get('Arn'))} is not a function of the stack")
        grants = [st for st in iam_statements(cfn) if role in st.roles and st.allows]
        named = {ref_target(r) for st in grants for r in as_list(st.body.get("Resource"))}
        actions = {a for st in grants for a in st.actions_lower}
        if named != {function} or actions != {"lambda:invokefunction"}:
            problems.append(f"{s_id}: role {role} grants {sorted(actions)} on {sorted(map(str, named))}")
        match = _RATE.match(str(p.get("ScheduleExpression", "")))
        seconds = (
            int(match.group(1)) * (60 if match.group(2).startswith("minute") else 3600) if match else None
        )
        try:
            window = json.loads(str(target.get("Input") or "{}")).get("windowSeconds")
        except ValueError:
            window = None
        if seconds is None or window != seconds or seconds > 900:
            problems.append(
                f"{s_id}: windowSeconds {window!r} must equal the rate ({p.get('ScheduleExpression')}), at most 900 s"
            )
    return problems


def _alarms(cfn: Template) -> list[tuple[str, dict[str, Any]]]:
    return [(a_id, props(a)) for a_id, a in resources(cfn, "AWS::CloudWatch::Alarm")]


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(namespace, metric, dimension json) of an alarm's metric(s), plus ("", "", expression) ones."""
    found = []
    if alarm.get("MetricName"):
        found.append(
            (
                str(alarm.get("Namespace")),
                str(sub_text(alarm["MetricName"])),
                json.dumps(alarm.get("Dimensions")),
            )
        )
    for query in as_list(alarm.get("Metrics")):
        metric = (query.get("MetricStat") or {}).get("Metric") or {}
        if metric:
            found.append(
                (
                    str(metric.get("Namespace")),
                    str(metric.get("MetricName")),
                    json.dumps(metric.get("Dimensions")),
                )
            )
        if query.get("Expression"):
            found.append(("", "", str(sub_text(query["Expression"]))))
    return found


def check_alarms(cfn: Template) -> list[str]:
    """Alarms to the SNS topic: every DLQ's depth, every function's errors and throttles, API 5XX,
    stream errors by code, mint throttles and account concurrency."""
    problems = []
    alarms = _alarms(cfn)
    topics = {t_id for t_id, _ in resources(cfn, "AWS::SNS::Topic")}
    for a_id, alarm in alarms:
        if not {ref_target(a) for a in as_list(alarm.get("AlarmActions"))} & topics:
            problems.append(f"{a_id}: notifies no SNS topic of the stack")
    for t_id, topic in resources(cfn, "AWS::SNS::Topic"):
        if "Ref" not in json.dumps(props(topic).get("TopicName")):
            problems.append(
                f"{t_id}: TopicName {show(props(topic).get('TopicName'))} is not named by a parameter"
            )
    metrics = [(a_id, m) for a_id, alarm in alarms for m in _alarm_metrics(alarm)]

    def watched(namespace: str, metric: str, dimension: str = "") -> bool:
        return any(
            ns == namespace and name == metric and dimension in dims for _, (ns, name, dims) in metrics
        )

    res = cfn["Resources"]
    dlqs = {
        ref_target((props(q).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        for _, q in resources(cfn, "AWS::SQS::Queue")
    }
    dlqs |= {
        ref_target((t.get("DeadLetterConfig") or {}).get("Arn"))
        for _, r in resources(cfn, "AWS::Events::Rule")
        for t in as_list(props(r).get("Targets"))
    }
    for dlq in sorted(d for d in dlqs if d in res):
        if not watched("AWS/SQS", "ApproximateNumberOfMessagesVisible", f'"{dlq}"'):
            problems.append(f"{dlq}: no alarm on its depth (ApproximateNumberOfMessagesVisible)")
    for fn_id, _ in functions(cfn):
        for metric in ("Errors", "Throttles"):
            if not watched("AWS/Lambda", metric, f'"{fn_id}"'):
                problems.append(f"{fn_id}: no alarm on {metric}")
    expressions = " ".join(dims for _, (ns, _, dims) in metrics if not ns)
    if not watched("AWS/ApiGateway", "5XXError"):
        problems.append("no alarm on the API's 5XXError rate")
    if "StreamErrors" not in expressions or "GROUP BY code" not in expressions:
        problems.append("no alarm on stream errors by code (StreamErrors ... GROUP BY code)")
    if not any(ns == "LlmGateway" and "MintThrottled" in name for _, (ns, name, _) in metrics):
        problems.append("no alarm on mint throttles")
    if not watched("AWS/Lambda", "ClaimedAccountConcurrency"):
        problems.append("no alarm on account concurrency (ClaimedAccountConcurrency)")
    return problems


METRICS_ADAPTER = REPO / "layers" / "common" / "llm_gateway" / "adapters" / "metrics.py"


def emitted_metrics(source: str | None = None) -> set[str]:
    """The metric names the stream app really emits (adapters/metrics.py)."""
    text = METRICS_ADAPTER.read_text("utf-8") if source is None else source
    return set(re.findall(r'name="([A-Za-z]+)"', text))


def check_stream_dashboard(cfn: Template, emitted: set[str] | None = None) -> list[str]:
    """A dashboard charts TTFT and overhead at p50/p95, errors by code and concurrent streams, from
    metric names the code emits, under the namespace and service dimension it emits them with."""
    emitted = emitted_metrics() if emitted is None else emitted
    dashboards = list(resources(cfn, "AWS::CloudWatch::Dashboard"))
    if not dashboards:
        return ["no AWS::CloudWatch::Dashboard"]
    problems = []
    for d_id, dashboard in dashboards:
        body = sub_text(props(dashboard).get("DashboardBody")) or ""
        try:
            widgets = json.loads(body)["widgets"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{d_id}: DashboardBody is not JSON with widgets")
            continue
        charted = set(re.findall(r'"LlmGateway", "(\w+)"', body)) | set(re.findall(r"SUM\((\w+)\)", body))
        for name in sorted(charted - emitted):
            problems.append(
                f"{d_id}: charts {name}, which the stream app never emits (it emits {sorted(emitted)})"
            )
        for name in ("TimeToFirstToken", "GatewayOverhead"):
            for stat in ("p50", "p95"):
                if not re.search(rf'"{name}"[^\]]*"stat": "{stat}"', body):
                    problems.append(f"{d_id}: no {name} {stat}")
        if "StreamErrors" not in charted or "GROUP BY code" not in body:
            problems.append(f"{d_id}: no stream errors by code")
        if '"ConcurrentExecutions", "FunctionName", "${StreamProxyFunction}"' not in body:
            problems.append(f"{d_id}: no concurrent streams (the stream function's ConcurrentExecutions)")
        env = (props(cfn["Resources"].get("StreamProxyFunction", {})).get("Environment") or {}).get(
            "Variables"
        ) or {}
        service = sub_text(env.get("POWERTOOLS_SERVICE_NAME"))
        if (
            env.get("POWERTOOLS_METRICS_NAMESPACE") != "LlmGateway"
            or not service
            or f'"{service}"' not in body
        ):
            problems.append(
                f"{d_id}: does not chart namespace/service {env.get('POWERTOOLS_METRICS_NAMESPACE')!r}/{service!r}, "
                "which the stream function emits under"
            )
        if len(widgets) < 4:
            problems.append(f"{d_id}: {len(widgets)} widgets")
    return problems
