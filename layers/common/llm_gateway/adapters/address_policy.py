"""SSRF rules for outbound URLs and the addresses their hosts resolve to (pure: no I/O).

The rules are strict on purpose: instead of guessing how each URL parser, IDNA library or
``inet_aton`` would read an odd URL, anything that two parsers could read differently is
rejected (SECURITY 29). What is accepted is one unambiguous form: an ASCII LDH host name,
a canonical dotted-quad IPv4 address or a bracketed IPv6 address, and an optional port.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from llm_gateway.errors import EndpointBlocked, EndpointUnresolvable
from llm_gateway.origins import DEFAULT_PORTS, parse_origin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_ALLOWED_PORTS: frozenset[int] = frozenset({443, 8443})
MAX_URL_LENGTH = 2048

_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS / GCP / Azure / OCI instance metadata
        "169.254.170.2",  # ECS task credentials
        "169.254.170.23",  # EKS pod identity agent
        "168.63.129.16",  # Azure wire server
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # EKS pod identity agent over IPv6
    )
)
_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_V4_THIS_NETWORK = _V4("0.0.0.0/8")
_V4_LOOPBACK = _V4("127.0.0.0/8")
_V4_LINK_LOCAL = _V4("169.254.0.0/16")
_V4_PRIVATE = (_V4("10.0.0.0/8"), _V4("172.16.0.0/12"), _V4("192.168.0.0/16"))
_V4_SHARED = _V4("100.64.0.0/10")  # carrier-grade NAT
_V4_MULTICAST = _V4("224.0.0.0/4")
_V4_RESERVED = _V4("240.0.0.0/4")  # includes 255.255.255.255
_V6_SIIT = _V6("::ffff:0:0:0/96")  # IPv4-translated
_V6_NAT64 = _V6("64:ff9b::/96")
_V6_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_V6_6TO4 = _V6("2002::/16")
_V6_TEREDO = _V6("2001::/32")
_V6_COMPATIBLE = _V6("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_V6_UNIQUE_LOCAL = _V6("fc00::/7")
_V6_SITE_LOCAL = _V6("fec0::/10")
_V6_LINK_LOCAL = _V6("fe80::/10")
_V6_MULTICAST = _V6("ff00::/8")

# Names that only mean something inside a network; blocked unless private endpoints are allowed.
_INTERNAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".intranet")
_INTERNAL_NAMES = frozenset({"localhost", "localhost.localdomain", "metadata", "instance-data"})

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# The last label decides whether WHATWG and inet_aton read a host as an IPv4 number.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_AUTHORITY = re.compile(
    r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[1-9][0-9]{0,4}))?",
)
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


class AddressClass(StrEnum):
    """Why an address is (not) reachable; the value is shown to customers as a reason."""

    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    SHARED = "shared_address_space"
    METADATA = "metadata"
    LINK_LOCAL = "link_local"
    UNSPECIFIED = "unspecified"
    MULTICAST = "multicast"
    RESERVED = "reserved"


# Reachable only when the deployment allows private endpoints (the local stack does).
PRIVATE_CLASSES = frozenset({AddressClass.LOOPBACK, AddressClass.PRIVATE, AddressClass.SHARED})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL origin that passed the syntactic rules; ``host`` is what the connector gets."""

    scheme: str
    host: str
    port: int
    ip_literal: IPAddress | None = None
    #: The origin is listed as a private endpoint: private addresses may answer for it.
    private_ok: bool = False

    @property
    def is_ip_literal(self) -> bool:
        return self.ip_literal is not None


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """An endpoint plus the checked addresses a connection may be pinned to, in resolver order."""

    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def _blocked(message: str, reason: str) -> EndpointBlocked:
    return EndpointBlocked(message, details={"reason": reason})


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, bool] | None:
    """The IPv4 address an IPv6 transition form carries, and whether the form is deprecated."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, False
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _V6_SIIT or address in _V6_NAT64:
        return low32, False
    if address in _V6_COMPATIBLE and int(address) > 1:
        return low32, True
    if address.sixtofour is not None:
        return address.sixtofour, True
    if address.teredo is not None:
        return address.teredo[1], True
    return None


def _classify_v4(address: ipaddress.IPv4Address) -> AddressClass:
    if address in _METADATA_ADDRESSES:
        return AddressClass.METADATA
    if address in _V4_THIS_NETWORK:
        return AddressClass.UNSPECIFIED
    if address in _V4_LOOPBACK:
        return AddressClass.LOOPBACK
    if address in _V4_LINK_LOCAL:
        return AddressClass.LINK_LOCAL
    if any(address in network for network in _V4_PRIVATE):
        return AddressClass.PRIVATE
    if address in _V4_SHARED:
        return AddressClass.SHARED
    if address in _V4_MULTICAST:
        return AddressClass.MULTICAST
    if address in _V4_RESERVED or not address.is_global:
        return AddressClass.RESERVED
    return AddressClass.PUBLIC


def _classify_v6(address: ipaddress.IPv6Address) -> AddressClass:
    if address in _METADATA_ADDRESSES:
        return AddressClass.METADATA
    if address.is_unspecified:
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    embedded = _embedded_v4(address)
    if embedded is not None:
        inner, deprecated = embedded
        inner_class = _classify_v4(inner)
        # A deprecated tunnel form is never a legitimate LLM endpoint, even around a public IPv4.
        if inner_class is AddressClass.PUBLIC and deprecated:
            return AddressClass.RESERVED
        return inner_class
    if address in _V6_NAT64_LOCAL:
        return AddressClass.RESERVED
    if address in _V6_LINK_LOCAL:
        return AddressClass.LINK_LOCAL
    if address in _V6_MULTICAST:
        return AddressClass.MULTICAST
    if address in _V6_UNIQUE_LOCAL or address in _V6_SITE_LOCAL:
        return AddressClass.PRIVATE
    if not address.is_global:
        return AddressClass.RESERVED
    return AddressClass.PUBLIC


def classify_address(address: IPAddress) -> AddressClass:
    """Classify one address, looking through every IPv4-in-IPv6 embedding."""
    if isinstance(address, ipaddress.IPv4Address):
        return _classify_v4(address)
    return _classify_v6(address)


def parse_address(value: str | IPAddress) -> IPAddress:
    """Parse a resolver answer; a zone id is dropped (the pinned connect never uses one)."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        raise _blocked("The endpoint host resolved to an invalid address.", "invalid_address") from None


