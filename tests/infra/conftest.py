"""Session fixtures: template.yaml decoded once and translated by SAM once, offline."""

from __future__ import annotations

import copy

import pytest

from tests.infra.template_checks import Template, load_sam_template, translate


@pytest.fixture(scope="session")
def _sam_original() -> Template:
    return load_sam_template()


@pytest.fixture(scope="session")
def _cfn_original(_sam_original: Template) -> Template:
    return translate(_sam_original)


@pytest.fixture
def sam(_sam_original: Template) -> Template:
    """template.yaml as plain dicts (a fresh copy per test, safe to mutate)."""
    return copy.deepcopy(_sam_original)


@pytest.fixture
def cfn(_cfn_original: Template) -> Template:
    """The SAM-translated CloudFormation (a fresh copy per test, safe to mutate)."""
    return copy.deepcopy(_cfn_original)
