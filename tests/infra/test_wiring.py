"""DESIGN-level wiring rules, pinned: settings are read in one place and on first use, nothing is
built at import, and handlers only translate (no adapters, no AWS SDK)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from llm_gateway import composition

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "layers" / "common" / "llm_gateway"
#: Every entry point the template names (each function's folder holds only its entry modules).
HANDLERS = [p for p in sorted((REPO / "functions").glob("*/*.py")) if p.name != "__init__.py"]
PRODUCT = sorted(LAYER.rglob("*.py")) + sorted((REPO / "functions").rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_only_the_settings_models_read_the_environment() -> None:
    readers = [
        _rel(p)
        for p in PRODUCT
        if p.name != "settings.py" and re.search(r"os\.environ|os\.getenv", p.read_text())
    ]
    assert readers == [], f"read settings through a settings model instead: {readers}"


def _module_level_calls(path: Path) -> list[str]:
    """Calls made when the module loads (module body, not inside a def/class body)."""
    calls = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom
        ):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                calls.append(ast.unparse(sub.func))
    return calls


@pytest.mark.parametrize("path", HANDLERS, ids=_rel)
def test_a_handler_builds_nothing_when_it_loads(path: Path) -> None:
    """At import a handler may make its resolver, its typed aliases and its services slot; its
    services (settings, clients, adapters) are built on first use."""
    allowed = {"create_resolver", "ServicesSlot", "Annotated", "Path", "Query", "re.compile", "Field",
               "APIGatewayRestResolver", "ok_response", "error_responses", "TypeVar", "get_logger"}  # fmt: skip
    made = [
        c for c in _module_level_calls(path) if c not in allowed and not c.startswith(("app.", "_errors"))
    ]
    assert made == [], f"{_rel(path)} calls {made} at import"


@pytest.mark.parametrize("path", HANDLERS, ids=_rel)
def test_a_handler_only_translates(path: Path) -> None:
    """Adapters and AWS clients come from the function's services, never from the handler."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(sub)
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for sub in ast.walk(node)
    }
    nodes = [n for n in ast.walk(tree) if id(n) not in typing_only]
    imported = [n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in nodes if isinstance(n, ast.Import) for a in n.names]
    wrong = [m for m in imported if m.startswith(("llm_gateway.adapters", "boto3", "botocore", "aiohttp"))]
    assert wrong == [], f"{_rel(path)} imports {wrong}"


def test_there_is_no_global_reset_and_every_function_has_its_services() -> None:
    assert not hasattr(composition, "reset")
    from llm_gateway.settings import FUNCTION_SETTINGS

    kinds = {
        cls.settings_model
        for cls in vars(composition).values()
        if isinstance(cls, type)
        and issubclass(cls, composition.Services)
        and cls.__name__.endswith("Services")
    }
    assert set(FUNCTION_SETTINGS.values()) <= kinds, "one services class per function's settings"


REST_HANDLERS = [p for p in HANDLERS if "create_resolver()" in p.read_text()]


def test_every_entry_point_is_checked() -> None:
    names = {_rel(p) for p in HANDLERS}
    assert {
        "functions/validator/api.py",
        "functions/validator/consumer.py",
        "functions/stream_proxy/app.py",
    } <= names
    assert "functions/validator/api.py" in {_rel(p) for p in REST_HANDLERS}


@pytest.mark.parametrize("path", REST_HANDLERS, ids=_rel)
def test_routes_return_models_for_powertools_to_serialise(path: Path) -> None:
    """A route hands back its model (bare, or in ``Response[Model]`` for a status or headers): the
    annotation is what Powertools checks the answer against, so a handler never dumps one itself."""
    source = path.read_text()
    assert ".to_json_dict()" not in source and "json.dumps" not in source, (
        f"{_rel(path)} serialises a response itself"
    )
    tree = ast.parse(source)
    for node in ast.walk(tree):
        routes = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
        documented = [r for r in routes if r.startswith(("app.get", "app.post", "app.put"))]
        # The OpenAPI document is served as the text it was written as (not a model of ours).
        if (
            isinstance(node, ast.FunctionDef)
            and documented
            and "include_in_schema=False" not in documented[0]
        ):
            returns = ast.unparse(node.returns) if node.returns else ""
            assert "Any" not in returns, f"{_rel(path)}: {node.name} returns {returns or 'nothing typed'}"


@pytest.mark.parametrize("path", REST_HANDLERS, ids=_rel)
def test_ownership_is_decided_in_the_domain(path: Path) -> None:
    """Whether an LLM is the caller's is one rule (``domain.ownership``): no handler compares
    account ids or reads a record to decide it."""
    source = path.read_text()
    assert ".account_id !=" not in source and "llm_not_found" not in source, (
        f"{_rel(path)} decides ownership itself"
    )


#: Variables a function's runtime reads rather than its settings: Powertools' own, and the Lambda
#: Web Adapter's in front of the stream app.
RUNTIME_VARIABLES = re.compile(r"^(POWERTOOLS_|AWS_LWA_|AWS_LAMBDA_EXEC_WRAPPER$|PORT$)")


def _variables(props: dict[str, Any]) -> set[str]:
    env = props.get("Environment")
    variables = env.get("Variables") if isinstance(env, dict) else None
    return set(variables) if isinstance(variables, dict) else set()


def test_each_function_is_given_exactly_what_its_settings_read(sam: dict[str, Any]) -> None:
    """No variable in Globals that only some functions read, none a function's settings do not
    declare, and every required one set: a function's environment is its settings model."""
    from llm_gateway.settings import FUNCTION_SETTINGS

    resources = sam["Resources"]
    shared = _variables(sam["Globals"]["Function"])
    assert {v for v in shared if not RUNTIME_VARIABLES.match(v)} == set(), "Globals: only Powertools'"
    functions = {k: v for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"}
    problems = []
    for name, resource in sorted(functions.items()):
        model = FUNCTION_SETTINGS.get(name)
        fields = model.model_fields.values() if model else []
        declared = {str(f.alias) for f in fields}
        required = {str(f.alias) for f in fields if f.is_required()}
        given = {v for v in shared | _variables(resource["Properties"]) if not RUNTIME_VARIABLES.match(v)}
        if extra := given - declared:
            problems.append(f"{name} is given {sorted(extra)}, which its settings do not read")
        if missing := required - given:
            problems.append(f"{name} lacks required {sorted(missing)}")
    assert problems == []
