"""The shared REST edge: each route accepts exactly the query parameters its handler declares."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from llm_gateway.api import LlmId, create_resolver, declared_query_names, json_response, resolve
from llm_gateway.composition import EdgeServices
from llm_gateway.settings import EdgeSettings

app = create_resolver()
services = EdgeServices(EdgeSettings(STAGE="unit", HOP_MARKER="stack-0"))


class Thing(BaseModel):
    name: str


@app.get("/v1/things")
def list_things(
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(alias="perPage")] = 20,
) -> Response[Any]:
    return json_response(200, {"page": page, "perPage": per_page})


@app.get("/v1/things/<thing_id>")
def get_thing(thing_id: LlmId) -> Response[Any]:
    return json_response(200, {"id": thing_id})


@app.post("/v1/things")
def create_thing(thing: Annotated[Thing, Body()]) -> Response[Any]:
    return json_response(201, thing.model_dump())


def call(method: str, path: str, resource: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    event = {
        "resource": resource, "path": path, "httpMethod": method, "headers": {}, "body": None,
        "queryStringParameters": query, "multiValueQueryStringParameters": None,
        "pathParameters": None, "requestContext": {"resourcePath": resource, "httpMethod": method, "stage": "v1"},
        "isBase64Encoded": False,
    }  # fmt: skip
    result = resolve(app, event, None, services)
    return result["statusCode"], json.loads(result["body"])


def test_the_declared_names_come_from_the_handler_signature() -> None:
    assert declared_query_names(list_things, "/v1/things") == {"page", "perPage"}
    assert declared_query_names(get_thing, "/v1/things/<thing_id>") == set()
    assert declared_query_names(create_thing, "/v1/things") == set()


def test_declared_query_parameters_pass() -> None:
    assert call("GET", "/v1/things", "/v1/things", {"page": "2", "perPage": "5"}) == (
        200,
        {"page": 2, "perPage": 5},
    )


def test_an_undeclared_one_is_a_400_naming_it() -> None:
    status, body = call("GET", "/v1/things", "/v1/things", {"perpage": "5", "page": "1"})
    assert status == 400 and body["error"]["code"] == "unknown_parameter"
    assert body["error"]["details"] == [{"field": "perpage", "message": "not a parameter of this route"}]


def test_a_route_with_path_parameters_declares_none() -> None:
    status, body = call("GET", "/v1/things/t1", "/v1/things/{id}", {"expand": "1"})
    assert status == 400 and body["error"]["details"][0]["field"] == "expand"
    assert call("GET", "/v1/things/t1", "/v1/things/{id}") == (200, {"id": "t1"})


def test_an_unknown_route_stays_a_404() -> None:
    status, body = call("GET", "/v1/nothing", "/v1/nothing", {"x": "1"})
    assert status == 404 and body["error"]["code"] == "route_not_found"
