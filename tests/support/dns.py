"""Loopback authoritative DNS server (UDP and TCP) for tests and benchmarks, fed from SPF-suite zone data.

Zone data uses the ``zonedata`` format of the pyspf conformance YAML: a mapping from a name to a list
of one-key mappings (``{"A": "192.0.2.1"}``, ``{"MX": [10, "mx.example.com"]}``, ``{"TXT": "v=spf1"}``,
``{"TXT": ["part1", "part2"]}``, ``{"SPF": ...}``, ``{"PTR": ...}``, ``{"CNAME": ...}``) or the bare
words ``TIMEOUT`` (never answer), ``SERVFAIL`` and ``REFUSED`` (answer with that rcode) and ``NXDOMAIN``
(claim the name does not exist, as a resolver without upstream may). Queries whose type appears
before such a word are still answered, as in pyspf's runner. A missing name is NXDOMAIN, a listed
name without the asked type is NODATA (both with an SOA for negative caching). SPF items are copied
to TXT when a name has no TXT item at all. A CNAME is answered together with the target's records of
the asked type, one level deep. The server is authoritative for the root: unless the zone lists
``"."``, the root's SOA is answered, as every working resolver does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.rrset

if TYPE_CHECKING:
    from domaincheck.dns import DnsClient

__all__ = ["LoopbackDnsServer", "StartServer", "ThreadedDnsServer", "Zone"]

# The type of the tests' ``loopback_dns`` fixture: start a server for zone data, get it and a client.
StartServer = Callable[..., Awaitable[tuple["LoopbackDnsServer", "DnsClient"]]]

IN = dns.rdataclass.IN
RdataType = dns.rdatatype.RdataType
_CONTROL_WORDS = ("TIMEOUT", "SERVFAIL", "REFUSED", "NXDOMAIN")
_CONTROL_RCODES = {"SERVFAIL": dns.rcode.SERVFAIL, "REFUSED": dns.rcode.REFUSED, "NXDOMAIN": dns.rcode.NXDOMAIN}


def _name(text: str) -> dns.name.Name:
    text = text.rstrip(".") if text not in ("", ".") else ""
    if not text:
        return dns.name.root
    return dns.name.Name([label.encode("utf-8") for label in text.split(".")] + [b""])


def _txt_strings(value: Any) -> tuple[bytes, ...]:
    parts = [value] if isinstance(value, str) else list(value)
    strings: list[bytes] = []
    for part in parts:
        text = str(part)
        try:
            raw = text.encode("latin-1")
        except UnicodeEncodeError:
            raw = text.encode("utf-8")
        # A character-string holds at most 255 octets: longer YAML strings become several.
        strings.extend([raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""])
    # dnspython cannot encode a TXT record with no strings; one empty string reads the same to SPF.
    return tuple(strings) or (b"",)


def _rdata(rtype: str, value: Any) -> dns.rdata.Rdata:
    if rtype in ("A", "AAAA"):
        return dns.rdata.from_text(IN, RdataType.make(rtype), str(value))
    if rtype == "MX":
        preference, exchange = value
        return dns.rdtypes.ANY.MX.MX(IN, RdataType.MX, int(preference), _name(str(exchange)))
    if rtype == "PTR":
        return dns.rdtypes.ANY.PTR.PTR(IN, RdataType.PTR, _name(str(value)))
    if rtype == "CNAME":
        return dns.rdtypes.ANY.CNAME.CNAME(IN, RdataType.CNAME, _name(str(value)))
    if rtype == "TXT":
        return dns.rdtypes.ANY.TXT.TXT(IN, RdataType.TXT, _txt_strings(value))
    if rtype == "SPF":
        return dns.rdtypes.ANY.SPF.SPF(IN, RdataType.SPF, _txt_strings(value))
    raise ValueError(f"unsupported record type {rtype}")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the zone says about one question."""

    rcode: int  # dns.rcode value; -1 means "do not answer"
    answer: tuple[dns.rrset.RRset, ...] = ()
    negative: bool = False


DROP = Reply(-1)


