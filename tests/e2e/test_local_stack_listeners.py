"""`make run` keeps every listener on loopback: nobody on the laptop's network reaches the
backends' gRPC (with reflection, plaintext, believing any x-crm-actor), their metrics, the fake
SMS provider, the gateway or the development token issuer it serves."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from pathlib import Path

import pytest

from crm_devstack.stack import Stack

pytestmark = pytest.mark.e2e

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp*


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} prints it: the raw bytes, in 32-bit words of host order."""
    raw = bytes.fromhex(hex_address)
    host_order = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        return ipaddress.IPv4Address(host_order)
    address = ipaddress.IPv6Address(host_order)
    return address.ipv4_mapped or address


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses on which something in this network namespace listens on TCP port."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            hex_address, hex_port = local.split(":")
            if state == _LISTEN and int(hex_port, 16) == port:
                found.add(_address(hex_address))
    return found


def non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route's source address
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def test_every_port_of_the_stack_listens_on_loopback_only(stack: Stack) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc/net/tcp")
    ports = dataclasses.asdict(stack.ports)
    exposed = {}
    for name, port in ports.items():
        addresses = listening_addresses(port)
        assert addresses, f"nothing listens on {name} ({port})"
        if not all(a.is_loopback for a in addresses):
            exposed[name] = sorted(map(str, addresses))
    assert exposed == {}, f"listening beyond loopback: {exposed}"


def test_backends_are_not_reachable_on_the_machines_network_address(stack: Stack) -> None:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    services = ("leads", "customers", "orders", "notifications", "reporting")
    targets = {f"{s} gRPC": stack.ports.grpc(s) for s in services}
    targets |= {f"{s} metrics": stack.ports.metrics(s) for s in (*services, "gateway")}
    targets |= {"gateway": stack.ports.gateway, "sms": stack.ports.sms}
    targets |= {"mail (SMTP)": stack.ports.mail_smtp, "mail (HTTP)": stack.ports.mail}
    reachable = []
    for name, port in targets.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            if sock.connect_ex((address, port)) == 0:
                reachable.append(name)
    assert reachable == [], f"reachable on {address}: {reachable}"
