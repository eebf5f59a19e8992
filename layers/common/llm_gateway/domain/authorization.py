"""Which credential a request carries: exactly one ``Authorization`` header, or none at all.

API Gateway hands a REQUEST authorizer every value of a repeated header in ``multiValueHeaders``
while ``headers`` keeps only one of them. A request with two ``Authorization`` headers is refused
outright, so the value that decides the account is always the only one there is (and the local
front door caches the authorizer's answer under that same value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

AUTHORIZATION = "authorization"


class AmbiguousCredentials(Exception):
    """The request repeats a credential header: no single value may be chosen."""


def single_header(
    name: str,
    headers: Mapping[str, str] | None,
    multi_value_headers: Mapping[str, Sequence[str]] | None,
) -> str | None:
    """The one value of header ``name`` (any casing); ``None`` when absent.

    Raises :class:`AmbiguousCredentials` when the header appears more than once, whether as two
    values of one key or under two casings of its name.
    """
    wanted = name.lower()
    if multi_value_headers:
        values = [v for key, vs in multi_value_headers.items() if key.lower() == wanted for v in vs]
    else:
        values = [v for key, v in (headers or {}).items() if key.lower() == wanted]
    if len(values) > 1:
        raise AmbiguousCredentials(f"more than one {name} header")
    return values[0] if values else None
