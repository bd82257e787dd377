"""RFC 7208 check_host(): evaluation of SPF records over the cached async DNS client."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from domaincheck.dns import DnsAnswer, DnsClient, DnsKind, to_dns_name
from domaincheck.macros import (
    MacroContext,
    MacroSyntaxError,
    expand,
    needs_dns,
    parse_macro_string,
    reverse_pointer_name,
)
from domaincheck.spf_parse import Mechanism, Modifier, SpfRecord, parse_record, select_spf_records

__all__ = [
    "DEFAULT_EXPLANATION",
    "SpfAssumption",
    "SpfLimits",
    "SpfResult",
    "SpfResultCode",
    "check_host",
    "check_sender",
    "split_sender",
]

SpfResultCode = Literal["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]
QUALIFIER_RESULT: dict[str, SpfResultCode] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
DEFAULT_EXPLANATION = "%{o} does not designate %{c} as a permitted sender"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SpfLimits:
    """The processing limits of RFC 7208 4.6.4."""

    lookups: int = 10
    void_lookups: int = 2
    mx_names: int = 10
    ptr_names: int = 10


DEFAULT_LIMITS = SpfLimits()


@dataclass(frozen=True, slots=True)
class SpfAssumption:
    """A hypothetical sender for the question "would this domain authorize mail sent through X?".

    Under it, ``include:`` and ``redirect=`` targets in ``authorized_domains`` (lower case, no
    final dot) count as pass without being evaluated, ``all`` matches as usual, and every other
    mechanism is evaluated in full (lookups, limits, void lookups, temperrors) but never matches:
    the sender is one that only those domains authorize. This is how the domain audit asks the
    one evaluator instead of re-implementing the RFC's evaluation order and limits.
    """

    authorized_domains: frozenset[str]

    def authorizes(self, domain: str) -> bool:
        """True when ``domain`` is one of the assumed-authorizing include/redirect targets."""
        return domain.lower().rstrip(".") in self.authorized_domains


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The outcome of check_host().

    ``term`` is the term that decided (``-all``, ``include:...``; for errors the offending term),
    ``domain`` the domain whose record decided, ``lookups`` the DNS-querying terms evaluated,
    ``explanation`` the expanded ``exp=`` text (fail only) and ``reason`` a short diagnosis.
    """

    result: SpfResultCode
    domain: str
    explanation: str | None = None
    term: str | None = None
    lookups: int = 0
    void_lookups: int = 0
    reason: str = ""


