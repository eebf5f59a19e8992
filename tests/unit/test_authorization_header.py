"""Exactly one Authorization header decides the account (SECURITY: no choosing among several)."""

from __future__ import annotations

import pytest

from llm_gateway.domain.authorization import AUTHORIZATION, AmbiguousCredentials, single_header


def test_the_one_value_is_returned_whatever_the_casing() -> None:
    assert single_header(AUTHORIZATION, {"authorization": "Bearer a"}, None) == "Bearer a"
    assert single_header(AUTHORIZATION, None, {"AUTHORIZATION": ["Bearer a"]}) == "Bearer a"


def test_absent_is_none() -> None:
    assert single_header(AUTHORIZATION, {"Host": "x"}, {"Host": ["x"]}) is None
    assert single_header(AUTHORIZATION, None, None) is None


@pytest.mark.parametrize(
    "multi",
    [
        {"Authorization": ["Bearer key-c", "Bearer key-a"]},
        {"Authorization": ["Bearer key-c"], "authorization": ["Bearer key-a"]},
        {"Authorization": ["Bearer key-a", "Bearer key-a"]},
    ],
    ids=["two-values", "two-casings", "same-value-twice"],
)
def test_more_than_one_is_refused_even_when_headers_shows_one(multi: dict[str, list[str]]) -> None:
    # API Gateway's single-value `headers` keeps only one of them: it must not be trusted.
    with pytest.raises(AmbiguousCredentials):
        single_header(AUTHORIZATION, {"Authorization": "Bearer key-a"}, multi)


def test_multi_value_headers_win_over_the_single_value_map() -> None:
    assert single_header(
        AUTHORIZATION, {"Authorization": "Bearer stale"}, {"Authorization": ["Bearer a"]}
    ) == ("Bearer a")
