"""SSRF URL and address rules (SECURITY 1, 4, 29): pure, no sockets."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.adapters.address_policy import (
    AddressClass,
    AddressPolicy,
    classify_address,
)
from llm_gateway.errors import EndpointBlocked
from tests.security_cases import SECURITY_1_HOSTS

STRICT = AddressPolicy()
LOCAL = AddressPolicy(allow_private=True)
CANARY = "sk-canary-3f1c9a"


def _reason(exc: pytest.ExceptionInfo[EndpointBlocked]) -> str:
    assert exc.value.code == "endpoint_blocked"
    assert exc.value.status == 400
    return str(exc.value.details["reason"])


@pytest.mark.parametrize("host", SECURITY_1_HOSTS)
def test_security_1_hosts_are_rejected_without_dns(host: str) -> None:
    # Literals and numeric forms are refused by syntax alone; `localhost` by name.
    with pytest.raises(EndpointBlocked):
        STRICT.check_url(f"https://{host}/v1/chat/completions")


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fd00:ec2::254", "169.254.170.2", "168.63.129.16", "::ffff:169.254.169.254"],
)
def test_metadata_addresses_are_blocked_even_when_private_is_allowed(address: str) -> None:
    assert not LOCAL.is_allowed(ipaddress.ip_address(address))
    assert classify_address(ipaddress.ip_address(address)) is AddressClass.METADATA


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("10.1.2.3", AddressClass.PRIVATE),
        ("172.31.255.255", AddressClass.PRIVATE),
        ("192.168.0.1", AddressClass.PRIVATE),
        ("fd12:3456::1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.SHARED),
        ("100.127.255.255", AddressClass.SHARED),
        ("169.254.1.1", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
        ("0.1.2.3", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("240.0.0.1", AddressClass.RESERVED),
        ("255.255.255.255", AddressClass.RESERVED),
        ("192.0.2.1", AddressClass.RESERVED),
        ("2001:db8::1", AddressClass.RESERVED),
        # IPv4 embedded in IPv6: the embedded address decides.
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("::ffff:10.0.0.1", AddressClass.PRIVATE),
        ("::ffff:0:10.0.0.1", AddressClass.PRIVATE),
        ("::10.0.0.1", AddressClass.PRIVATE),
        ("64:ff9b::7f00:1", AddressClass.LOOPBACK),
        ("64:ff9b::a9fe:a9fe", AddressClass.METADATA),
        ("2002:0a00:0001::1", AddressClass.PRIVATE),
        ("2002:a9fe:a9fe::1", AddressClass.METADATA),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", AddressClass.PRIVATE),  # Teredo client 10.0.0.1
        # Deprecated tunnels around a public IPv4 are still refused.
        ("::8.8.8.8", AddressClass.RESERVED),
        ("2002:0808:0808::1", AddressClass.RESERVED),
        ("64:ff9b:1::1", AddressClass.RESERVED),
        # Public.
        ("8.8.8.8", AddressClass.PUBLIC),
        ("::ffff:8.8.8.8", AddressClass.PUBLIC),
        ("64:ff9b::808:808", AddressClass.PUBLIC),
        ("2606:4700:4700::1111", AddressClass.PUBLIC),
    ],
)
def test_classify_address(address: str, expected: AddressClass) -> None:
    assert classify_address(ipaddress.ip_address(address)) is expected


def test_private_classes_are_allowed_only_with_the_flag() -> None:
    for address in ["127.0.0.1", "10.0.0.1", "100.64.0.1", "fd12::1", "::ffff:127.0.0.1"]:
        ip = ipaddress.ip_address(address)
        assert not STRICT.is_allowed(ip)
        assert LOCAL.is_allowed(ip)


def test_mixed_answer_set_is_rejected() -> None:
    endpoint = STRICT.check_url("https://mixed.example.com/v1")
    with pytest.raises(EndpointBlocked) as exc:
        STRICT.check_resolved(endpoint, ["93.184.215.14", "10.0.0.1"])
    assert _reason(exc) == "non_public_address"
    # The message must not reveal what the name resolved to.
    assert "10.0.0.1" not in exc.value.message


def test_empty_and_invalid_answers_are_rejected() -> None:
    endpoint = STRICT.check_url("https://api.example.com/v1")
    with pytest.raises(EndpointBlocked):
        STRICT.check_resolved(endpoint, [])
    with pytest.raises(EndpointBlocked):
        STRICT.check_resolved(endpoint, ["not-an-ip"])


def test_public_answer_set_is_accepted_in_order_without_duplicates() -> None:
    endpoint = STRICT.check_url("https://api.example.com/v1")
    target = STRICT.check_resolved(
        endpoint, ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"]
    )
    assert [str(a) for a in target.addresses] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert (target.scheme, target.host, target.port) == ("https", "api.example.com", 443)


# -- SECURITY 4: scheme, userinfo, ports ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.example.com/v1", "scheme"),
        ("ftp://api.example.com/v1", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://api.example.com:6379/_", "scheme"),
        ("api.example.com/v1", "scheme"),
        ("https://user:pass@api.example.com/v1", "userinfo"),
        ("https://api.example.com@evil.example.net/v1", "userinfo"),
        ("https://@api.example.com/v1", "userinfo"),
        ("https://api.example.com:22/v1", "port"),
        ("https://api.example.com:6379/v1", "port"),
        ("https://api.example.com:9001/v1", "port"),
        ("https://api.example.com:80/v1", "port"),
        ("https://api.example.com:0443/v1", "invalid_host"),
        ("https://api.example.com:/v1", "invalid_host"),
        ("https://api.example.com:99999/v1", "port"),
    ],
)
def test_security_4_scheme_userinfo_and_ports(url: str, reason: str) -> None:
    with pytest.raises(EndpointBlocked) as exc:
        STRICT.check_url(url)
    assert _reason(exc) == reason


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "https://api.example.com:8443/v1?x=1"])
def test_allowed_ports(url: str) -> None:
    STRICT.check_url(url)


def test_check_allow_private_allows_http_any_port_and_loopback() -> None:
    endpoint = LOCAL.check_url("http://127.0.0.1:9001/v1")
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("http", "127.0.0.1", 9001)
    assert LOCAL.check_url("http://localhost:8080/").host == "localhost"
    with pytest.raises(EndpointBlocked):
        LOCAL.check_url("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(EndpointBlocked):
        LOCAL.check_url("http://user@localhost:8080/")


# --- the local stack: private addresses for listed origins only (issue 9 item 5) -------------------

FAKE, MINE, API, MOTO = 41000, 8000, 8787, 5000
STACK = AddressPolicy(
    private_origins=[f"http://127.0.0.1:{FAKE}", f"http://127.0.0.1:{MINE}", f"http://127.0.0.1:{API}"],
    refused_local_ports={API, MOTO},
)


def _resolve(policy: AddressPolicy, url: str, answers: list[str]) -> None:
    endpoint = policy.check_url(url)
    policy.check_resolved(endpoint, answers if endpoint.ip_literal is None else [str(endpoint.ip_literal)])


@pytest.mark.parametrize("port", [FAKE, MINE])
def test_a_listed_origin_may_use_http_and_loopback(port: int) -> None:
    _resolve(STACK, f"http://127.0.0.1:{port}/v1/chat/completions", [])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1",  # an unlisted loopback port
        f"http://127.0.0.1:{MOTO}/",  # moto
        f"http://localhost:{FAKE}/v1",  # same port, another spelling: not the listed origin
        f"https://127.0.0.1:{FAKE}/v1",  # another scheme
        "http://10.0.0.5:8000/v1",  # a private network
        "http://metadata.internal/",
    ],
)
def test_anything_unlisted_is_refused_like_in_aws(url: str) -> None:
    with pytest.raises(EndpointBlocked) as caught:
        _resolve(STACK, url, ["127.0.0.1"])
    assert "--allow-endpoint" in caught.value.message


@pytest.mark.parametrize("port", [API, MOTO])
def test_the_stacks_own_api_and_moto_are_refused_even_when_listed_or_reached_by_name(port: int) -> None:
    listed = AddressPolicy(private_origins=[f"http://127.0.0.1:{port}", f"http://gw.test:{port}"],
                           refused_local_ports={API, MOTO})  # fmt: skip
    for url, answers in ((f"http://127.0.0.1:{port}/v1", []), (f"http://gw.test:{port}/v1", ["127.0.0.1"])):
        with pytest.raises(EndpointBlocked) as caught:
            _resolve(listed, url, answers)
        assert _reason(caught) == "gateway_service"


def test_a_listed_name_that_resolves_public_and_private_is_still_checked_per_address() -> None:
    policy = AddressPolicy(private_origins=["http://llm.test:8000"])
    _resolve(policy, "http://llm.test:8000/v1", ["127.0.0.1", "93.184.215.14"])
    with pytest.raises(EndpointBlocked):
        _resolve(policy, "http://llm.test:8000/v1", ["169.254.169.254"])  # metadata: never


def test_public_https_endpoints_work_the_same_in_the_local_stack() -> None:
    _resolve(STACK, "https://api.openai.com/v1", ["104.18.6.192"])
    with pytest.raises(EndpointBlocked):
        _resolve(STACK, "https://api.openai.com:9443/v1", ["104.18.6.192"])


def test_custom_port_allow_list() -> None:
    policy = AddressPolicy(allowed_ports={443})
    with pytest.raises(EndpointBlocked):
        policy.check_url("https://api.example.com:8443/")


# -- SECURITY 29: odd host forms -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example.net\\@api.example.com/", "backslash"),
        ("https://api.example.com\\.evil.example.net/", "backslash"),
        ("https:/\\evil.example.net/", "backslash"),
        ("https://api.example.com#@evil.example.net/", "fragment"),
        ("https://evil.example.net/#@api.example.com", "fragment"),
        ("https://evil。example.net/", "invalid_characters"),
        ("https://evil．example.net/", "invalid_characters"),
        ("https://bücher.example/", "invalid_characters"),
        ("https://api.example.com./", "trailing_dot"),
        ("https://api.example.com../", "trailing_dot"),
        ("https://api%2eexample.com/", "invalid_host"),
        ("https://%31%32%37.0.0.1/", "invalid_host"),
        ("https://[::1%25eth0]/", "invalid_host"),
        ("https://[fe80::1%eth0]/", "invalid_host"),
        ("https://[127.0.0.1]/", "invalid_host"),
        ("https://[api.example.com]/", "invalid_host"),
        ("https://127.1/", "numeric_host"),
        ("https://127.0.1/", "numeric_host"),
        ("https://2852039166/", "numeric_host"),
        ("https://0xA9FEA9FE/", "numeric_host"),
        ("https://0xa9.0xfe.0xa9.0xfe/", "numeric_host"),
        ("https://0251.0376.0251.0376/", "numeric_host"),
        ("https://010.0.0.1/", "numeric_host"),
        ("https://api.example.0x10/", "numeric_host"),
        ("https://api.example.123/", "numeric_host"),
        ("https:// api.example.com/", "invalid_characters"),
        ("https://api.example.com\t/", "invalid_characters"),
        ("https://api.exa\x00mple.com/", "invalid_characters"),
        ("https://-api.example.com/", "invalid_host"),
        ("https://api_x.example.com/", "invalid_host"),
        ("https://api..example.com/", "invalid_host"),
        ("https:///api.example.com/", "invalid_host"),
        ("https://metadata.google.internal/", "internal_name"),
        ("https://printer.local/", "internal_name"),
        ("https://foo.localhost/", "internal_name"),
        ("https://intranet/", "internal_name"),
    ],
)
def test_security_29_odd_hosts_are_rejected(url: str, reason: str) -> None:
    with pytest.raises(EndpointBlocked) as exc:
        STRICT.check_url(url)
    assert _reason(exc) == reason


def test_host_is_lower_cased_like_every_parser() -> None:
    assert STRICT.check_url("HTTPS://API.Example.COM/v1").host == "api.example.com"


def test_punycode_hosts_are_accepted() -> None:
    assert STRICT.check_url("https://xn--bcher-kva.example/").host == "xn--bcher-kva.example"


def test_public_ip_literals_are_accepted() -> None:
    assert STRICT.check_url("https://8.8.8.8/").ip_literal == ipaddress.ip_address("8.8.8.8")
    assert STRICT.check_url("https://[2606:4700:4700::1111]:8443/").port == 8443


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{CANARY}@api.example.com/v1",
        f"https://127.0.0.1/v1?key={CANARY}",
        f"https://api.example.com:22/v1?key={CANARY}",
        f"http://api.example.com/v1?key={CANARY}",
        f"https://api.example.com/v1#{CANARY}",
    ],
)
def test_messages_never_echo_the_url(url: str) -> None:
    with pytest.raises(EndpointBlocked) as exc:
        STRICT.check_url(url)
    assert CANARY not in exc.value.message
    assert CANARY not in str(exc.value.to_body())


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_forms_classify_like_the_ipv4_address(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    assert classify_address(mapped) is classify_address(address)
    assert classify_address(nat64) is classify_address(address)


@given(st.ip_addresses())
def test_strict_policy_allows_only_public_addresses(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    allowed = STRICT.is_allowed(address)
    assert allowed == (classify_address(address) is AddressClass.PUBLIC)
    if allowed:
        assert address.is_global
        assert not (address.is_loopback or address.is_link_local or address.is_multicast)
