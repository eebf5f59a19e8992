"""Reads template.yaml, the single source of truth for resources, routes and environment.

The local stack provisions from these same definitions; it keeps no second copy of them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def repo_root() -> Path:
    """The checkout this CLI runs from (the CLI is installed editable from it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").is_file():
            return parent
    raise FileNotFoundError("template.yaml not found above " + str(here))


def load_template(path: Path | None = None) -> dict[str, Any]:
    from cfnlint.decode import decode_str

    text = (path or repo_root() / "template.yaml").read_text("utf-8")
    template, problems = decode_str(text)
    if problems or template is None:
        raise ValueError(f"template.yaml could not be read: {problems}")
    plain: dict[str, Any] = _plain(template)
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


@dataclass
class Resolver:
    """Resolves the intrinsic functions the template uses against local physical values."""

    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Like CloudFormation's, new for every stack: each `llm-gateway dev` start has its own hop marker.
    stack_id: str = field(
        default_factory=lambda: (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/llm-gateway-local/{uuid.uuid4()}"
        )
    )

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": "llm-gateway-local",
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def lookup(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        if name in self.pseudo():
            return self.pseudo()[name]
        if "." in name:
            logical, attr = name.split(".", 1)
            if (logical, attr) in self.attrs:
                return self.attrs[(logical, attr)]
        raise KeyError(name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.lookup(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.lookup(f"{logical}.{attr}")
            if fn == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(
                    r"\$\{([^}!]+)\}", lambda m: str(local.get(m.group(1)) or self.lookup(m.group(1))), text
                )
            if fn == "Fn::Join":
                sep, items = arg
                return sep.join(str(self.resolve(i)) for i in items)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def parameter_defaults(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    params = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    params.update(overrides)
    return params


@dataclass(frozen=True)
class Route:
    """One API event of a function: what API Gateway would route to which handler."""

    function: str
    module: str
    attribute: str
    method: str
    path: str
    authorized: bool
    streaming: bool
    #: API Gateway requires a usage-plan key (here: from the authorizer) before it invokes.
    metered: bool = False


def _api_key_required(template: dict[str, Any]) -> dict[str, bool]:
    """Each SAM API's default ``Auth.ApiKeyRequired``."""
    return {
        logical: bool(resource["Properties"].get("Auth", {}).get("ApiKeyRequired", False))
        for logical, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Api"
    }


def _holds(template: dict[str, Any], value: Any) -> Any:
    """A condition's value with every parameter at its default (the variant the local stack runs)."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((fn, arg),) = value.items()
    if fn == "Ref":
        return str(template.get("Parameters", {}).get(arg, {}).get("Default", ""))
    if fn == "Condition":
        return _holds(template, template["Conditions"][arg])
    if fn == "Fn::Equals":
        return str(_holds(template, arg[0])) == str(_holds(template, arg[1]))
    if fn == "Fn::Not":
        return not _holds(template, arg[0])
    raise ValueError(f"the local stack cannot evaluate the condition {fn}")


_FUNCTION_IN_URI = re.compile(r"/functions/\$\{(\w+?)(?:Alias\w+|\.Arn)\}/")


def _definition_routes(template: dict[str, Any], module_of: dict[str, tuple[str, str]]) -> list[Route]:
    """Lambda routes written in an API's DefinitionBody (the stream route, whose function depends
    on a template condition): the function is the one the integration URI names."""
    routes: list[Route] = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        paths = (resource["Properties"].get("DefinitionBody") or {}).get("paths") or {}
        for path, operations in paths.items():
            for method, operation in operations.items():
                integration = operation.get("x-amazon-apigateway-integration") or {}
                if integration.get("type") != "aws_proxy":
                    continue
                uri = integration["uri"]
                while isinstance(uri, dict) and "Fn::If" in uri:
                    name, yes, no = uri["Fn::If"]
                    uri = yes if _holds(template, {"Condition": name}) else no
                found = _FUNCTION_IN_URI.search(str(uri.get("Fn::Sub") if isinstance(uri, dict) else uri))
                if found is None or found.group(1) not in module_of:
                    continue
                module, attribute = module_of[found.group(1)]
                security = json.dumps(operation.get("security", []))
                routes.append(
                    Route(
                        function=found.group(1), module=module, attribute=attribute, method=method.upper(),
                        path=path, authorized='"NONE"' not in security,
                        streaming=integration.get("responseTransferMode") == "STREAM",
                        metered='"api_key_false"' not in security,
                    )
                )  # fmt: skip
    return routes


def api_routes(template: dict[str, Any]) -> list[Route]:
    routes: list[Route] = []
    module_of: dict[str, tuple[str, str]] = {}
    key_required = _api_key_required(template)
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        code_uri = str(props.get("CodeUri", "")).strip("/")
        handler = str(props.get("Handler", "handler.lambda_handler"))
        module_file, _, attribute = handler.rpartition(".")
        if handler.endswith(".sh"):  # a Web Adapter entry point: the ASGI app is `app`
            module_file, attribute = "app", "app"
        module = ".".join([*code_uri.split("/"), module_file])
        module_of[logical] = (module, attribute)
        for event in props.get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            ev = event["Properties"]
            auth = ev.get("Auth", {}).get("Authorizer")
            api = ev.get("RestApiId", {}).get("Ref") if isinstance(ev.get("RestApiId"), dict) else None
            metered = ev.get("Auth", {}).get("ApiKeyRequired", key_required.get(str(api), False))
            routes.append(
                Route(
                    function=logical,
                    module=module,
                    attribute=attribute,
                    method=str(ev["Method"]).upper(),
                    path=str(ev["Path"]),
                    authorized=auth != "NONE",
                    streaming=ev.get("ResponseTransferMode") == "RESPONSE_STREAM",
                    metered=bool(metered),
                )
            )
    return routes + _definition_routes(template, module_of)


def authorizer_function(template: dict[str, Any]) -> tuple[str, str] | None:
    """(module, attribute) of the API's default Lambda authorizer."""
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        auth = resource["Properties"].get("Auth", {})
        default = auth.get("DefaultAuthorizer")
        spec = auth.get("Authorizers", {}).get(default)
        if not spec:
            return None
        logical = (
            spec["FunctionArn"]["Fn::GetAtt"][0]
            if isinstance(spec["FunctionArn"]["Fn::GetAtt"], list)
            else spec["FunctionArn"]["Fn::GetAtt"].split(".")[0]
        )
        fn = template["Resources"][logical]["Properties"]
        module_file, _, attribute = str(fn.get("Handler")).rpartition(".")
        return ".".join([*str(fn["CodeUri"]).strip("/").split("/"), module_file]), attribute
    return None


def gateway_responses(template: dict[str, Any]) -> dict[str, tuple[int, str]]:
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Api":
            out = {}
            for name, spec in resource["Properties"].get("GatewayResponses", {}).items():
                body = spec.get("ResponseTemplates", {}).get("application/json", "")
                out[name] = (int(spec.get("StatusCode", 500)), body)
            return out
    return {}


@dataclass(frozen=True)
class MockResponse:
    """A mock integration's fixed answer (the API's 405s): status, headers and JSON body."""

    status: int
    headers: dict[str, str]
    body: str


def method_not_allowed_responses(template: dict[str, Any]) -> dict[str, MockResponse]:
    """Per API path, the answer of its ``x-amazon-apigateway-any-method`` mock (a 405 with
    ``Allow``), read from the API's ``DefinitionBody`` exactly as API Gateway would serve it."""
    out: dict[str, MockResponse] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        paths = (resource["Properties"].get("DefinitionBody") or {}).get("paths") or {}
        for path, item in paths.items():
            method = (item or {}).get("x-amazon-apigateway-any-method") or {}
            integration = method.get("x-amazon-apigateway-integration") or {}
            if str(integration.get("type", "")).lower() != "mock":
                continue
            answer = (integration.get("responses") or {}).get("default") or {}
            headers = {
                name.removeprefix("method.response.header."): str(value).strip("'")
                for name, value in (answer.get("responseParameters") or {}).items()
            }
            body = (answer.get("responseTemplates") or {}).get("application/json", "")
            out[str(path)] = MockResponse(int(answer.get("statusCode", 200)), headers, str(body))
    return out


def gateway_response_headers(template: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Static headers of each gateway response (``ResponseParameters.Headers``, quotes removed)."""
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Api":
            return {
                name: {
                    header: str(value).strip("'")
                    for header, value in spec.get("ResponseParameters", {}).get("Headers", {}).items()
                }
                for name, spec in resource["Properties"].get("GatewayResponses", {}).items()
            }
    return {}


@dataclass(frozen=True)
class Throttle:
    rate_per_second: float
    burst: int

    @staticmethod
    def of(spec: dict[str, Any]) -> Throttle:
        return Throttle(float(spec.get("RateLimit", 0)), int(float(spec.get("BurstLimit", 0))))


@dataclass(frozen=True)
class UsagePlanLimits:
    """The per-account token buckets of the template's usage plan: a default and per method."""

    logical_id: str
    default: Throttle
    #: ``"/path/METHOD"`` -> its own per-account limit (the plan's API-stage throttle map).
    methods: dict[str, Throttle] = field(default_factory=dict)


def usage_plan_limits(template: dict[str, Any], resolver: Resolver) -> UsagePlanLimits | None:
    for logical, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::ApiGateway::UsagePlan":
            props = resolver.resolve({k: v for k, v in resource["Properties"].items() if k != "ApiStages"})
            methods = {
                key: Throttle.of(resolver.resolve(spec))
                for stage in resource["Properties"].get("ApiStages", [])
                for key, spec in stage.get("Throttle", {}).items()
            }
            return UsagePlanLimits(logical, Throttle.of(props.get("Throttle", {})), methods)
    return None


def function_environments(template: dict[str, Any], resolver: Resolver) -> dict[str, dict[str, str]]:
    """Each function's environment, as Lambda would give it: Globals plus its own, resolved."""
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    common = {k: str(resolver.resolve(v)) for k, v in glob.items()}
    out: dict[str, dict[str, str]] = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            own = resource["Properties"].get("Environment", {}).get("Variables", {})
            out[logical] = common | {k: str(resolver.resolve(v)) for k, v in own.items()}
    return out


def function_modules(template: dict[str, Any]) -> dict[str, str]:
    """Each function's handler module (``functions.registry.handler``; a Web Adapter's: ``app``)."""
    out = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource["Properties"]
            handler = str(props.get("Handler", "handler.lambda_handler"))
            module_file = "app" if handler.endswith(".sh") else handler.rpartition(".")[0]
            out[logical] = ".".join([*str(props.get("CodeUri", "")).strip("/").split("/"), module_file])
    return out


@dataclass(frozen=True)
class QueueMapping:
    """An SQS event source mapping: which queue feeds which function, in what batch size."""

    queue: str
    function: str
    module: str
    attribute: str
    batch_size: int
    #: ``ScalingConfig.MaximumConcurrency`` as the template writes it (a ``Ref`` the caller resolves).
    max_concurrency: Any = 1


def queue_mappings(template: dict[str, Any]) -> list[QueueMapping]:
    mappings: list[QueueMapping] = []
    resources = template["Resources"]
    for resource in resources.values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource["Properties"]
        source = props["EventSourceArn"].get("Fn::GetAtt")
        queue = source[0] if isinstance(source, list) else str(source).split(".")[0]
        function = props["FunctionName"]["Ref"]
        fn = resources[function]["Properties"]
        module_file, _, attribute = str(fn.get("Handler")).rpartition(".")
        module = ".".join([*str(fn["CodeUri"]).strip("/").split("/"), module_file])
        concurrency = (props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1)
        mappings.append(
            QueueMapping(queue, function, module, attribute, int(props.get("BatchSize", 10)), concurrency)
        )
    return mappings