def _is_inet_aton_number(host: str) -> bool:
    """True when the C library would read ``host`` as an IPv4 address (``127.1``, ``0x7f.1``)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


class AddressPolicy:
    """Decides which URLs and addresses the gateway may connect to.

    Only public addresses over https on the allowed ports, unless an origin is listed in
    ``private_origins`` (the local stack lists the fake provider's and whatever ``llm-gateway dev
    --allow-endpoint`` names): a URL with exactly that scheme, host and port may use http and
    reach loopback, RFC 1918, unique-local and CGNAT addresses. ``allow_private`` admits every
    origin that way; only ``llm-gateway check --allow-private`` (a developer's own machine) uses
    it. Loopback addresses on ``refused_local_ports`` (the local stack's own API and moto) are
    refused even when listed. Metadata, link-local, unspecified, multicast and reserved addresses
    are refused in every mode.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allowed_ports: Iterable[int] = DEFAULT_ALLOWED_PORTS,
        private_origins: Iterable[str] = (),
        refused_local_ports: Iterable[int] = (),
    ) -> None:
        self.allow_private = allow_private
        self.allowed_ports = frozenset(allowed_ports)
        self.private_origins = frozenset(parse_origin(origin) for origin in private_origins)
        self.refused_local_ports = frozenset(refused_local_ports)
        may_use_http = allow_private or any(scheme == "http" for scheme, _, _ in self.private_origins)
        self.allowed_schemes = frozenset({"https", "http"} if may_use_http else {"https"})

    def _listed(self, scheme: str, host: str, port: int) -> bool:
        return self.allow_private or (scheme, host.lower().strip("[]"), port) in self.private_origins

    def _not_public_hint(self) -> str:
        if self.private_origins and not self.allow_private:
            return (
                " The local stack calls a private address only for an origin listed with "
                "`llm-gateway dev --allow-endpoint scheme://host:port`."
            )
        return ""

    # -- URLs -------------------------------------------------------------------------------

    def check_url(self, url: str) -> Endpoint:
        """Check a URL as typed by a customer; accept only forms every parser reads the same way."""
        if len(url) > MAX_URL_LENGTH:
            raise _blocked("The endpoint URL is too long.", "url_too_long")
        if any(not ("\x21" <= char <= "\x7e") for char in url):
            raise _blocked(
                "The endpoint URL must be plain ASCII without spaces or control characters "
                "(percent-encode the path; use the xn-- form for international host names).",
                "invalid_characters",
            )
        if "\\" in url:
            raise _blocked("The endpoint URL must not contain backslashes.", "backslash")
        if "#" in url:
            raise _blocked("The endpoint URL must not contain a fragment ('#').", "fragment")
        scheme_match = _SCHEME.match(url)
        if scheme_match is None:
            raise _blocked("The endpoint URL must start with https://.", "scheme")
        if scheme_match["scheme"].lower() not in self.allowed_schemes:
            raise _blocked("The endpoint URL must use https.", "scheme")
        rest = url[scheme_match.end() :]
        authority = re.split(r"[/?]", rest, maxsplit=1)[0]
        if "@" in authority:
            raise _blocked("The endpoint URL must not contain user information ('user@').", "userinfo")
        match = _AUTHORITY.fullmatch(authority)
        if match is None:
            raise _blocked(
                "The endpoint URL's host must be a plain host name, an IPv4 address or a "
                "bracketed IPv6 address, optionally followed by ':port'.",
                "invalid_host",
            )
        host = match["host"].lower()  # ASCII only here, so every parser lower-cases alike
        if host.startswith("["):
            host = host[1:-1]
            if ":" not in host:
                raise _blocked("Only IPv6 addresses may be written in brackets.", "invalid_host")
        port = int(match["port"]) if match["port"] else None
        return self.check_origin(scheme=scheme_match["scheme"], userinfo="", host=host, port=port)

    def check_origin(self, *, scheme: str, userinfo: str, host: str, port: int | None) -> Endpoint:
        """Check parsed URL parts exactly as the HTTP client will use them."""
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise _blocked("The endpoint URL must use https.", "scheme")
        if userinfo:
            raise _blocked("The endpoint URL must not contain user information ('user@').", "userinfo")
        effective_port = DEFAULT_PORTS[scheme] if port is None else port
        if not 0 < effective_port < 65536:
            raise _blocked("The endpoint port is invalid.", "port")
        listed = self._listed(scheme, host, effective_port)
        if scheme != "https" and not listed:
            raise _blocked("The endpoint URL must use https." + self._not_public_hint(), "scheme")
        if not listed and effective_port not in self.allowed_ports:
            allowed = ", ".join(str(p) for p in sorted(self.allowed_ports))
            raise _blocked(f"The endpoint port must be one of: {allowed}." + self._not_public_hint(), "port")
        ip_literal = self._parse_host(host, internal_ok=listed)
        endpoint = Endpoint(scheme, host, effective_port, ip_literal, private_ok=listed)
        if ip_literal is not None:
            self.check_addresses(host, [ip_literal], literal=True, endpoint=endpoint)
        return endpoint

    def _parse_host(self, host: str, *, internal_ok: bool) -> IPAddress | None:
        """Return the address of an IP-literal host, validate a name, reject everything else."""
        if not host:
            raise _blocked("The endpoint URL has no host.", "invalid_host")
        if ":" in host:
            try:
                return ipaddress.IPv6Address(host)  # rejects zone ids ('%eth0') too
            except ValueError:
                raise _blocked("The endpoint host is not a valid IPv6 address.", "invalid_host") from None
        try:
            return ipaddress.IPv4Address(host)  # strict dotted quad, no leading zeros
        except ValueError:
            pass
        if host != host.lower():
            raise _blocked("The endpoint host name must be lower case.", "invalid_host")
        if host.endswith("."):
            raise _blocked("The endpoint host name must not end with a dot.", "trailing_dot")
        labels = host.split(".")
        if _NUMERIC_LABEL.fullmatch(labels[-1]) or _is_inet_aton_number(host):
            raise _blocked(
                "The endpoint host looks like a numeric IP address in a non-standard form; "
                "write IPv4 addresses as four decimal numbers (a.b.c.d).",
                "numeric_host",
            )
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise _blocked(
                "The endpoint host name is not valid (letters, digits and hyphens only).",
                "invalid_host",
            )
        if not internal_ok and (
            len(labels) < 2 or host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES)
        ):
            raise _blocked(
                "The endpoint host name is not a public DNS name." + self._not_public_hint(), "internal_name"
            )
        return None

    # -- addresses --------------------------------------------------------------------------

    def is_allowed(self, address: IPAddress, *, private_ok: bool | None = None) -> bool:
        """Whether a single address may be connected to (``private_ok``: the origin is listed)."""
        address_class = classify_address(address)
        if address_class is AddressClass.PUBLIC:
            return True
        private_ok = self.allow_private if private_ok is None else private_ok
        return private_ok and address_class in PRIVATE_CLASSES

    def check_addresses(
        self,
        host: str,
        addresses: Iterable[str | IPAddress],
        *,
        literal: bool = False,
        endpoint: Endpoint | None = None,
    ) -> tuple[IPAddress, ...]:
        """Check every answer for ``host``; one blocked answer rejects the whole set.

        The message names the class of a blocked literal the customer typed, but never the
        addresses a name resolved to: that would make the gateway an internal-DNS oracle.
        """
        parsed: list[IPAddress] = []
        for value in addresses:
            address = parse_address(value)
            if address not in parsed:
                parsed.append(address)
        if not parsed:
            raise EndpointUnresolvable("The endpoint host did not resolve to any address.")
        private_ok = endpoint.private_ok if endpoint is not None else None
        for address in parsed:
            address_class = classify_address(address)
            if (
                endpoint is not None
                and endpoint.port in self.refused_local_ports
                and address_class is AddressClass.LOOPBACK
            ):
                raise _blocked(
                    "The endpoint is one of the local stack's own services (its API or AWS endpoint).",
                    "gateway_service",
                )
            if self.is_allowed(address, private_ok=private_ok):
                continue
            if literal:
                raise _blocked(
                    f"The endpoint address is not publicly routable ({address_class.value})."
                    + self._not_public_hint(),
                    address_class.value,
                )
            raise _blocked(
                "The endpoint host resolves to an address that is not publicly routable."
                + self._not_public_hint(),
                "non_public_address",
            )
        return tuple(parsed)

    def check_resolved(self, endpoint: Endpoint, addresses: Iterable[str | IPAddress]) -> ResolvedTarget:
        """Bind an endpoint to its checked answer set."""
        checked = self.check_addresses(
            endpoint.host, addresses, literal=endpoint.is_ip_literal, endpoint=endpoint
        )
        return ResolvedTarget(endpoint.scheme, endpoint.host, endpoint.port, checked)