class _PermError(Exception):
    def __init__(self, reason: str, term: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.term = term


class _TempError(Exception):
    def __init__(self, reason: str, term: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.term = term


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: SpfResultCode
    domain: str
    term: str | None = None
    explanation: str | None = None
    reason: str = ""


parse_record_cached = functools.lru_cache(maxsize=8192)(parse_record)


def split_sender(sender: str, helo: str) -> tuple[str, str, str]:
    """(sender, local-part, domain) per RFC 7208 4.3: empty sender → postmaster@helo, empty local-part → postmaster."""
    if not sender:
        sender = f"postmaster@{helo}"
    local, at, domain = sender.rpartition("@")
    if not at:
        return f"postmaster@{sender}", "postmaster", sender
    if not local:
        local = "postmaster"
        sender = f"postmaster@{domain}"
    return sender, local, domain


def _is_checkable_domain(domain: str) -> bool:
    """RFC 7208 4.3: a malformed or single-label domain gives "none" without any lookup."""
    name = domain[:-1] if domain.endswith(".") else domain
    if "." not in name or "[" in name or "]" in name:
        return False
    return to_dns_name(name) is not None


def _ip_in(ip: IPAddress, address: str, prefix: int) -> bool:
    try:
        other = ipaddress.ip_address(address)
    except ValueError:
        return False
    if other.version != ip.version:
        return False
    shift = ip.max_prefixlen - prefix
    return (int(ip) >> shift) == (int(other) >> shift)


class _Checker:
    """State of one check_host() run: counters shared across includes and redirects."""

    def __init__(
        self,
        client: DnsClient,
        ip: IPAddress,
        ctx: MacroContext,
        limits: SpfLimits,
        default_explanation: str,
        prefetch: bool = True,
        assume: SpfAssumption | None = None,
    ) -> None:
        self.dns = client
        self.assume = assume
        self.prefetch_enabled = prefetch
        self.ip = ip
        self.address_type = "A" if ip.version == 4 else "AAAA"
        self.limits = limits
        self.default_explanation = default_explanation
        self.lookups = 0
        self.voids = 0
        self.prefetched = 0
        self._validated: list[str] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        ctx.validated_name = self._validated_name
        self.ctx = ctx

    async def run(self, domain: str) -> SpfResult:
        try:
            outcome = await self.check(domain, explain=True)
        except _PermError as exc:
            outcome = _Outcome("permerror", domain, exc.term, None, exc.reason)
        except _TempError as exc:
            outcome = _Outcome("temperror", domain, exc.term, None, exc.reason)
        finally:
            for task in self._tasks:
                task.cancel()
        return SpfResult(
            outcome.result,
            outcome.domain,
            outcome.explanation,
            outcome.term,
            self.lookups,
            self.voids,
            outcome.reason,
        )

    # -- limits -------------------------------------------------------------------------------

    def count_lookup(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > self.limits.lookups:
            raise _PermError(f"more than {self.limits.lookups} DNS-querying terms", term)

    def count_void(self, term: str) -> None:
        self.voids += 1
        if self.voids > self.limits.void_lookups:
            raise _PermError(f"more than {self.limits.void_lookups} void lookups", term)

    def check_answer(self, answer: DnsAnswer, term: str) -> None:
        if answer.is_temporary_error:
            raise _TempError(f"{answer.rdtype.name} lookup of {answer.name} failed: {answer.kind.value}", term)
        if answer.is_void:
            self.count_void(term)

    # -- records --------------------------------------------------------------------------------

    async def record(self, domain: str) -> SpfRecord | None:
        return self.select_record(domain, await self.dns.query(domain, "TXT"))

    def select_record(self, domain: str, answer: DnsAnswer) -> SpfRecord | None:
        if answer.is_temporary_error:
            raise _TempError(f"TXT lookup of {domain} failed: {answer.kind.value}")
        if answer.kind is not DnsKind.ANSWER:
            return None
        records = select_spf_records(answer.texts())
        if not records:
            return None
        if len(records) > 1:
            raise _PermError(f"{domain} publishes {len(records)} SPF records")
        parsed = parse_record_cached(records[0])
        if parsed.errors:
            first = parsed.errors[0]
            raise _PermError(
                f"syntax error in the SPF record of {domain} at position {first.position}: {first.message}",
                first.term or None,
            )
        return parsed

    async def check(self, domain: str, *, explain: bool) -> _Outcome:
        record = await self.record(domain)
        if record is None:
            return _Outcome("none", domain, None, None, f"{domain} has no SPF record")
        ctx = self.ctx.for_domain(domain)
        self.prefetch(record, ctx)
        for mechanism in record.mechanisms:
            if await self.matches(mechanism, ctx):
                result = QUALIFIER_RESULT[mechanism.qualifier]
                # A hypothetical sender gets no explanation: nobody would read it.
                wanted = result == "fail" and explain and self.assume is None
                explanation = await self.explain(record, ctx) if wanted else None
                return _Outcome(result, domain, mechanism.text, explanation)
        if record.redirect is not None:
            self.count_lookup(record.redirect.text)
            target = await expand(record.redirect.pieces, ctx)
            if self.assume is not None and self.assume.authorizes(target):
                return _Outcome("pass", target, record.redirect.text)
            outcome = await self.check(target, explain=explain)
            if outcome.result == "none":
                raise _PermError(f"redirect target {target} has no SPF record", record.redirect.text)
            return outcome
        return _Outcome("neutral", domain, None, None, "no mechanism matched")

    # -- mechanisms ------------------------------------------------------------------------------

    async def matches(self, mechanism: Mechanism, ctx: MacroContext) -> bool:
        matched = await self.evaluate(mechanism, ctx)
        if self.assume is not None and mechanism.name not in ("all", "include"):
            # The assumed sender is authorized by the assumed domains only; the DNS work above
            # still ran, so limits, void lookups and temperrors count exactly as for a real sender.
            return False
        return matched

    async def evaluate(self, mechanism: Mechanism, ctx: MacroContext) -> bool:
        name = mechanism.name
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            assert mechanism.network is not None
            return self.ip in mechanism.network
        self.count_lookup(mechanism.text)
        target = ctx.domain if mechanism.pieces is None else await expand(mechanism.pieces, ctx)
        if name == "include":
            if self.assume is not None and self.assume.authorizes(target):
                return True
            outcome = await self.check(target, explain=False)
            if outcome.result == "none":
                raise _PermError(f"included domain {target} has no SPF record", mechanism.text)
            return outcome.result == "pass"
        if name == "a":
            answer = await self.dns.query(target, self.address_type)
            self.check_answer(answer, mechanism.text)
            return self.address_match(answer.addresses(), mechanism)
        if name == "mx":
            return await self.mx_match(target, mechanism)
        if name == "ptr":
            wanted = target.lower().rstrip(".")
            return any(n == wanted or n.endswith("." + wanted) for n in await self.validated_names())
        if name == "exists":
            answer = await self.dns.query(target, "A")
            self.check_answer(answer, mechanism.text)
            return answer.kind is DnsKind.ANSWER
        raise AssertionError(name)

    def address_match(self, addresses: list[str], mechanism: Mechanism) -> bool:
        prefix = mechanism.cidr4 if self.ip.version == 4 else mechanism.cidr6
        if prefix is None:
            prefix = self.ip.max_prefixlen
        return any(_ip_in(self.ip, address, prefix) for address in addresses)

    async def mx_match(self, target: str, mechanism: Mechanism) -> bool:
        answer = await self.dns.query(target, "MX")
        self.check_answer(answer, mechanism.text)
        exchanges = answer.mx_hosts()
        if len(exchanges) > self.limits.mx_names:
            raise _PermError(f"{target} has more than {self.limits.mx_names} MX records", mechanism.text)
        hosts = [host for _, host in sorted(exchanges, key=lambda mx: mx[0]) if host]
        answers = await asyncio.gather(*(self.dns.query(host, self.address_type) for host in hosts))
        for host_answer in answers:
            if host_answer.is_temporary_error:
                raise _TempError(f"address lookup of MX host {host_answer.name} failed", mechanism.text)
            if self.address_match(host_answer.addresses(), mechanism):
                return True
        return False

    async def validated_names(self) -> list[str]:
        """RFC 7208 5.5: PTR names (at most 10) whose forward lookup contains the IP; errors skip a name."""
        if self._validated is None:
            answer = await self.dns.query(reverse_pointer_name(self.ip), "PTR")
            names = answer.ptr_names()[: self.limits.ptr_names] if answer.kind is DnsKind.ANSWER else []
            answers = await asyncio.gather(*(self.dns.query(n, self.address_type) for n in names))
            self._validated = [
                name.lower()
                for name, forward in zip(names, answers, strict=True)
                if forward.kind is DnsKind.ANSWER and self.address_match(forward.addresses(), _FULL)
            ]
        return self._validated

    async def _validated_name(self, domain: str) -> str:
        names = await self.validated_names()
        wanted = domain.lower().rstrip(".")
        for name in names:
            if name == wanted:
                return name
        for name in names:
            if name.endswith("." + wanted):
                return name
        return names[0] if names else "unknown"

    # -- explanation ------------------------------------------------------------------------------

    async def explain(self, record: SpfRecord, ctx: MacroContext) -> str:
        if record.explanation is not None:
            text = await self._exp_text(record.explanation, ctx)
            if text is not None:
                return text
        try:
            return await expand(parse_macro_string(self.default_explanation, explanation=True), ctx, domain=False)
        except MacroSyntaxError:
            return self.default_explanation

    async def _exp_text(self, modifier: Modifier, ctx: MacroContext) -> str | None:
        """RFC 7208 6.2: any problem with the explanation falls back to the default one."""
        target = await expand(modifier.pieces, ctx)
        answer = await self.dns.query(target, "TXT")
        texts = answer.texts() if answer.kind is DnsKind.ANSWER else []
        if len(texts) != 1:
            return None
        try:
            pieces = parse_macro_string(texts[0].decode("ascii"), explanation=True)
        except (UnicodeDecodeError, MacroSyntaxError):
            return None
        return await expand(pieces, ctx, domain=False)

    # -- prefetch ---------------------------------------------------------------------------------

    def prefetch(self, record: SpfRecord, ctx: MacroContext) -> None:
        """Start the lookups of the record's DNS terms concurrently, within the lookup budget.

        Only warms the shared cache: evaluation still walks the terms in order, so results and
        counters do not change. The budget keeps the speculative queries under the RFC limit.
        """
        if not self.prefetch_enabled:
            return
        terms: list[Mechanism | Modifier] = [m for m in record.mechanisms if m.queries_dns]
        if record.redirect is not None and not record.has_all:
            terms.append(record.redirect)
        for term in terms:
            if self.prefetched >= self.limits.lookups:
                return
            self.prefetched += 1
            pieces = term.pieces
            if pieces is not None and needs_dns(pieces):
                continue
            if isinstance(term, Mechanism) and term.name == "ptr":
                continue
            if not self._prefetch_from_cache(term, ctx):
                self._spawn(self._warm(term, ctx))

    def _prefetch_from_cache(self, term: Mechanism | Modifier, ctx: MacroContext) -> bool:
        """Handle a term whose data is already cached without starting a task; False if not cached."""
        if term.pieces is None:
            target = ctx.domain
        elif all(isinstance(piece, str) for piece in term.pieces):
            target = "".join(str(piece) for piece in term.pieces)
        else:
            return False
        name = term.name
        if name in ("include", "redirect"):
            answer = self.dns.peek(target, "TXT")
            if answer is None:
                return False
            try:
                record = self.select_record(target, answer)
            except (_PermError, _TempError):
                return True
            if record is not None:
                self.prefetch(record, ctx.for_domain(target))
            return True
        if name == "mx":
            answer = self.dns.peek(target, "MX")
            return answer is not None and all(
                self.dns.peek(host, self.address_type) is not None for _, host in answer.mx_hosts() if host
            )
        return self.dns.peek(target, "A" if name == "exists" else self.address_type) is not None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _warm(self, term: Mechanism | Modifier, ctx: MacroContext) -> None:
        target = ctx.domain if term.pieces is None else await expand(term.pieces, ctx)
        name = term.name
        if name in ("include", "redirect"):
            try:
                record = await self.record(target)
            except (_PermError, _TempError):
                return
            if record is not None:
                self.prefetch(record, ctx.for_domain(target))
        elif name == "a":
            await self.dns.query(target, self.address_type)
        elif name == "exists":
            await self.dns.query(target, "A")
        elif name == "mx":
            answer = await self.dns.query(target, "MX")
            hosts = [host for _, host in answer.mx_hosts()[: self.limits.mx_names] if host]
            await asyncio.gather(*(self.dns.query(host, self.address_type) for host in hosts))


_FULL = Mechanism("+", "a", "a", 0)


def _parse_ip(ip: str | IPAddress) -> IPAddress:
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


async def check_host(
    ip: str | IPAddress,
    domain: str,
    sender: str,
    helo: str = "",
    *,
    dns: DnsClient,
    receiver: str = "unknown",
    default_explanation: str = DEFAULT_EXPLANATION,
    limits: SpfLimits = DEFAULT_LIMITS,
    timestamp: int | None = None,
    prefetch: bool = True,
    assume: SpfAssumption | None = None,
) -> SpfResult:
    """Evaluate SPF for ``ip`` against ``domain`` (RFC 7208 section 4) and return the result.

    ``sender`` is the MAIL FROM (empty: ``postmaster@helo``), ``helo`` the HELO name. IPv4-mapped
    IPv6 addresses are checked as IPv4. DNS failures become temperror, never exceptions; bound
    the whole call with ``asyncio.timeout`` — cancellation stops every lookup it started.
    ``prefetch`` starts the lookups of later terms concurrently (within the lookup limit): fewer
    round trips, but queries for terms after the deciding one are sent as well.
    ``assume`` asks about a hypothetical sender instead of ``ip`` (see :class:`SpfAssumption`);
    ``ip`` then only feeds macros and the address type of lookups.
    """
    address = _parse_ip(ip)
    full_sender, local, sender_domain = split_sender(sender, helo)
    if not _is_checkable_domain(domain):
        return SpfResult("none", domain, reason=f"{domain!r} is not a valid domain name")
    ctx = MacroContext(address, full_sender, local, sender_domain, domain, helo, receiver, timestamp)
    return await _Checker(dns, address, ctx, limits, default_explanation, prefetch, assume).run(domain)


async def check_sender(
    ip: str | IPAddress,
    sender: str,
    helo: str = "",
    *,
    dns: DnsClient,
    **options: Any,
) -> SpfResult:
    """check_host() for a MAIL FROM identity: the domain is the sender's (or the HELO name)."""
    _, _, domain = split_sender(sender, helo)
    return await check_host(ip, domain, sender, helo, dns=dns, **options)
