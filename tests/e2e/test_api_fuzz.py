"""Schemathesis over the served OpenAPI document, against the running local stack (SECURITY 19, 26).

Every operation gets schema-valid and schema-invalid requests: no 5xx, invalid data rejected
(`negative_data_rejection`), and every route that declares auth answers 401 without it
(`ignored_auth`). Responses are scanned for the canary like everything else.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LeakCollector
from tests.e2e.conftest import RunningStack

EXAMPLES_PER_MODE = 12
#: The server keeps to its document: statuses, media types and bodies as documented, invalid
#: input refused, auth enforced.
CHECKS = [
    negative_data_rejection,
    ignored_auth,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_survives_fuzzing(
    stack: RunningStack, leak_collector: LeakCollector, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/v1/openapi.json")
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (
            operation.body or operation.query or operation.path_parameters
        ):
            continue  # nothing in the request can be made invalid (e.g. GET /.well-known/jwks.json)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Case) -> None:
            # A query parameter whose value is an empty list is never sent, so the request that
            # reaches us is valid and "accepting invalid data" would be a false alarm.
            assume(not any(value == [] for value in (case.query or {}).values()))
            response = case.call(headers=auth)
            leak_collector.add(f"fuzz {case.method} {case.path}", response.text)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
            )
            if response.status_code == 413:
                return  # rejected as too large: a rejection schemathesis does not list (payloads over 1 MB)
            case.validate_response(response, checks=CHECKS, headers=auth)

        fuzz()
