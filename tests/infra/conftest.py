"""Session fixtures: template.yaml decoded once and translated by SAM once, offline."""

from __future__ import annotations

import copy

import pytest

from tests.infra.template_checks import (
    STREAM_COMPUTE_VARIANTS,
    Template,
    load_sam_template,
    parameters_for,
    translate,
    with_conditions_applied,
)


@pytest.fixture(scope="session")
def _sam_original() -> Template:
    return load_sam_template()


@pytest.fixture(scope="session", params=STREAM_COMPUTE_VARIANTS)
def _cfn_original(request: pytest.FixtureRequest, _sam_original: Template) -> Template:
    """Once per ``StreamCompute`` variant: what CloudFormation deploys for it (conditions applied)."""
    params = parameters_for(request.param)
    return with_conditions_applied(translate(_sam_original, params), params)


@pytest.fixture
def sam(_sam_original: Template) -> Template:
    """template.yaml as plain dicts (a fresh copy per test, safe to mutate)."""
    return copy.deepcopy(_sam_original)


@pytest.fixture
def cfn(_cfn_original: Template) -> Template:
    """The SAM-translated CloudFormation of one StreamCompute variant (a fresh copy per test)."""
    return copy.deepcopy(_cfn_original)
