"""Async DNS client for the SPF engine: TTL cache, negative caching and in-flight de-duplication."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.txtbase

__all__ = [
    "DnsAnswer",
    "DnsClient",
    "DnsKind",
    "DnsStats",
    "to_dns_name",
]

from domaincheck.dns_wire import ParsedResponse, Value, WireError, build_query, name_text, parse_response

RdataType = dns.rdatatype.RdataType


class DnsKind(enum.Enum):
    """What kind of result a DNS question produced."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"  # SERVFAIL/REFUSED/other error rcodes or unusable responses
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """The outcome of one question: its kind, the record values (answers only) and the TTL used for caching.

    ``values`` holds, per record: the address text (A/AAAA), the joined character-strings as
    bytes (TXT/SPF), ``(preference, exchange)`` (MX) or the target name (PTR/CNAME/NS).
    """

    name: str
    rdtype: RdataType
    kind: DnsKind
    values: tuple[Value, ...] = ()
    ttl: int = 0
    error: str = ""

    @property
    def is_void(self) -> bool:
        """True for NXDOMAIN and NODATA, the "void lookups" of RFC 7208 4.6.4."""
        return self.kind in (DnsKind.NXDOMAIN, DnsKind.NODATA)

    @property
    def is_temporary_error(self) -> bool:
        """True for server failures and timeouts."""
        return self.kind in (DnsKind.SERVFAIL, DnsKind.TIMEOUT)

    def texts(self) -> list[bytes]:
        """TXT/SPF records, each with its character-strings joined without separator."""
        return [value for value in self.values if isinstance(value, bytes)]

    def addresses(self) -> list[str]:
        """The addresses of A/AAAA records."""
        if self.rdtype not in (RdataType.A, RdataType.AAAA):
            return []
        return [value for value in self.values if isinstance(value, str)]

    def mx_hosts(self) -> list[tuple[int, str]]:
        """(preference, exchange) pairs in answer order; the root exchange (null MX) is ``""``."""
        return [value for value in self.values if isinstance(value, tuple)]

    def ptr_names(self) -> list[str]:
        """The target names of PTR records in answer order."""
        if self.rdtype != RdataType.PTR:
            return []
        return [value for value in self.values if isinstance(value, str)]


@dataclass(slots=True)
class DnsStats:
    """Counters for benchmarks and diagnostics."""

    queries_sent: int = 0
    tcp_fallbacks: int = 0
    cache_hits: int = 0
    inflight_joins: int = 0
    questions: set[tuple[bytes, int]] = field(default_factory=set)

    @property
    def distinct_questions(self) -> int:
        """How many different (name, type) pairs went to the network."""
        return len(self.questions)

    def question_list(self) -> list[tuple[str, str]]:
        """The distinct questions as (name, type) text pairs."""
        return [(name_text(wire), dns.rdatatype.to_text(RdataType(qtype))) for wire, qtype in self.questions]


@dataclass(slots=True)
class _CacheEntry:
    answer: DnsAnswer
    expires: float


@dataclass(slots=True)
class _Flight:
    future: asyncio.Future[DnsAnswer]
    joiners: int = 0
    task: asyncio.Task[None] | None = None


