"""The one rule for user-supplied outbound targets (own SMTP servers, later webhooks): no internal addresses.

A user who may name a host the service connects to could otherwise make the service reach what only it
can reach: its own relay on 127.0.0.1:25, the database, cloud metadata on 169.254.169.254, the office
network. So every user-supplied target goes through `OutboundGuard`:

- `OutboundPolicy.is_allowed(ip)` is the pure address rule: only globally reachable unicast addresses,
  and for IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64) the embedded
  address must pass as well. `OUTBOUND_ALLOW_NETWORKS` lists networks that are allowed all the same
  (a self-hosted mail server in the LAN, loopback sinks in tests).
- `parse_address(host)` reads every spelling a resolver would take for an IP address, including the
  BSD `inet_aton` forms (`2130706433`, `0177.0.0.1`, `0x7f.1`), so none of them slips past as a "name".
- `OutboundGuard.resolve_allowed(host, port)` resolves a name itself (through the project's DNS client,
  which honours DNS_NAMESERVERS), refuses it if *any* address is not allowed, and returns the vetted
  addresses. The caller must connect to one of those addresses, never to the name again: a second
  lookup could answer differently (DNS rebinding). TLS still verifies and sends SNI for the name.

A webhook feature uses the same guard: resolve the URL's host with `resolve_allowed`, connect to a
returned address with the URL's host as TLS server name and Host header, and check the connected peer
with `OutboundPolicy.is_allowed` again. The operator's own SMTP_RELAY is configuration, not user input,
and is never checked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from domaincheck.dns import DnsClient

__all__ = [
    "IPAddress",
    "Network",
    "OutboundGuard",
    "OutboundPolicy",
    "OutboundRefused",
    "ResolvedTarget",
    "TargetNotAllowed",
    "TargetUnresolvable",
    "is_local_name",
    "parse_address",
]

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# The IANA special-purpose registries, spelled out because `ipaddress.is_global` changes between Python
# releases and misses some (multicast, 6to4, NAT64, IPv4-compatible, site-local). Both must agree.
_BLOCKED_V4 = tuple(
    IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network": connecting to 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT shared address space
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast address
    )
)
_BLOCKED_V6 = tuple(
    IPv6Network(net)
    for net in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible addresses
        "::ffff:0:0/96",  # IPv4-mapped: judged by the embedded address before this list is consulted
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, including Teredo
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_NUMBER = re.compile(r"^(0[xX][0-9A-Fa-f]*|0[0-7]*|[1-9][0-9]*)$")


class OutboundRefused(Exception):
    """A user-supplied target is not connected to; `reason` is for the log, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TargetNotAllowed(OutboundRefused):
    """The host is, or resolves to, an address the policy refuses (loopback, private, link-local, …)."""


class TargetUnresolvable(OutboundRefused):
    """The host name has no address (NXDOMAIN, no A/AAAA records, DNS failure or timeout)."""


def _inet_aton(host: str) -> IPv4Address | None:
    """The IPv4 address of the BSD/glibc numeric forms: 1 to 4 parts, decimal, 0-octal or 0x-hex each;
    the last part fills the remaining bytes (`127.1`, `2130706433`, `0x7f.0.0.1`)."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.match(part) for part in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            numbers.append(int(part[2:] or "0", 16))
        elif part.startswith("0"):
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for index, number in enumerate(head):
        value |= number << (8 * (3 - index))
    return IPv4Address(value)


def parse_address(host: str) -> IPAddress | None:
    """The IP address `host` spells (dotted quad, IPv6 with or without brackets, inet_aton forms), or None
    when it is a name. A trailing dot is ignored, as resolvers ignore it."""
    text = host.strip().removeprefix("[").removesuffix("]").rstrip(".")
    if ":" in text:
        try:
            return ip_address(text)
        except ValueError:
            return None
    return _inet_aton(text)


def is_local_name(host: str) -> bool:
    """`localhost` and names under it, which resolve to loopback by definition (RFC 6761 6.3)."""
    name = host.strip().rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a 6to4 or well-known-prefix NAT64 address leads to."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, IPv4Address):
        return address.is_global and not any(address in net for net in _BLOCKED_V4)
    if not address.is_global or any(address in net for net in _BLOCKED_V6):
        return False
    embedded = _embedded_ipv4(address)
    return embedded is None or _is_public(embedded)


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses a user-supplied target may have: public unicast ones, and those in `allow_networks`."""

    allow_networks: tuple[Network, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> OutboundPolicy:
        """A policy allowing the given CIDRs (e.g. `["127.0.0.0/8"]`) besides public addresses."""
        return cls(tuple(ip_network(cidr, strict=False) for cidr in cidrs))

    def is_allowed(self, address: IPAddress) -> bool:
        """Whether the service may connect to `address` for a user; an IPv4-mapped address counts as IPv4."""
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address.version == net.version and address in net for net in self.allow_networks):
            return True
        return _is_public(address)


@dataclass(frozen=True)
class ResolvedTarget:
    """A user-supplied target after the check: the name as given (for TLS) and the addresses to dial."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class OutboundGuard:
    """The policy plus the DNS client to resolve names with; one per process, shared by every outbound use.

    `timeout` bounds one whole resolution (A and AAAA together), as DNS_TIMEOUT does for an SPF check.
    """

    policy: OutboundPolicy
    dns: DnsClient
    timeout: float = 5.0

    async def addresses_of(self, host: str) -> tuple[IPAddress, ...]:
        """Every address `host` stands for: itself if it is an address, loopback for `localhost`, else its
        A then AAAA records. TargetUnresolvable when a name has none (or DNS failed or timed out)."""
        literal = parse_address(host)
        if literal is not None:
            return (literal,)
        if is_local_name(host):
            return (IPv4Address("127.0.0.1"), IPv6Address("::1"))
        name = host.strip().rstrip(".")
        try:
            async with asyncio.timeout(self.timeout):
                answers = await self.dns.query_many([(name, "A"), (name, "AAAA")])
        except TimeoutError:
            raise TargetUnresolvable(f"{host}: no DNS answer within {self.timeout:g} s") from None
        found: list[IPAddress] = []
        for answer in answers:
            for text in answer.addresses():
                try:
                    found.append(ip_address(text))
                except ValueError:
                    continue
        if not found:
            reasons = ", ".join(f"{a.rdtype.name} {a.kind.value}{': ' + a.error if a.error else ''}" for a in answers)
            raise TargetUnresolvable(f"{host}: no address ({reasons})")
        return tuple(dict.fromkeys(found))

    def check(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """TargetNotAllowed unless every one of `addresses` (those of `host`) is allowed."""
        refused = [str(address) for address in addresses if not self.policy.is_allowed(address)]
        if refused:
            raise TargetNotAllowed(f"{host}: internal address {', '.join(refused)} is not allowed")

    async def resolve_allowed(self, host: str, port: int) -> ResolvedTarget:
        """Resolve `host` and vet every address; connect only to the returned ones (DNS rebinding).

        TargetNotAllowed if any address is internal and not allowed, TargetUnresolvable if there is none.
        """
        addresses = await self.addresses_of(host)
        self.check(host, addresses)
        return ResolvedTarget(host=host, port=port, addresses=addresses)
