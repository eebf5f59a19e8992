"""The gateway never calls itself (issue 9 item 3): the hop marker and the gateway's own origins."""

from __future__ import annotations

import pytest

from llm_gateway.domain.loops import HOP_HEADER, HopMarker, OwnOrigins, refuse_own_origin
from llm_gateway.errors import EndpointBlocked
from llm_gateway.origins import parse_origins
from llm_gateway.settings import StreamSettings as Settings

BASE = {
    "STAGE": "prod", "TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "CREDENTIALS_KEY_ID": "k",
    "TOKEN_SIGNING_KEY_ID": "s", "TOKEN_ISSUER": "https://issuer.example", "HOP_MARKER": "stack-0",
}  # fmt: skip
STACK_A = "arn:aws:cloudformation:eu-west-1:111111111111:stack/llm-gateway-prod/0b7a0e10-aaaa-4bbb-8ccc-123456789abc"
STACK_B = "arn:aws:cloudformation:eu-west-1:111111111111:stack/llm-gateway-prod/9f1c2d30-dddd-4eee-8fff-cba987654321"


def marker(**env: str) -> HopMarker:
    settings = Settings.model_validate(BASE | env)
    return HopMarker(stage=settings.stage, value=settings.hop_marker)


def test_the_marker_is_one_per_stack_and_never_shows_the_stack_id() -> None:
    a, same, b = marker(HOP_MARKER=STACK_A), marker(HOP_MARKER=STACK_A), marker(HOP_MARKER=STACK_B)
    assert a.headers == same.headers, "every function of one stack sends and recognises the same marker"
    assert a.headers != b.headers, "another stack (same stage name) is not mistaken for this one"
    sent = " ".join(a.headers.values())
    assert "111111111111" not in sent and "0b7a0e10" not in sent
    assert a.headers["Via"].startswith("1.1 llm-gateway-prod-")


def test_an_incoming_request_is_ours_by_either_header_in_any_position() -> None:
    ours, theirs = marker(HOP_MARKER=STACK_A), marker(HOP_MARKER=STACK_B)
    value, via = ours.headers[HOP_HEADER].encode(), ours.headers["Via"].encode()
    assert ours.seen_in([(b"x-llm-gateway-hop", value)])
    assert ours.seen_in([(b"via", b"1.1 cdn.example, " + via[4:])])  # a relay appended itself
    assert ours.seen_in_text([("X-LLM-Gateway-Hop", value.decode())])
    assert not ours.seen_in([(b"x-llm-gateway-hop", theirs.headers[HOP_HEADER].encode())])
    assert not ours.seen_in([(b"via", b"1.1 llm-gateway-prod"), (b"authorization", value)])


@pytest.mark.parametrize(
    "url",
    [
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1/chat/completions",
        "https://ABC123.execute-api.eu-west-1.amazonaws.com:443/prod/v1",
        "https://abc123.execute-api.eu-west-1.api.aws/prod/v1/chat/completions",
        "https://api.example.com/v1/chat/completions",
        "http://127.0.0.1:8787/v1/chat/completions",
    ],
)
def test_the_gateways_own_origins_are_refused(url: str) -> None:
    own = OwnOrigins.of(parse_origins("api.example.com,http://127.0.0.1:8787")) | OwnOrigins(
        api_ids=frozenset({"abc123"})
    )
    with pytest.raises(EndpointBlocked) as caught:
        refuse_own_origin(url, own)
    assert caught.value.details == {"reason": "gateway_origin"}


@pytest.mark.parametrize(
    "url",
    [
        "https://other.execute-api.eu-west-1.amazonaws.com/prod/v1",  # someone else's API
        "https://api.example.com:8443/v1",  # another port of the custom domain's host
        "http://127.0.0.1:8000/v1",
        "https://api.openai.com/v1",
    ],
)
def test_other_origins_pass(url: str) -> None:
    own = OwnOrigins.of(parse_origins("api.example.com,http://127.0.0.1:8787")) | OwnOrigins(
        api_ids=frozenset({"abc123"})
    )
    refuse_own_origin(url, own)


def test_the_local_stacks_own_services_are_refused_ports() -> None:
    settings = Settings.model_validate(
        BASE
        | {
            "GATEWAY_ORIGINS": "http://127.0.0.1:8787,api.example.com",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        }
    )
    assert settings.refused_local_ports == {8787, 5000}
    assert Settings.model_validate(BASE | {"GATEWAY_ORIGINS": "api.example.com"}).refused_local_ports == set()
