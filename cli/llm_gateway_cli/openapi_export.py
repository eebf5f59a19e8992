"""Writes the management API's OpenAPI document: the routes of every REST function, merged.

The registry serves this file at ``GET /v1/openapi.json`` (it ships in the layer); a test fails
when it drifts from what the handlers generate, so run ``make openapi`` after changing a route.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

HANDLERS = (
    "functions.registry.handler",
    "functions.validator.api",
    "functions.session_tokens.handler",
    "functions.api_keys.handler",
    "functions.webhooks.handler",
)
TITLE = "LLM Gateway management API"
#: Routes anyone may call (Powertools drops an empty ``security`` list, so it is set here).
PUBLIC_OPERATIONS = {("/.well-known/jwks.json", "get")}


def merged_document() -> dict[str, Any]:
    import importlib

    from llm_gateway.api import describe_for_openapi

    document: dict[str, Any] = {}
    for module_name in HANDLERS:
        app = importlib.import_module(module_name).app
        describe_for_openapi(app, TITLE)
        schema = json.loads(app.get_openapi_json_schema(title=TITLE, version="1.0.0"))
        if not document:
            document = schema
            continue
        for path, operations in schema.get("paths", {}).items():
            document.setdefault("paths", {}).setdefault(path, {}).update(operations)
        for kind, items in schema.get("components", {}).items():
            document.setdefault("components", {}).setdefault(kind, {}).update(items)
    error_400 = _any_response(document, "400")
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            # Validation errors are 400 with our error shape, not Powertools' default 422.
            responses.pop("422", None)
            if "204" in responses:  # no body, so no media type (Powertools writes JSON for any status)
                responses["204"].pop("content", None)
            path_params = [p for p in operation.get("parameters", []) if p.get("in") == "path"]
            if path_params and "400" not in responses and error_400 is not None:
                responses["400"] = error_400  # an id that breaks its pattern or length is a 400
    for unused in ("HTTPValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(unused, None)
    for path, method in PUBLIC_OPERATIONS:
        document["paths"][path][method]["security"] = []
    document["paths"] = dict(sorted(document.get("paths", {}).items()))
    return document


def _any_response(document: dict[str, Any], status: str) -> dict[str, Any] | None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            found = operation.get("responses", {}).get(status)
            if found is not None:
                return dict(found)
    return None


def render() -> str:
    return json.dumps(merged_document(), indent=2, sort_keys=False) + "\n"


def packaged_path() -> Path:
    return Path(str(resources.files("llm_gateway").joinpath("openapi.json")))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else packaged_path()
    target.write_text(render(), "utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
