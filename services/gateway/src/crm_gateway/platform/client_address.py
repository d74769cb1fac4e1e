"""The visitor's address behind the proxies we trust, and the bucket a per-address limit counts it
in. Pure: no I/O.

Behind an ingress the TCP peer is the ingress, so every visitor shares its address; the visitor's
own address is in the header the proxies append to (X-Forwarded-For, or RFC 7239 Forwarded). Only
a proxy we trust writes honestly, and anyone can send the header, so the chain is read from the
right: each address that is one of our trusted proxies is skipped, and the first one that is not
is the visitor (whatever a visitor put further left is never read). A peer that is not a trusted
proxy is the visitor itself and its headers are ignored. Exactly one header is read: a proxy that
appends to X-Forwarded-For passes a visitor's own `Forwarded` through untouched, so reading both
would let the visitor write the hop we take as theirs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal

from starlette.requests import HTTPConnection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]

# IPv6 hands a home or a phone a whole /64 (RFC 6177): one visitor is one /64, not one address.
IPV6_VISITOR_PREFIX = 64
# …and a site as much as a /48 (RIPE-690: a /56 or /48 per customer): 65,536 /64s, so a limit that
# must hold against one holder counts its /48 too (`network_bucket`).
IPV6_NETWORK_PREFIX = 48
# A well-formed chain is a handful of hops; past this many trusted ones we stop reading.
MAX_HOPS = 32


def parse_trusted_proxies(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) of the proxies whose forwarded headers we believe.
    ValueError for an entry that is not one, or that has host bits set (a typo that widens it)."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr.strip(), strict=True)
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
            # ::ffff:10.0.0.0/104 and 10.0.0.0/8 are the same proxies; addresses are compared unmapped.
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{max(0, network.prefixlen - 96)}", strict=False)
        networks.append(network)
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as a proxy writes it (`192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]:443`,
    `2001:db8::1`), IPv4-mapped IPv6 as IPv4; None for anything else (`unknown`, `_hidden`, junk)."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _forwarded_for(element: str) -> str:
    """The `for=` parameter of one RFC 7239 element; "" when it has none."""
    for pair in _split_outside_quotes(element, ";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip().lower() == "for":
            return value
    return ""


def forwarded_hops(values: Sequence[str], header: ForwardedHeader) -> list[str]:
    """The hops of every occurrence of `header`, in order (left = furthest from us), unparsed."""
    joined = ",".join(values)
    if header == "forwarded":
        return [_forwarded_for(element) for element in _split_outside_quotes(joined, ",")]
    return joined.split(",")


def client_address(
    peer: str | None,
    forwarded: Sequence[str],
    trusted: Sequence[IPNetwork],
    header: ForwardedHeader = "x-forwarded-for",
) -> IPAddress | None:
    """The visitor's address: the TCP `peer` unless it is a trusted proxy, else the first address
    in the `forwarded` header values, read from the right, that is not a trusted proxy. A hop that
    is not an address stops the walk at the last good one (the proxy that wrote it). None when the
    peer itself is not an address (a Unix socket, a test client)."""
    address = parse_address(peer or "")
    if address is None or not _is_trusted(address, trusted):
        return address
    for hop in reversed(forwarded_hops(forwarded, header)[-MAX_HOPS:]):
        previous = parse_address(hop)
        if previous is None:
            return address
        address = previous
        if not _is_trusted(address, trusted):
            return address
    return address


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def address_bucket(address: IPAddress | None) -> str:
    """The key a per-address limit counts `address` under: an IPv4 address itself, an IPv6
    address's /64 (so one visitor cannot rotate through its own 2^64 addresses), "unknown" for none."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_VISITOR_PREFIX), strict=False))
    return str(address)


def network_bucket(address: IPAddress | None) -> str | None:
    """The coarser key a per-network limit counts `address` under: an IPv6 address's /48 (one
    holder of a whole delegated prefix rotating through its /64s is still one network). None for
    IPv4 (a visitor rarely holds more than one address, while a /24 is often many unrelated people:
    a carrier's NAT pool, a campus) and for no address."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_NETWORK_PREFIX), strict=False))
    return None


class ClientAddresses:
    """The gateway's one way to tell who a request comes from: configured once from the settings
    (`trusted_proxies`, `forwarded_header`), kept on `app.state.client_addresses`."""

    def __init__(self, trusted_proxies: Iterable[str], header: ForwardedHeader = "x-forwarded-for") -> None:
        self.trusted = parse_trusted_proxies(trusted_proxies)
        self.header: ForwardedHeader = header

    def of(self, connection: HTTPConnection) -> IPAddress | None:
        """The visitor's address of a request (see `client_address`)."""
        peer = connection.client.host if connection.client else None
        return client_address(peer, connection.headers.getlist(self.header), self.trusted, self.header)

    def bucket(self, connection: HTTPConnection) -> str:
        """The per-address limit's key of a request (see `address_bucket`)."""
        return address_bucket(self.of(connection))
