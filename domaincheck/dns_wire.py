"""Lean DNS wire codec for the record types SPF needs (A, AAAA, TXT, SPF, MX, PTR, CNAME).

dnspython's generic message parser dominates the CPU cost of bulk checks; this codec builds
queries and reads answers directly. Anything it does not understand raises :class:`WireError`,
and the client then falls back to dnspython, so odd responses are still handled correctly.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

__all__ = ["ParsedResponse", "WireError", "build_query", "parse_response"]

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, OPT, SPF = 1, 2, 5, 6, 12, 15, 16, 28, 41, 99
SUPPORTED = frozenset({A, AAAA, TXT, SPF, MX, PTR, CNAME, NS})
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_MAX_CHAIN = 16

Value = str | bytes | tuple[int, str]


class WireError(ValueError):
    """The response is outside what this codec handles (or malformed)."""


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """The parts of a response the resolver needs."""

    rcode: int
    truncated: bool
    values: tuple[Value, ...]  # records of the asked type at the end of the CNAME chain
    ttl: int  # minimum TTL over the chain and answer; -1 when there is no answer
    negative_ttl: int  # min(SOA TTL, SOA minimum) from the authority section; -1 without SOA


def build_query(query_id: int, qname_wire: bytes, qtype: int, edns_payload: int | None) -> bytes:
    """A recursive query (RD set) with an optional EDNS0 OPT record."""
    header = _HEADER.pack(query_id, 0x0100, 1, 0, 0, 1 if edns_payload else 0)
    question = qname_wire + struct.pack("!HH", qtype, 1)
    if not edns_payload:
        return header + question
    return header + question + b"\x00" + struct.pack("!HHIH", OPT, edns_payload, 0, 0)


def _read_name(wire: bytes, offset: int) -> tuple[bytes, int]:
    """The lower-cased wire-format name at ``offset`` (pointers followed) and the offset after it."""
    labels: list[bytes] = []
    end = -1
    jumps = 0
    length = len(wire)
    while True:
        if offset >= length:
            raise WireError("name runs past the message")
        size = wire[offset]
        if size == 0:
            offset += 1
            break
        if size & 0xC0 == 0xC0:
            if offset + 1 >= length:
                raise WireError("truncated pointer")
            if end < 0:
                end = offset + 2
            offset = ((size & 0x3F) << 8) | wire[offset + 1]
            jumps += 1
            if jumps > 64:
                raise WireError("compression loop")
            continue
        if size & 0xC0:
            raise WireError("unknown label type")
        labels.append(wire[offset : offset + 1 + size])
        offset += 1 + size
    name = b"".join(labels).lower() + b"\x00"
    if len(name) > 255:
        raise WireError("name too long")
    return name, (end if end >= 0 else offset)


def name_text(name: bytes) -> str:
    """Presentation form of a wire-format name, without the final dot (root gives "")."""
    labels: list[str] = []
    offset = 0
    while name[offset]:
        size = name[offset]
        labels.append(name[offset + 1 : offset + 1 + size].decode("latin-1"))
        offset += 1 + size
    return ".".join(labels)


def _rdata(wire: bytes, rtype: int, start: int, end: int) -> Value:
    if rtype == A:
        if end - start != 4:
            raise WireError("bad A record")
        return socket.inet_ntop(socket.AF_INET, wire[start:end])
    if rtype == AAAA:
        if end - start != 16:
            raise WireError("bad AAAA record")
        return socket.inet_ntop(socket.AF_INET6, wire[start:end])
    if rtype in (TXT, SPF):
        parts: list[bytes] = []
        offset = start
        while offset < end:
            size = wire[offset]
            parts.append(wire[offset + 1 : offset + 1 + size])
            offset += 1 + size
        if offset != end:
            raise WireError("bad TXT record")
        return b"".join(parts)
    if rtype == MX:
        preference = int.from_bytes(wire[start : start + 2], "big")
        exchange, after = _read_name(wire, start + 2)
        if after != end:
            raise WireError("bad MX record")
        return (preference, name_text(exchange))
    if rtype in (PTR, CNAME, NS):
        target, after = _read_name(wire, start)
        if after != end:
            raise WireError("bad name record")
        return name_text(target)
    raise WireError(f"type {rtype} not supported")


def parse_response(wire: bytes, query_id: int, qname_wire: bytes, qtype: int) -> ParsedResponse | None:
    """Read a response; None when it does not answer this query (wrong id or question)."""
    if len(wire) < 12:
        return None
    rid, flags, qdcount, ancount, nscount, _arcount = _HEADER.unpack_from(wire)
    if rid != query_id or not flags & 0x8000 or qdcount != 1:
        return None
    qname, offset = _read_name(wire, 12)
    if qname != qname_wire.lower() or wire[offset : offset + 4] != struct.pack("!HH", qtype, 1):
        return None
    offset += 4
    rcode = flags & 0x000F
    truncated = bool(flags & 0x0200)
    if qtype not in SUPPORTED:
        raise WireError(f"type {qtype} not supported")
    records: dict[bytes, list[tuple[int, int, int, int]]] = {}
    for _ in range(ancount):
        owner, offset = _read_name(wire, offset)
        if offset + 10 > len(wire):
            raise WireError("truncated record")
        rtype, rclass, ttl, rdlength = _RR.unpack_from(wire, offset)
        offset += 10
        if offset + rdlength > len(wire):
            raise WireError("truncated rdata")
        if rclass == 1:
            records.setdefault(owner, []).append((rtype, ttl, offset, offset + rdlength))
        offset += rdlength
    negative_ttl = -1
    for _ in range(nscount):
        _owner, offset = _read_name(wire, offset)
        if offset + 10 > len(wire):
            raise WireError("truncated record")
        rtype, _rclass, ttl, rdlength = _RR.unpack_from(wire, offset)
        offset += 10
        if rtype == SOA and negative_ttl < 0:
            _mname, inner = _read_name(wire, offset)
            _rname, inner = _read_name(wire, inner)
            if inner + 20 > len(wire):
                raise WireError("truncated SOA")
            minimum = int.from_bytes(wire[inner + 16 : inner + 20], "big")
            negative_ttl = min(ttl, minimum)
        offset += rdlength
    current = qname
    ttl_min = -1
    values: list[Value] = []
    for _ in range(_MAX_CHAIN):
        owned = records.get(current, [])
        matching = [r for r in owned if r[0] == qtype]
        if matching:
            for rtype, ttl, start, end in matching:
                values.append(_rdata(wire, rtype, start, end))
                ttl_min = ttl if ttl_min < 0 else min(ttl_min, ttl)
            break
        cnames = [r for r in owned if r[0] == CNAME]
        if not cnames or qtype == CNAME:
            break
        _rtype, ttl, start, end = cnames[0]
        ttl_min = ttl if ttl_min < 0 else min(ttl_min, ttl)
        current, _ = _read_name(wire, start)
    else:
        raise WireError("CNAME chain too long")
    if not values:
        ttl_min = -1
    return ParsedResponse(rcode, truncated, tuple(values), ttl_min, negative_ttl)