class Zone:
    """Zone data in the conformance-suite format, indexed by name (case-insensitive)."""

    def __init__(self, data: Mapping[str, Sequence[Any]] | None = None, *, ttl: int = 300) -> None:
        self.ttl = ttl
        self._items: dict[dns.name.Name, list[tuple[str, Any]]] = {}
        self._replies: dict[tuple[dns.name.Name, int], Reply] = {}
        for name, items in (data or {}).items():
            self.add_name(name, items)

    def add_name(self, name: str, items: Sequence[Any]) -> None:
        """Add one name with its list of items, applying the SPF-to-TXT copying rule."""
        parsed: list[tuple[str, Any]] = []
        for item in items:
            if isinstance(item, str):
                if item not in _CONTROL_WORDS:
                    raise ValueError(f"unknown zone item {item!r}")
                parsed.append((item, None))
            else:
                ((rtype, value),) = dict(item).items()
                parsed.append((str(rtype).upper(), value))
        if not any(rtype == "TXT" for rtype, _ in parsed):
            parsed.extend(("TXT", value) for rtype, value in list(parsed) if rtype == "SPF")
        parsed = [(rtype, value) for rtype, value in parsed if not (rtype == "TXT" and value == "NONE")]
        self._items.setdefault(_name(name), []).extend(parsed)
        self._replies.clear()

    def lists(self, qname: dns.name.Name) -> bool:
        """True when the zone data has items for ``qname``."""
        return qname in self._items

    def lookup(self, qname: dns.name.Name, qtype: int) -> Reply:
        """The reply for one question (memoized)."""
        key = (qname, qtype)
        reply = self._replies.get(key)
        if reply is None:
            reply = self._replies[key] = self._build(qname, qtype, follow_cname=True)
        return reply

    def _build(self, qname: dns.name.Name, qtype: int, *, follow_cname: bool) -> Reply:
        items = self._items.get(qname)
        if items is None:
            return Reply(dns.rcode.NXDOMAIN, negative=True)
        type_text = dns.rdatatype.to_text(qtype)
        matched: list[dns.rdata.Rdata] = []
        for rtype, value in items:
            if rtype in _CONTROL_WORDS:
                if matched:
                    break
                if rtype == "TIMEOUT":
                    return DROP
                return Reply(_CONTROL_RCODES[rtype], negative=rtype == "NXDOMAIN")
            if rtype == type_text:
                matched.append(_rdata(rtype, value))
        if matched:
            return Reply(dns.rcode.NOERROR, (self._rrset(qname, qtype, matched),))
        cnames = [value for rtype, value in items if rtype == "CNAME"]
        if cnames and qtype != RdataType.CNAME and follow_cname:
            cname = _rdata("CNAME", cnames[0])
            assert isinstance(cname, dns.rdtypes.ANY.CNAME.CNAME)
            rrsets = [self._rrset(qname, RdataType.CNAME, [cname])]
            target = self._build(cname.target, qtype, follow_cname=False)
            if target.rcode == dns.rcode.NOERROR:
                rrsets.extend(rrset for rrset in target.answer if rrset.rdtype == qtype)
            return Reply(dns.rcode.NOERROR, tuple(rrsets))
        return Reply(dns.rcode.NOERROR, negative=True)

    def _rrset(self, qname: dns.name.Name, qtype: int, rdatas: list[dns.rdata.Rdata]) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(qname, IN, RdataType.make(qtype))
        rrset.update_ttl(self.ttl)
        for rdata in rdatas:
            rrset.add(rdata)
        return rrset


