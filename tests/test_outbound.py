"""The outbound rule for user-supplied targets: which addresses pass, how hosts are read, how names resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from domaincheck.dns import DnsClient
from resolvers.outbound import (
    OutboundGuard,
    OutboundPolicy,
    TargetNotAllowed,
    TargetUnresolvable,
    parse_address,
)
from tests.support.dns import LoopbackDnsServer

INTERNAL = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.0.0.8",
    "192.0.2.10",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "100::1",
    "2001::1",  # Teredo
    "2001:db8::1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.1",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast, unspecified, reserved and documentation addresses,
    and IPv6 forms that embed such an IPv4 address, are not allowed by default."""
    assert not OutboundPolicy().is_allowed(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    """Globally reachable unicast addresses (also IPv4-mapped, NAT64 or 6to4 forms of one) are allowed."""
    assert OutboundPolicy().is_allowed(ip_address(address))


def test_listed_networks_are_allowed_and_nothing_else() -> None:
    """OUTBOUND_ALLOW_NETWORKS lets exactly the listed networks through (an IPv4-mapped address counts as
    its IPv4 address); other internal addresses stay refused."""
    policy = OutboundPolicy.from_cidrs(["127.0.0.0/8", "10.1.0.0/16", "fd00:1::/32"])
    for allowed in ["127.0.0.1", "127.8.9.10", "::ffff:127.0.0.1", "10.1.200.3", "fd00:1::25"]:
        assert policy.is_allowed(ip_address(allowed)), allowed
    for refused in ["10.2.0.1", "192.168.1.1", "::1", "169.254.169.254", "fd00:2::25"]:
        assert not policy.is_allowed(ip_address(refused)), refused


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.0x10000", "10.1.0.0"),
        ("0", "0.0.0.0"),
        ("134744072", "8.8.8.8"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_every_numeric_spelling_is_read_as_the_address(host: str, address: str) -> None:
    """Dotted-quad, inet_aton forms (decimal, octal, hex, fewer parts) and IPv6 literals are addresses, so
    none of them is treated as a DNS name that escapes the address check."""
    assert parse_address(host) == ip_address(address)


@pytest.mark.parametrize("host", ["smtp.example.com", "1.2.3.999", "08.1.1.1", "1.2.3.4.5", "256.1", "0x1g", "a:b"])
def test_names_and_impossible_numbers_are_no_address(host: str) -> None:
    """Names, out-of-range parts, invalid octal digits and too many parts are not an address."""
    assert parse_address(host) is None


@pytest.fixture
async def dns() -> AsyncIterator[LoopbackDnsServer]:
    """A loopback nameserver with public, internal, mixed, aliased and unanswerable names."""
    zone: dict[str, list[Any]] = {
        "smtp.public.example": [{"A": "93.184.215.14"}, {"AAAA": "2606:4700::6810:84e5"}],
        "smtp.intern.example": [{"A": "10.0.0.25"}],
        "smtp.v6loop.example": [{"A": "93.184.215.14"}, {"AAAA": "::1"}],
        "smtp.mixed.example": [{"A": "93.184.215.14"}, {"A": "127.0.0.1"}],
        "smtp.alias.example": [{"CNAME": "smtp.intern.example"}],
        "smtp.mapped.example": [{"AAAA": "::ffff:169.254.169.254"}],
        "smtp.norecords.example": [{"TXT": "nothing to dial"}],
        "smtp.slow.example": ["TIMEOUT"],
    }
    async with LoopbackDnsServer(zone) as server:
        yield server


def guard(server: LoopbackDnsServer, policy: OutboundPolicy | None = None) -> OutboundGuard:
    # Generous for a loaded machine; the silent name (smtp.slow.example) costs the guard's 3 s once.
    return OutboundGuard(policy or OutboundPolicy(), DnsClient([server.address], timeout=1.0, lifetime=3.0), 3.0)


async def test_public_name_resolves_to_its_checked_addresses(dns: LoopbackDnsServer) -> None:
    """A name whose every address is public resolves to those addresses, IPv4 first, to dial them directly."""
    target = await guard(dns).resolve_allowed("smtp.public.example", 587)
    assert (target.host, target.port) == ("smtp.public.example", 587)
    assert target.addresses == (IPv4Address("93.184.215.14"), IPv6Address("2606:4700::6810:84e5"))


@pytest.mark.parametrize(
    "host",
    [
        "smtp.intern.example",
        "smtp.v6loop.example",
        "smtp.mixed.example",
        "smtp.alias.example",
        "smtp.mapped.example",
        "localhost",
        "mail.localhost.",
    ],
)
async def test_name_with_any_internal_address_is_refused(dns: LoopbackDnsServer, host: str) -> None:
    """A name is refused when any of its A or AAAA records (also behind a CNAME) is internal; `localhost`
    and names under it are loopback without asking DNS."""
    with pytest.raises(TargetNotAllowed):
        await guard(dns).resolve_allowed(host, 25)


async def test_localhost_passes_only_where_loopback_is_allowed(dns: LoopbackDnsServer) -> None:
    """`localhost` stands for 127.0.0.1 and ::1: with both networks listed it resolves to them."""
    policy = OutboundPolicy.from_cidrs(["127.0.0.0/8", "::1/128"])
    target = await guard(dns, policy).resolve_allowed("localhost", 25)
    assert target.addresses == (IPv4Address("127.0.0.1"), IPv6Address("::1"))


@pytest.mark.parametrize("host", ["smtp.missing.example", "smtp.norecords.example", "smtp.slow.example"])
async def test_name_without_address_is_unresolvable(dns: LoopbackDnsServer, host: str) -> None:
    """NXDOMAIN, a name without A/AAAA records and a nameserver that never answers give no address to dial
    (within the guard's timeout)."""
    with pytest.raises(TargetUnresolvable):
        await guard(dns).resolve_allowed(host, 25)
