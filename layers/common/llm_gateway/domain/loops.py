"""The gateway never calls itself: a hop marker on every outbound request, and no LLM URL on the
gateway's own origins.

An LLM whose URL leads back to the gateway (directly, through a DNS alias, or through a relay)
would turn one request into an unbounded fan-out. Two rules stop it:

- every request the proxy and the validator send carries this deployment's hop marker
  (``Via: 1.1 llm-gateway-<stage>-<tag>`` and ``X-LLM-Gateway-Hop: <value>``), and a request that
  arrives with it is answered 508 ``loop_detected`` before any lookup or upstream call;
- registration, update and ``/v1/llms/test`` refuse a URL on one of the gateway's own origins
  (400 ``endpoint_blocked``), so the plain case never gets stored.

The marker's value is not a secret (every upstream sees it); it only has to be the same in every
function of one deployment and different from any other deployment's, so that a gateway of
another stack may still be a customer's upstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llm_gateway.errors import EndpointBlocked
from llm_gateway.origins import Origin, host_and_port

HOP_HEADER = "X-LLM-Gateway-Hop"


@dataclass(frozen=True)
class HopMarker:
    """This deployment's hop marker: the headers it adds, and the test for an incoming request."""

    stage: str
    value: str
    headers: dict[str, str] = field(init=False, compare=False)
    _value: bytes = field(init=False, compare=False, repr=False)
    _pseudonym: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        tag = hashlib.sha256(self.value.encode()).hexdigest()[:12]
        pseudonym = f"llm-gateway-{self.stage}-{tag}"
        object.__setattr__(self, "headers", {"Via": f"1.1 {pseudonym}", HOP_HEADER: self.value})
        object.__setattr__(self, "_value", self.value.encode())
        object.__setattr__(self, "_pseudonym", pseudonym.encode())

    def seen_in(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether raw (lower-case name, value) headers carry this marker, in either header."""
        for name, value in headers:
            if (name == b"x-llm-gateway-hop" and self._value in value) or (
                name == b"via" and self._pseudonym in value
            ):
                return True
        return False

    def seen_in_text(self, headers: Iterable[tuple[str, str]]) -> bool:
        """``seen_in`` for headers as an API Gateway event holds them (any casing)."""
        return self.seen_in(
            (name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace"))
            for name, value in headers
        )


@dataclass(frozen=True)
class OwnOrigins:
    """Where the gateway itself answers: (host, port) places, and API ids whose execute-api
    host names (``<id>.execute-api.<region>.amazonaws.com`` and its other forms) are ours."""

    places: frozenset[tuple[str, int]] = frozenset()
    api_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, origins: Sequence[Origin] = (), places: Iterable[tuple[str, int]] = ()) -> OwnOrigins:
        return cls(frozenset({(host, port) for _, host, port in origins} | set(places)))

    def __or__(self, other: OwnOrigins) -> OwnOrigins:
        return OwnOrigins(self.places | other.places, self.api_ids | other.api_ids)

    def contains(self, url: str) -> bool:
        place = host_and_port(url)
        if place is None:
            return False
        host = place[0]
        return place in self.places or any(
            host.startswith(f"{api_id}.execute-api.") for api_id in self.api_ids
        )


def refuse_own_origin(url: str, own: OwnOrigins) -> None:
    """400 ``endpoint_blocked`` for a URL on one of the gateway's own origins."""
    if own.contains(url):
        raise EndpointBlocked(
            "The URL points at this gateway itself; register the LLM provider's own URL "
            "(a gateway that calls itself would loop).",
            details={"reason": "gateway_origin"},
        )