@dataclass(slots=True)
class ServerStats:
    """Counters of what the server received."""

    queries_received: int = 0
    tcp_queries: int = 0
    dropped: int = 0
    questions: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: LoopbackDnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        wire = self.server.handle(data, tcp=False)
        if wire is None or self.transport is None:
            return
        if self.server.delay > 0:
            loop = asyncio.get_running_loop()
            handle = loop.call_later(self.server.delay, self._send, wire, addr)
            self.server._timers.add(handle)
        else:
            self.transport.sendto(wire, addr)

    def _send(self, wire: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


class LoopbackDnsServer:
    """An authoritative server on 127.0.0.1 (random port) answering from a :class:`Zone`.

    Use as ``async with LoopbackDnsServer(zone) as server:`` on the running loop; ``server.address``
    is ``(host, port)`` for both UDP and TCP. ``delay`` (seconds) postpones every answer without
    blocking other queries. ``edns=False`` ignores EDNS, so answers over 512 octets are truncated
    and the client must retry over TCP.
    """

    def __init__(
        self,
        zone: Zone | Mapping[str, Sequence[Any]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        edns: bool = True,
        negative_ttl: int = 60,
        count_questions: bool = True,
    ) -> None:
        self.zone = zone if isinstance(zone, Zone) else Zone(zone)
        self.host = host
        self.port = port
        self.delay = delay
        self.edns = edns
        self.negative_ttl = negative_ttl
        self.count_questions = count_questions
        self.stats = ServerStats()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._soa = dns.rrset.RRset(dns.name.root, IN, RdataType.SOA)
        self._soa.update_ttl(negative_ttl)
        self._soa.add(
            dns.rdtypes.ANY.SOA.SOA(
                IN,
                RdataType.SOA,
                _name("ns.example"),
                _name("hostmaster.example"),
                1,
                3600,
                600,
                86400,
                negative_ttl,
            )
        )

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        return (self.host, self.port)

    async def start(self) -> None:
        """Bind UDP (random free port unless given) and TCP on the same port."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            port = transport.get_extra_info("sockname")[1]
            # A big receive buffer: a burst of queries from a bulk check must not be dropped.
            with contextlib.suppress(OSError):
                transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                transport.close()
                if self.port:
                    raise
                continue
            self._udp = transport
            self.port = port
            return
        raise OSError("no free port for UDP and TCP")

    async def stop(self) -> None:
        """Close both listeners and every open TCP connection; drop delayed answers."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None
        await asyncio.sleep(0)  # let the transports finish closing

    async def __aenter__(self) -> LoopbackDnsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        """Answer one wire-format query; None means stay silent."""
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        self.stats.queries_received += 1
        if tcp:
            self.stats.tcp_queries += 1
        if len(query.question) != 1:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        if self.count_questions:
            self.stats.questions[(question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype))] += 1
        if question.name == dns.name.root and not self.zone.lists(dns.name.root):
            is_soa = question.rdtype == RdataType.SOA
            reply = Reply(dns.rcode.NOERROR, (self._soa,) if is_soa else (), negative=not is_soa)
        else:
            reply = self.zone.lookup(question.name, question.rdtype)
        if reply is DROP:
            self.stats.dropped += 1
            return None
        response = dns.message.make_response(query)
        if not self.edns:
            response.use_edns(False)
        response.flags |= dns.flags.AA
        response.set_rcode(reply.rcode)
        response.answer.extend(reply.answer)
        if reply.negative:
            response.authority.append(self._soa)
        # Keep the zone's record order (the suite's ptr-limit case depends on it); dnspython shuffles.
        if tcp:
            return response.to_wire(want_shuffle=False)
        limit = max(512, query.payload) if (self.edns and query.edns >= 0) else 512
        try:
            return response.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                header = await reader.readexactly(2)
                data = await reader.readexactly(int.from_bytes(header, "big"))
                wire = self.handle(data, tcp=True)
                if wire is None:
                    continue
                if self.delay > 0:
                    await asyncio.sleep(self.delay)
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


class ThreadedDnsServer:
    """Runs a :class:`LoopbackDnsServer` on its own event loop in a background thread.

    For synchronous users: ``with ThreadedDnsServer(zone) as server: ... server.address``.
    """

    def __init__(self, zone: Zone | Mapping[str, Sequence[Any]], **options: Any) -> None:
        self.server = LoopbackDnsServer(zone, **options)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        return self.server.address

    def start(self) -> None:
        """Start the thread and wait until the server listens."""
        self._thread = threading.Thread(target=self._run, name="loopback-dns", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop the server and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ThreadedDnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()
