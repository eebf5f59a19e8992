"""One error vocabulary: every code raised anywhere is in ``ERROR_TABLE`` with the status it
answers, and the README's table, the OpenAPI document and the API Gateway responses agree with it."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil

import pytest

import llm_gateway
from llm_gateway.domain.streaming import UpstreamFailure
from llm_gateway.errors import ERROR_TABLE, ErrorCode, GatewayError
from tests import readme
from tests.conftest import REPO

SOURCES = sorted((REPO / "layers/common/llm_gateway").rglob("*.py")) + sorted(
    (REPO / "functions").rglob("*.py")
)
#: Stream outcomes that are never sent to anyone (metrics only).
NEVER_SENT = {ErrorCode.CLIENT_DISCONNECTED}


def _all_error_classes() -> list[type[GatewayError]]:
    for module in pkgutil.walk_packages(llm_gateway.__path__, "llm_gateway."):
        importlib.import_module(module.name)
    found: list[type[GatewayError]] = []
    pending = [GatewayError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_has_a_code_of_the_table_and_its_status(cls: type[GatewayError]) -> None:
    assert cls.code in ERROR_TABLE, f"{cls.__name__}.code {cls.code!r} is not in ERROR_TABLE"
    assert cls.status in ERROR_TABLE[cls.code].statuses, f"{cls.__name__}: {cls.status} for {cls.code!r}"


def _literal_codes() -> list[tuple[str, str]]:
    """Every ``code="..."`` passed in a call, and every ``code = "..."`` of a class body."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                found += [
                    (f"{path.name}:{node.lineno}", k.value.value)
                    for k in node.keywords
                    if k.arg == "code"
                    and isinstance(k.value, ast.Constant)
                    and isinstance(k.value.value, str)
                ]
    return found


def test_every_code_raised_anywhere_is_in_the_table() -> None:
    literal = _literal_codes()
    assert len(literal) > 20, "the scan finds the raise sites"
    unknown = [(where, code) for where, code in literal if code not in ERROR_TABLE]
    assert unknown == [], f"add these to ERROR_TABLE (code, status, meaning): {unknown}"


def test_a_code_answers_its_tables_status_whatever_class_raises_it() -> None:
    assert GatewayError("x", code="llm_limit_reached").status == 409
    assert GatewayError("x", code="unknown_parameter").status == 400
    for code in ErrorCode:
        if code in NEVER_SENT:
            continue
        assert code in ERROR_TABLE, f"ErrorCode.{code.name} is not in ERROR_TABLE"
        assert UpstreamFailure(code).status in ERROR_TABLE[code].statuses


def test_the_api_gateway_responses_use_the_table() -> None:
    from llm_gateway_local.template import gateway_responses, load_template

    for name, (status, body) in gateway_responses(load_template()).items():
        code = json.loads(body.replace("$context.error.messageString", '"m"'))["error"]["code"]
        assert code in ERROR_TABLE, f"gateway response {name}: {code}"
        if name not in ("DEFAULT_4XX", "DEFAULT_5XX"):
            assert status in ERROR_TABLE[code].statuses, f"gateway response {name}: {status} for {code}"


def test_the_readme_table_is_the_table() -> None:
    rendered = readme.error_table()
    assert rendered in readme.text(), "README.md's error table drifted from ERROR_TABLE; paste:\n" + rendered


def test_the_openapi_document_names_every_code() -> None:
    document = json.loads((REPO / "layers/common/llm_gateway/openapi.json").read_text("utf-8"))
    described = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["description"]
    missing = [code for code in ERROR_TABLE if f"`{code}`" not in described]
    assert missing == [], f"run `make openapi`: {missing}"
