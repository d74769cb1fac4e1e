"""Who a request comes from: forwarded headers believed only through trusted proxies, read from
the right; IPv6 counted per /64, IPv4-mapped IPv6 as IPv4; malformed input never widens trust."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from crm_gateway.platform.client_address import (
    ClientAddresses,
    address_bucket,
    client_address,
    network_bucket,
    parse_address,
    parse_trusted_proxies,
)
from crm_gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

INGRESS = parse_trusted_proxies(["10.0.0.0/8", "fd00::/8"])


def visitor(peer: str | None, *xff: str, header: str = "x-forwarded-for") -> str:
    return str(client_address(peer, list(xff), INGRESS, header))  # type: ignore[arg-type]


def test_a_peer_that_is_not_a_trusted_proxy_is_the_visitor_whatever_it_forwards() -> None:
    assert visitor("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    assert str(client_address("198.51.100.7", ["203.0.113.1"], ())) == "198.51.100.7"


def test_behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_visitor() -> None:
    # visitor → ingress 10.1.2.3 → internal balancer 10.9.9.9 → us
    assert visitor("10.9.9.9", "198.51.100.7, 10.1.2.3") == "198.51.100.7"
    # No forwarded header: the proxy itself is the client (a probe, say).
    assert visitor("10.9.9.9") == "10.9.9.9"


def test_a_spoofed_leftmost_hop_is_never_read() -> None:
    # The visitor sent "X-Forwarded-For: 1.2.3.4"; the ingress appended what it saw.
    assert visitor("10.1.2.3", "1.2.3.4, 198.51.100.7") == "198.51.100.7"
    assert visitor("10.1.2.3", "1.2.3.4", "198.51.100.7") == "198.51.100.7"  # two header lines
    # Even a spoofed hop inside the trusted range only moves the walk past it to the next one.
    assert visitor("10.1.2.3", "10.0.0.1, 198.51.100.7") == "198.51.100.7"


def test_ports_and_brackets_are_stripped() -> None:
    assert visitor("10.1.2.3", "198.51.100.7:51234") == "198.51.100.7"
    assert visitor("10.1.2.3", "[2001:db8::1]:443") == "2001:db8::1"
    assert visitor("10.1.2.3", " 2001:db8::2 ") == "2001:db8::2"


@pytest.mark.parametrize("hop", ["garbage", "", "unknown", "_hidden", "[2001:db8::1", "1.2.3.4.5", "999.1.1.1"])
def test_a_malformed_hop_stops_at_the_proxy_that_wrote_it(hop: str) -> None:
    assert visitor("10.1.2.3", f"198.51.100.7, {hop}") == "10.1.2.3"
    assert visitor("10.1.2.3", f"{hop}, 198.51.100.7") == "198.51.100.7"  # left of the visitor: unread


def test_rfc7239_forwarded_is_read_only_when_it_is_the_configured_header() -> None:
    forwarded = 'for=1.2.3.4;proto=https, for="[2001:db8:cafe::17]:4711";by=10.1.2.3'
    assert visitor("10.1.2.3", forwarded, header="forwarded") == "2001:db8:cafe::17"
    assert visitor("10.1.2.3", 'for=198.51.100.7, for="10.2.2.2"', header="forwarded") == "198.51.100.7"
    # A quoted comma or an unbalanced quote further left never shifts the hops on the right.
    assert visitor("10.1.2.3", 'for="a,b", for=198.51.100.7', header="forwarded") == "198.51.100.7"
    assert visitor("10.1.2.3", "for=unknown", header="forwarded") == "10.1.2.3"
    assert visitor("10.1.2.3", 'for="1.2.3.4, for=198.51.100.7', header="forwarded") == "10.1.2.3"


def request_from(peer: str, *headers: tuple[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]
    return Request({"type": "http", "client": (peer, 51234), "headers": raw})


def test_only_the_configured_header_is_believed() -> None:
    # The ingress appends to X-Forwarded-For and passes a visitor's own Forwarded through untouched.
    sent = request_from("10.1.2.3", ("Forwarded", "for=1.2.3.4"), ("X-Forwarded-For", "198.51.100.7"))

    assert str(ClientAddresses(["10.0.0.0/8"], "x-forwarded-for").of(sent)) == "198.51.100.7"
    assert str(ClientAddresses(["10.0.0.0/8"], "forwarded").of(sent)) == "1.2.3.4"
    assert ClientAddresses([]).bucket(sent) == "10.1.2.3"  # no trusted proxies: headers ignored


def test_ipv6_visitors_are_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    one = address_bucket(parse_address("2001:db8:1:2::1"))
    same = address_bucket(parse_address("2001:db8:1:2:ffff:ffff:ffff:ffff"))
    other = address_bucket(parse_address("2001:db8:1:3::1"))

    assert one == same == "2001:db8:1:2::/64"
    assert other != one
    assert address_bucket(parse_address("::ffff:198.51.100.7")) == "198.51.100.7"
    assert address_bucket(parse_address("198.51.100.7")) == "198.51.100.7"
    assert address_bucket(None) == "unknown"
    # A dual-stack socket reports the ingress as ::ffff:10.1.2.3: still the trusted 10.0.0.0/8.
    assert visitor("::ffff:10.1.2.3", "::ffff:198.51.100.7") == "198.51.100.7"
    assert visitor("fd00::5", "2001:db8::9") == "2001:db8::9"


def test_an_ipv6_network_is_its_48_and_ipv4_has_none() -> None:
    assert network_bucket(parse_address("2001:db8:1:2::1")) == "2001:db8:1::/48"
    assert network_bucket(parse_address("2001:db8:1:ffff::1")) == "2001:db8:1::/48"
    assert network_bucket(parse_address("2001:db8:2::1")) == "2001:db8:2::/48"
    assert network_bucket(parse_address("::ffff:198.51.100.7")) is None
    assert network_bucket(parse_address("198.51.100.7")) is None
    assert network_bucket(None) is None


def test_a_peer_that_is_no_address_has_no_visitor_address() -> None:
    assert client_address("testclient", ["198.51.100.7"], INGRESS) is None
    assert client_address(None, [], INGRESS) is None


def test_a_trusted_proxy_list_must_be_cidrs() -> None:
    assert parse_trusted_proxies(["10.0.0.0/8", "192.0.2.1", "::ffff:10.0.0.0/104"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
    )
    for bad in (["10.0.0.1/8"], ["ingress"], ["10.0.0.0/33"]):
        with pytest.raises(ValueError):
            parse_trusted_proxies(bad)
    with pytest.raises(ValidationError, match="trusted_proxies"):
        GatewaySettings(trusted_proxies=["10.0.0.1/8"], auth_jwks_url="http://gateway/.well-known/jwks.json")