class _TemporaryFailure(Exception):
    def __init__(self, kind: DnsKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _name_text(name: dns.name.Name) -> str:
    if name == dns.name.root:
        return ""
    return name.to_text(omit_final_dot=True)


@functools.lru_cache(maxsize=65536)
def _wire_name(text: str) -> bytes | None:
    """Wire format of a domain (labels taken literally), or None when it is not a valid DNS name."""
    if text.endswith("."):
        text = text[:-1]
    if not text:
        return None
    try:
        labels = [label.encode("ascii") for label in text.split(".")]
    except UnicodeEncodeError:
        idna = to_dns_name(text)
        return idna.to_wire() if idna is not None else None
    if any(not label or len(label) > 63 for label in labels):
        return None
    wire = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    return wire if len(wire) <= 255 else None


def to_dns_name(text: str) -> dns.name.Name | None:
    """Turn a domain string into an absolute name, or None when it is not a valid DNS name.

    Labels are taken literally (no backslash escapes), so SPF macro results such as
    ``foo:bar/baz.example.com`` survive; empty labels and labels over 63 octets are invalid;
    non-ASCII names are IDNA-encoded.
    """
    if text.endswith("."):
        text = text[:-1]
    if not text:
        return None
    try:
        labels = [label.encode("ascii") for label in text.split(".")]
    except UnicodeEncodeError:
        try:
            return dns.name.from_text(text, origin=dns.name.root)
        except (dns.exception.DNSException, UnicodeError, ValueError):
            return None
    if any(not label or len(label) > 63 for label in labels):
        return None
    try:
        return dns.name.Name([*labels, b""])
    except dns.exception.DNSException:
        return None


def _system_nameservers() -> list[tuple[str, int]]:
    resolver = dns.asyncresolver.Resolver()
    return [(str(ns), resolver.port) for ns in resolver.nameservers]


_TYPES: dict[RdataType | str, RdataType] = {}


def _rdtype(rdtype: RdataType | str) -> RdataType:
    known = _TYPES.get(rdtype)
    if known is None:
        known = _TYPES[rdtype] = RdataType.make(rdtype)
    return known


def _values_from_message(response: dns.message.Message, qtype: RdataType) -> ParsedResponse:
    """The fallback path: read a response with dnspython into the codec's shape."""
    if not isinstance(response, dns.message.QueryMessage):
        raise WireError("not a query response")
    try:
        chain = response.resolve_chaining()
    except dns.exception.DNSException as exc:
        raise WireError(f"unusable answer: {exc!r}") from exc
    values: list[Value] = []
    for rd in chain.answer or ():
        if isinstance(rd, (dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA)):
            values.append(rd.address)
        elif isinstance(rd, dns.rdtypes.txtbase.TXTBase):
            values.append(b"".join(rd.strings))
        elif isinstance(rd, dns.rdtypes.ANY.MX.MX):
            values.append((rd.preference, _name_text(rd.exchange)))
        elif isinstance(rd, dns.rdtypes.ANY.PTR.PTR):
            values.append(_name_text(rd.target))
        else:
            values.append(rd.to_text())
    negative_ttl = -1
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and isinstance(rrset[0], dns.rdtypes.ANY.SOA.SOA):
            negative_ttl = min(rrset.ttl, rrset[0].minimum)
            break
    ttl = chain.minimum_ttl if chain.answer is not None else -1
    return ParsedResponse(response.rcode(), bool(response.flags & dns.flags.TC), tuple(values), ttl, negative_ttl)


def _expire(waiter: asyncio.Future[bytes]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _UdpChannel:
    """One connected UDP socket to a nameserver, shared by the queries in flight.

    Queries are told apart by their random id. The socket closes as soon as no query waits
    on it, and is replaced after ``MAX_QUERIES`` so the source port keeps changing; nothing
    outlives the queries, so there is nothing to close by hand. At most ``MAX_WAITERS`` queries
    share one socket, and its receive buffer is enlarged, so a burst of answers is not dropped.
    """

    MAX_QUERIES = 256
    MAX_WAITERS = 64
    RECEIVE_BUFFER = 1 << 20  # room for a burst of answers while the loop is busy

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self.loop = loop
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RECEIVE_BUFFER)
        try:
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.waiters: dict[int, asyncio.Future[bytes]] = {}
        self.used = 0
        self.retiring = False
        self.closed = False
        loop.add_reader(self.sock.fileno(), self._readable)

    def free_id(self, query_id: int) -> int:
        while query_id in self.waiters:
            query_id = secrets.randbits(16)
        return query_id

    def register(self, query_id: int) -> asyncio.Future[bytes]:
        waiter: asyncio.Future[bytes] = self.loop.create_future()
        self.waiters[query_id] = waiter
        return waiter

    def unregister(self, query_id: int) -> None:
        self.waiters.pop(query_id, None)
        if not self.waiters:
            self.close()

    def send(self, message: bytes) -> None:
        self.used += 1
        if self.used >= self.MAX_QUERIES:
            self.retiring = True
        self.sock.send(message)  # a datagram socket does not block on a send this small

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. ICMP port unreachable: every waiter learns it
                for waiter in self.waiters.values():
                    if not waiter.done():
                        waiter.set_exception(exc)
                return
            if len(data) >= 2:
                pending = self.waiters.get(int.from_bytes(data[:2], "big"))
                if pending is not None and not pending.done():
                    pending.set_result(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.retiring = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class DnsClient:
    """An async stub resolver with a TTL-respecting cache shared by every check that uses it.

    ``nameservers`` is a list of ``(host, port)``; without it the system configuration
    (``/etc/resolv.conf`` through ``dns.asyncresolver.Resolver``) is used. Each question is
    sent over UDP (EDNS, payload ``edns_payload``), retried every ``timeout`` seconds until
    ``lifetime``, and repeated over TCP when the answer is truncated. Answers, NXDOMAIN and
    NODATA are cached (negative answers for the SOA minimum, or ``negative_ttl`` without SOA);
    temporary failures are not. Concurrent identical questions share one network exchange.
    Nothing needs closing: queries in flight share a UDP socket that closes when they are done.
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] | None = None,
        *,
        timeout: float = 2.0,
        lifetime: float = 5.0,
        edns_payload: int | None = 1232,
        negative_ttl: int = 30,
        max_ttl: int = 86400,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nameservers: list[tuple[str, int]] = list(nameservers) if nameservers else _system_nameservers()
        if not self.nameservers:
            raise ValueError("no nameservers configured")
        self.timeout = timeout
        self.lifetime = lifetime
        self.edns_payload = edns_payload
        self.negative_ttl = negative_ttl
        self.max_ttl = max_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: dict[tuple[bytes, int], _CacheEntry] = {}
        self._inflight: dict[tuple[bytes, int], _Flight] = {}
        self._channels: dict[tuple[str, int], list[_UdpChannel]] = {}
        self.stats = DnsStats()

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    def reset_stats(self) -> None:
        """Set all counters back to zero."""
        self.stats = DnsStats()

    async def query(self, name: str, rdtype: RdataType | str) -> DnsAnswer:
        """Answer one question from the cache or the network; never raises for DNS failures.

        An invalid name (empty label, label over 63 octets) yields NXDOMAIN without a query.
        """
        qtype = _rdtype(rdtype)
        wire = _wire_name(name)
        if wire is None:
            return DnsAnswer(name, qtype, DnsKind.NXDOMAIN, error="invalid domain name")
        return await self._query_wire(wire, qtype, name)

    async def probe_resolver(self) -> DnsAnswer:
        """The SOA of the root zone, which every working resolver can answer.

        It tells a failed or lying resolver from a verdict about a domain: NXDOMAIN, SERVFAIL or a
        timeout for the root means the nameservers themselves are unusable (no network, no
        upstream, a stub that answers NXDOMAIN for everything). Cached like any answer, so a
        shared client asks once per TTL.
        """
        return await self._query_wire(b"\x00", RdataType.SOA, ".")

    @staticmethod
    def resolver_works(probe: DnsAnswer) -> bool:
        """True when a :meth:`probe_resolver` answer shows a working resolver (the root exists)."""
        return probe.kind in (DnsKind.ANSWER, DnsKind.NODATA)

    async def _query_wire(self, wire: bytes, qtype: RdataType, name: str) -> DnsAnswer:
        key = (wire.lower(), int(qtype))
        entry = self._cache.get(key)
        if entry is not None:
            if entry.expires > self._clock():
                self.stats.cache_hits += 1
                return entry.answer
            del self._cache[key]
        flight = self._inflight.get(key)
        if flight is not None:
            return await self._join(flight)
        flight = _Flight(asyncio.get_running_loop().create_future())
        self._inflight[key] = flight
        # The first asker runs the exchange itself (no extra task); others wait on its future.
        try:
            answer = await self._fetch(key, wire, qtype, name)
        except asyncio.CancelledError:
            if flight.joiners:
                flight.task = asyncio.create_task(self._take_over(key, flight, wire, qtype, name))
            else:
                self._land(key, flight, None)
            raise
        except BaseException:
            self._land(key, flight, None)
            raise
        self._land(key, flight, answer)
        return answer

    def peek(self, name: str, rdtype: RdataType | str) -> DnsAnswer | None:
        """The cached answer, if there is a fresh one; never sends anything."""
        wire = _wire_name(name)
        if wire is None:
            return None
        entry = self._cache.get((wire.lower(), int(_rdtype(rdtype))))
        if entry is None or entry.expires <= self._clock():
            return None
        return entry.answer

    async def _join(self, flight: _Flight) -> DnsAnswer:
        self.stats.inflight_joins += 1
        flight.joiners += 1
        try:
            return await asyncio.shield(flight.future)
        finally:
            flight.joiners -= 1
            # The last one to give up stops an exchange that nobody waits for any more.
            if not flight.joiners and flight.task is not None and not flight.task.done():
                flight.task.cancel()

    async def _take_over(
        self, key: tuple[bytes, int], flight: _Flight, wire: bytes, qtype: RdataType, text: str
    ) -> None:
        """The first asker was cancelled while others wait: finish the question for them."""
        try:
            answer = await self._fetch(key, wire, qtype, text)
        except BaseException:
            self._land(key, flight, None)
            raise
        self._land(key, flight, answer)

    def _land(self, key: tuple[bytes, int], flight: _Flight, answer: DnsAnswer | None) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        if flight.future.done():
            return
        if answer is None:
            flight.future.cancel()
        else:
            flight.future.set_result(answer)

    async def query_many(self, questions: Iterable[tuple[str, RdataType | str]]) -> list[DnsAnswer]:
        """Ask several questions concurrently; answers come back in the order asked."""
        return list(await asyncio.gather(*(self.query(n, t) for n, t in questions)))

    async def _fetch(self, key: tuple[bytes, int], wire: bytes, qtype: RdataType, text: str) -> DnsAnswer:
        self.stats.questions.add(key)
        try:
            response = await self._exchange(wire, qtype)
        except _TemporaryFailure as failure:
            return DnsAnswer(text, qtype, failure.kind, error=failure.reason)
        answer = self._interpret(response, qtype, text)
        if answer.ttl > 0:
            if len(self._cache) >= self.max_entries:
                self._evict()
            self._cache[key] = _CacheEntry(answer, self._clock() + answer.ttl)
        return answer

    def _evict(self) -> None:
        now = self._clock()
        expired = [key for key, entry in self._cache.items() if entry.expires <= now]
        for key in expired:
            del self._cache[key]
        # Still full: drop the oldest tenth (dicts keep insertion order).
        if len(self._cache) >= self.max_entries:
            for key in list(self._cache)[: max(1, self.max_entries // 10)]:
                del self._cache[key]

    def _interpret(self, response: ParsedResponse, qtype: RdataType, text: str) -> DnsAnswer:
        if response.values:
            return DnsAnswer(text, qtype, DnsKind.ANSWER, response.values, min(response.ttl, self.max_ttl))
        kind = DnsKind.NXDOMAIN if response.rcode == dns.rcode.NXDOMAIN else DnsKind.NODATA
        ttl = response.negative_ttl if response.negative_ttl >= 0 else self.negative_ttl
        return DnsAnswer(text, qtype, kind, (), min(ttl, self.max_ttl))

    async def _exchange(self, wire: bytes, qtype: RdataType) -> ParsedResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lifetime
        failures: dict[int, str] = {}
        attempt = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _TemporaryFailure(DnsKind.TIMEOUT, f"no answer within {self.lifetime}s")
            index = attempt % len(self.nameservers)
            attempt += 1
            if index in failures:
                if len(failures) == len(self.nameservers):
                    raise _TemporaryFailure(DnsKind.SERVFAIL, "; ".join(failures.values()))
                continue
            host, port = self.nameservers[index]
            query_id = secrets.randbits(16)
            self.stats.queries_sent += 1
            try:
                response = await self._udp(query_id, wire, qtype, host, port, min(self.timeout, remaining))
                if response.truncated:
                    self.stats.tcp_fallbacks += 1
                    self.stats.queries_sent += 1
                    async with asyncio.timeout_at(deadline):
                        response = await self._tcp(query_id, wire, qtype, host, port)
            except TimeoutError:
                continue
            except (OSError, EOFError, WireError, dns.exception.DNSException) as exc:
                failures[index] = f"{host}:{port}: {exc!r}"
                continue
            if response.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return response
            failures[index] = f"{host}:{port}: {dns.rcode.to_text(dns.rcode.Rcode.make(response.rcode))}"

    def _channel(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> _UdpChannel:
        """A socket with room for one more query; bursts are spread over several sockets."""
        channels = [c for c in self._channels.get((host, port), ()) if not c.retiring]
        for channel in channels:
            if len(channel.waiters) < _UdpChannel.MAX_WAITERS:
                break
        else:
            channel = _UdpChannel(loop, host, port)
            channels.append(channel)
        self._channels[(host, port)] = channels
        return channel

    def _read(self, data: bytes, query_id: int, wire: bytes, qtype: RdataType) -> ParsedResponse | None:
        try:
            return parse_response(data, query_id, wire, qtype)
        except WireError:
            pass
        # Outside the lean codec (or malformed): let dnspython judge it.
        try:
            message = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        question = message.question[0] if len(message.question) == 1 else None
        if (
            message.id != query_id
            or not message.flags & dns.flags.QR
            or question is None
            or question.rdtype != qtype
            or (question.name.to_wire() or b"").lower() != wire.lower()
        ):
            return None
        return _values_from_message(message, qtype)

    async def _udp(
        self, query_id: int, wire: bytes, qtype: RdataType, host: str, port: int, timeout: float
    ) -> ParsedResponse:
        loop = asyncio.get_running_loop()
        channel = self._channel(loop, host, port)
        query_id = channel.free_id(query_id)
        waiter = channel.register(query_id)
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            channel.send(build_query(query_id, wire, qtype, self.edns_payload))
            while True:
                data = await waiter
                response = self._read(data, query_id, wire, qtype)
                if response is not None:
                    return response
                waiter = channel.register(query_id)  # not ours after all: keep listening
                timer.cancel()
                timer = loop.call_later(timeout, _expire, waiter)
        finally:
            timer.cancel()
            channel.unregister(query_id)

    async def _tcp(self, query_id: int, wire: bytes, qtype: RdataType, host: str, port: int) -> ParsedResponse:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            message = build_query(query_id, wire, qtype, self.edns_payload)
            writer.write(len(message).to_bytes(2, "big") + message)
            await writer.drain()
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                response = self._read(await reader.readexactly(size), query_id, wire, qtype)
                if response is not None:
                    return response
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
