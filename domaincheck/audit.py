"""Domain audit for the product: SPF include tree, limits, MX, DMARC, findings and the verdict (problems).

The verdict answers one question: can the platform send mail for this domain? ``problems`` holds
at most the four product codes of :data:`domaincheck.messages.PROBLEM_CODES`; ``findings`` holds the
detailed diagnosis. Both store codes and parameters, so callers render them in German or English.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from domaincheck.dns import DnsAnswer, DnsClient, DnsKind
from domaincheck.messages import message
from domaincheck.names import canonical_domain
from domaincheck.spf_eval import QUALIFIER_RESULT, check_host, parse_record_cached
from domaincheck.spf_parse import DNS_MECHANISMS, Mechanism, Modifier, SpfRecord, select_spf_records

__all__ = [
    "DEFAULT_PLATFORM_INCLUDE",
    "DomainReport",
    "Finding",
    "Problem",
    "Severity",
    "SpfNode",
    "audit_domain",
]

DEFAULT_PLATFORM_INCLUDE = "_spf.aranes.de"
LOOKUP_LIMIT = 10
VOID_LOOKUP_LIMIT = 2
MAX_TREE_NODES = 60
MAX_TREE_DEPTH = 12
SINGLE_STRING_LIMIT = 255
RECOMMENDED_LENGTH = 450

Severity = Literal["INFO", "WARNING", "ERROR"]
NodeError = Literal["no-record", "multiple-records", "syntax-error", "loop", "temperror", "macro", "too-deep"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosis: a stable code, its severity and the parameters of its message."""

    code: str
    severity: Severity
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self, lang: str = "de") -> str:
        """The message in ``lang`` ("de" or "en")."""
        return message(self.code, lang, **self.params)

    def to_dict(self, lang: str = "de") -> dict[str, Any]:
        """JSON-friendly form: code, severity, message."""
        return {"code": self.code, "severity": self.severity, "message": self.message(lang)}


@dataclass(frozen=True, slots=True)
class Problem:
    """A product verdict: one of DOMAIN_UNREACHABLE, NO_MX_RECORDS, SPF_NEEDS_UPDATE, NO_SPF_RECORD."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self, lang: str = "de") -> str:
        """The message in ``lang`` ("de" or "en")."""
        return message(self.code, lang, **self.params)

    def to_dict(self, lang: str = "de") -> dict[str, Any]:
        """JSON-friendly form: code, message."""
        return {"code": self.code, "message": self.message(lang)}


@dataclass(frozen=True, slots=True)
class SpfNode:
    """One record in the include/redirect tree and the mechanism of the parent that led to it."""

    domain: str
    mechanism: str | None
    record: str | None
    lookups: int
    children: tuple[SpfNode, ...] = ()
    error: NodeError | None = None
    chain: tuple[str, ...] = field(default=(), compare=False)
    parsed: SpfRecord | None = field(default=None, compare=False, repr=False)
    via: int | None = field(default=None, compare=False, repr=False)
    void: bool = field(default=False, compare=False, repr=False)
    void_terms: frozenset[int] = field(default=frozenset(), compare=False, repr=False)
    record_count: int = field(default=0, compare=False, repr=False)

    def walk(self) -> Iterable[tuple[SpfNode | None, SpfNode]]:
        """(parent, node) pairs, depth first, this node first."""
        stack: list[tuple[SpfNode | None, SpfNode]] = [(None, self)]
        while stack:
            parent, node = stack.pop()
            yield parent, node
            stack.extend((node, child) for child in reversed(node.children))

    @property
    def total_lookups(self) -> int:
        """DNS-querying terms in this node and below (the worst case of an evaluation)."""
        return sum(node.lookups for _, node in self.walk())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form with camelCase keys."""
        return {
            "domain": self.domain,
            "record": self.record,
            "mechanism": self.mechanism,
            "lookups": self.lookups,
            "children": [child.to_dict() for child in self.children],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class DomainReport:
    """The audit of one domain; ``ok`` when there is no problem."""

    domain: str
    record: str | None
    tree: SpfNode | None
    lookup_count: int
    void_lookup_count: int
    mx_hosts: tuple[str, ...]
    dmarc_record: str | None
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...]
    suggested_record: str | None
    platform_authorized: bool
    lookup_limit: int = LOOKUP_LIMIT

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def problem_codes(self) -> list[str]:
        """The codes of the problems, in order."""
        return [problem.code for problem in self.problems]

    @property
    def finding_codes(self) -> list[str]:
        """The codes of the findings, in order."""
        return [finding.code for finding in self.findings]

    def to_dict(self, lang: str = "de") -> dict[str, Any]:
        """JSON-friendly form with the camelCase keys of the GraphQL type; messages in ``lang``."""
        return {
            "domain": self.domain,
            "ok": self.ok,
            "record": self.record,
            "tree": self.tree.to_dict() if self.tree is not None else None,
            "lookupCount": self.lookup_count,
            "lookupLimit": self.lookup_limit,
            "voidLookupCount": self.void_lookup_count,
            "mxHosts": list(self.mx_hosts),
            "dmarcRecord": self.dmarc_record,
            "findings": [finding.to_dict(lang) for finding in self.findings],
            "problems": [problem.to_dict(lang) for problem in self.problems],
            "suggestedRecord": self.suggested_record,
            "platformAuthorized": self.platform_authorized,
        }


def _norm(domain: str) -> str:
    return domain.lower().rstrip(".")


def _literal_target(term: Mechanism | Modifier, current: str) -> str | None:
    """The term's target domain when it has no macros; None otherwise."""
    if term.pieces is None:
        return current
    if all(isinstance(piece, str) for piece in term.pieces):
        return "".join(str(piece) for piece in term.pieces)
    return None


class _TreeWalker:
    """Fetches the include/redirect tree concurrently, bounded in depth and size."""

    def __init__(self, client: DnsClient) -> None:
        self.dns = client
        self.nodes = 0

    async def walk(self, domain: str, mechanism: str | None, via: int | None, chain: tuple[str, ...]) -> SpfNode:
        self.nodes += 1
        answer = await self.dns.query(domain, "TXT")
        if answer.is_temporary_error:
            return SpfNode(domain, mechanism, None, 0, error="temperror", via=via)
        records = select_spf_records(answer.texts()) if answer.kind is DnsKind.ANSWER else []
        if not records:
            return SpfNode(domain, mechanism, None, 0, error="no-record", via=via, void=answer.is_void)
        if len(records) > 1:
            return SpfNode(domain, mechanism, None, 0, error="multiple-records", via=via, record_count=len(records))
        return await self.record_node(domain, mechanism, via, chain, records[0])

    async def record_node(
        self, domain: str, mechanism: str | None, via: int | None, chain: tuple[str, ...], text: str
    ) -> SpfNode:
        parsed = parse_record_cached(text)
        targets: list[Mechanism | Modifier] = [m for m in parsed.mechanisms if m.name == "include"]
        if parsed.redirect is not None and not parsed.has_all:
            targets.append(parsed.redirect)
        children = [self._child(term, domain, chain) for term in targets]
        void_checks = [self._is_void(m, domain) for m in parsed.mechanisms if m.name in ("a", "mx")]
        nodes, voids = await asyncio.gather(asyncio.gather(*children), asyncio.gather(*void_checks))
        lookups = sum(1 for m in parsed.mechanisms if m.name in DNS_MECHANISMS)
        lookups += 1 if parsed.redirect is not None and not parsed.has_all else 0
        return SpfNode(
            domain,
            mechanism,
            text,
            lookups,
            tuple(nodes),
            "syntax-error" if parsed.errors else None,
            chain,
            parsed,
            via,
            void_terms=frozenset(position for position in voids if position is not None),
            record_count=1,
        )

    async def _child(self, term: Mechanism | Modifier, domain: str, chain: tuple[str, ...]) -> SpfNode:
        target = _literal_target(term, domain)
        if target is None:
            spec = term.domain_spec if isinstance(term, Mechanism) else term.value
            return SpfNode(spec or domain, term.text, None, 0, error="macro", via=term.position)
        if _norm(target) in chain:
            return SpfNode(target, term.text, None, 0, error="loop", chain=(*chain, _norm(target)), via=term.position)
        if len(chain) >= MAX_TREE_DEPTH or self.nodes >= MAX_TREE_NODES:
            return SpfNode(target, term.text, None, 0, error="too-deep", via=term.position)
        return await self.walk(target, term.text, term.position, (*chain, _norm(target)))

    async def _is_void(self, mechanism: Mechanism, domain: str) -> int | None:
        target = _literal_target(mechanism, domain)
        if target is None:
            return None
        answer = await self.dns.query(target, "A" if mechanism.name == "a" else "MX")
        return mechanism.position if answer.is_void else None


@dataclass(slots=True)
class _Simulation:
    platform: str
    lookups: int = 0
    voids: int = 0


def _simulate(node: SpfNode, sim: _Simulation) -> str:
    """Evaluate the tree in check_host() order for a sender that only the platform include matches."""
    if node.error == "temperror":
        return "temperror"
    if node.error == "no-record":
        return "none"
    if node.error == "macro":
        return "neutral"
    parsed = node.parsed
    if node.error is not None or parsed is None:
        return "permerror"
    children = {child.via: child for child in node.children}
    for mechanism in parsed.mechanisms:
        if mechanism.name == "all":
            return QUALIFIER_RESULT[mechanism.qualifier]
        if mechanism.name in DNS_MECHANISMS:
            sim.lookups += 1
            if sim.lookups > LOOKUP_LIMIT:
                return "permerror"
        if mechanism.name == "include":
            child = children[mechanism.position]
            inner = "pass" if _norm(child.domain) == sim.platform else _simulate(child, sim)
            if inner == "pass":
                return QUALIFIER_RESULT[mechanism.qualifier]
            if inner in ("permerror", "temperror"):
                return inner
            if inner == "none":
                return "permerror"
        elif mechanism.position in node.void_terms:
            sim.voids += 1
            if sim.voids > VOID_LOOKUP_LIMIT:
                return "permerror"
    if parsed.redirect is not None:
        sim.lookups += 1
        if sim.lookups > LOOKUP_LIMIT:
            return "permerror"
        child = children[parsed.redirect.position]
        if _norm(child.domain) == sim.platform:
            return "pass"
        inner = _simulate(child, sim)
        return "permerror" if inner == "none" else inner
    return "neutral"


def _suggest(records: Sequence[str], platform: str) -> str:
    """The record to publish: existing valid terms kept, ``include:<platform>`` before ``all``/``redirect``.

    Several records are merged (terms in order, duplicates dropped, the first ``all``, ``redirect``
    and ``exp`` kept); terms with syntax errors are dropped; an existing platform include that was
    not reached is moved to the new place.
    """
    include = f"include:{platform}"
    if not records:
        return f"v=spf1 mx {include} ~all"
    terms: list[str] = []
    seen: set[str] = set()
    all_term: str | None = None
    redirect: str | None = None
    explanation: str | None = None
    single = len(records) == 1
    for text in records:
        for term in parse_record_cached(text).terms:
            if isinstance(term, Mechanism) and term.name == "include" and _norm(term.domain_spec or "") == platform:
                continue
            if not single:
                if isinstance(term, Mechanism) and term.name == "all":
                    all_term = all_term or term.text
                    continue
                if isinstance(term, Modifier) and term.name == "redirect":
                    redirect = redirect or term.text
                    continue
                if isinstance(term, Modifier) and term.name == "exp":
                    explanation = explanation or term.text
                    continue
            if term.text.lower() in seen:
                continue
            seen.add(term.text.lower())
            terms.append(term.text)
    if not single:
        terms.extend(t for t in (all_term, None if all_term else redirect, explanation) if t)
    position = len(terms)
    for index, term_text in enumerate(terms):
        lowered = term_text.lower().lstrip("+-~?")
        if lowered == "all" or lowered.startswith("redirect="):
            position = index
            break
    terms.insert(position, include)
    return "v=spf1 " + " ".join(terms)


def _tree_findings(tree: SpfNode) -> list[Finding]:
    findings: list[Finding] = []
    for parent, node in tree.walk():
        domain = node.domain
        if node.error == "syntax-error" and node.parsed is not None:
            findings.extend(
                Finding(
                    "SPF_SYNTAX_ERROR",
                    "ERROR",
                    {"domain": domain, "position": issue.position, "term": issue.term or "?", "detail": issue.message},
                )
                for issue in node.parsed.errors
            )
        elif node.error == "multiple-records":
            findings.append(Finding("SPF_MULTIPLE_RECORDS", "ERROR", {"domain": domain, "count": node.record_count}))
        elif node.error == "no-record" and parent is not None:
            findings.append(
                Finding(
                    "SPF_TARGET_WITHOUT_SPF",
                    "ERROR",
                    {"domain": parent.domain, "mechanism": node.mechanism, "target": domain},
                )
            )
        elif node.error == "loop":
            findings.append(Finding("SPF_LOOP", "ERROR", {"chain": " → ".join(node.chain)}))
        elif node.error == "temperror":
            findings.append(Finding("SPF_TEMPERROR", "WARNING", {"detail": f"TXT {domain}"}))
        elif node.error == "macro" and parent is not None:
            findings.append(
                Finding("SPF_MACRO_NOT_EVALUATED", "INFO", {"domain": parent.domain, "mechanism": node.mechanism})
            )
        parsed = node.parsed
        if parsed is None:
            continue
        mechanisms = parsed.mechanisms
        if any(m.name == "ptr" for m in mechanisms):
            findings.append(Finding("SPF_PTR_USED", "WARNING", {"domain": domain}))
        all_index = next((i for i, m in enumerate(mechanisms) if m.name == "all"), None)
        if all_index is not None:
            if mechanisms[all_index].qualifier == "+":
                findings.append(Finding("SPF_PLUS_ALL", "ERROR", {"domain": domain}))
            after = [m.text for m in mechanisms[all_index + 1 :]]
            if after:
                findings.append(Finding("SPF_TERMS_AFTER_ALL", "WARNING", {"domain": domain, "terms": " ".join(after)}))
            if parsed.redirect is not None:
                findings.append(
                    Finding("SPF_REDIRECT_IGNORED", "WARNING", {"domain": domain, "redirect": parsed.redirect.text})
                )
    return findings


def _root_findings(record: str, parsed: SpfRecord) -> list[Finding]:
    findings: list[Finding] = []
    all_mechanism = next((m for m in parsed.mechanisms if m.name == "all"), None)
    if all_mechanism is None and parsed.redirect is None:
        findings.append(Finding("SPF_NO_ALL", "WARNING"))
    elif all_mechanism is not None and all_mechanism.qualifier == "?":
        findings.append(Finding("SPF_NEUTRAL_ALL", "WARNING"))
    findings.extend(_length_findings(record))
    return findings


def _length_findings(record: str) -> list[Finding]:
    findings: list[Finding] = []
    if len(record) > SINGLE_STRING_LIMIT:
        findings.append(Finding("SPF_RECORD_NEEDS_SPLIT", "INFO", {"length": len(record)}))
    if len(record) > RECOMMENDED_LENGTH:
        findings.append(Finding("SPF_RECORD_TOO_LONG", "WARNING", {"length": len(record)}))
    return findings


def _temperror_finding(answer: DnsAnswer) -> Finding:
    return Finding(
        "DNS_TEMPERROR", "WARNING", {"rdtype": answer.rdtype.name, "name": answer.name, "kind": answer.kind.value}
    )


def _unreachable(domain: str, findings: list[Finding], record: str | None = None) -> DomainReport:
    return DomainReport(
        domain,
        record,
        None,
        0,
        0,
        (),
        None,
        tuple(findings),
        (Problem("DOMAIN_UNREACHABLE", {"domain": domain}),),
        None,
        False,
    )


async def _mx_addresses(client: DnsClient, host: str) -> tuple[str, list[DnsAnswer]]:
    """A, and AAAA only when there is no A record (one query saved for most hosts)."""
    ipv4 = await client.query(host, "A")
    if ipv4.kind is DnsKind.ANSWER:
        return host, [ipv4]
    return host, [ipv4, await client.query(host, "AAAA")]


async def audit_domain(
    domain: str,
    *,
    dns: DnsClient,
    platform_include: str = DEFAULT_PLATFORM_INCLUDE,
    sender_ips: Sequence[str] = (),
    own_smtp_server: bool = False,
    timeout: float = 5.0,
) -> DomainReport:
    """Audit a sending domain: SPF (tree, limits, platform authorization), MX, DMARC; bounded by ``timeout``.

    The platform is authorized when an evaluation in check_host() order reaches
    ``include:<platform_include>`` (through includes/redirects, within the limits) with a ``+``
    qualifier, or — when ``sender_ips`` is given — when check_host() passes for every IP.
    A domain that does not resolve (NXDOMAIN, SERVFAIL, timeout) gets DOMAIN_UNREACHABLE only.
    With ``own_smtp_server`` the SPF problems are not reported (the platform does not send).
    A name that is no valid multi-label domain (``a..b``, a label over 63 or a name over 253 octets)
    raises ``InvalidDomainName`` before any query; U-labels are checked as their A-labels.
    """
    domain = canonical_domain(domain, multi_label=True)
    platform = _norm(platform_include)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            txt, mx, dmarc = await dns.query_many([(domain, "TXT"), (domain, "MX"), (f"_dmarc.{domain}", "TXT")])
    except TimeoutError:
        return _unreachable(domain, [Finding("AUDIT_TIMEOUT", "ERROR", {"seconds": timeout})])
    for answer in (txt, mx):
        if answer.kind is DnsKind.NXDOMAIN:
            return _unreachable(domain, [Finding("DOMAIN_NXDOMAIN", "ERROR", {"domain": domain})])
        if answer.is_temporary_error:
            return _unreachable(domain, [_temperror_finding(answer)])

    findings: list[Finding] = []
    problems: list[Problem] = []
    records = select_spf_records(txt.texts()) if txt.kind is DnsKind.ANSWER else []
    record = records[0] if len(records) == 1 else None

    exchanges = sorted(mx.mx_hosts(), key=lambda pair: pair[0])
    null_mx = bool(exchanges) and all(host == "" for _, host in exchanges)
    mx_hosts = tuple(host for _, host in exchanges if host)
    if null_mx:
        findings.append(Finding("MX_NULL", "WARNING", {"domain": domain}))
    elif not mx_hosts:
        findings.append(Finding("MX_MISSING", "ERROR", {"domain": domain}))

    dmarc_records = [t.decode("latin-1") for t in dmarc.texts() if t[:8].lower() == b"v=dmarc1"]
    dmarc_record = dmarc_records[0] if dmarc_records else None
    if dmarc.is_temporary_error:
        findings.append(_temperror_finding(dmarc))
    elif dmarc_record is not None:
        findings.append(Finding("DMARC_PRESENT", "INFO", {"record": dmarc_record}))
    else:
        findings.append(Finding("DMARC_MISSING", "WARNING", {"domain": domain}))

    walker = _TreeWalker(dns)
    tree_job: Awaitable[SpfNode | None]
    if record is not None:
        tree_job = walker.record_node(domain, None, None, (_norm(domain),), record)
    elif len(records) > 1:
        tree_job = _ready(SpfNode(domain, None, None, 0, error="multiple-records", record_count=len(records)))
    else:
        tree_job = _ready(None)
    ip_checks = [check_host(ip, domain, f"postmaster@{domain}", domain, dns=dns) for ip in sender_ips]
    try:
        async with asyncio.timeout_at(deadline):
            tree, platform_tree, host_answers, ip_results = await asyncio.gather(
                tree_job,
                _TreeWalker(dns).walk(platform, None, None, (platform,)),
                asyncio.gather(*(_mx_addresses(dns, host) for host in mx_hosts)),
                asyncio.gather(*ip_checks),
            )
    except TimeoutError:
        findings.append(Finding("AUDIT_TIMEOUT", "ERROR", {"seconds": timeout}))
        return _unreachable(domain, findings, record)

    for host, answers in host_answers:
        if any(a.is_temporary_error for a in answers):
            findings.extend(_temperror_finding(a) for a in answers if a.is_temporary_error)
        elif not any(a.kind is DnsKind.ANSWER for a in answers):
            findings.append(Finding("MX_HOST_WITHOUT_ADDRESS", "WARNING", {"host": host}))

    lookup_count = tree.total_lookups if tree is not None else 0
    void_count = 0
    if tree is not None:
        findings.extend(_tree_findings(tree))
        void_count = sum(len(node.void_terms) + (1 if node.void else 0) for _, node in tree.walk())
        if record is not None and tree.parsed is not None:
            findings.extend(_root_findings(record, tree.parsed))
        if lookup_count > LOOKUP_LIMIT:
            findings.append(Finding("SPF_TOO_MANY_LOOKUPS", "ERROR", {"count": lookup_count, "limit": LOOKUP_LIMIT}))
        if void_count > VOID_LOOKUP_LIMIT:
            findings.append(
                Finding("SPF_TOO_MANY_VOID_LOOKUPS", "ERROR", {"count": void_count, "limit": VOID_LOOKUP_LIMIT})
            )

    verdict = _simulate(tree, _Simulation(platform)) if tree is not None else "none"
    if sender_ips:
        codes = {result.result for result in ip_results}
        verdict = "temperror" if "temperror" in codes else ("pass" if codes == {"pass"} else "fail")
    authorized = verdict == "pass"
    if verdict == "temperror":
        findings.append(Finding("SPF_TEMPERROR", "ERROR", {"detail": "temperror"}))
        return _unreachable(domain, findings, record)

    if null_mx or not mx_hosts:
        problems.append(Problem("NO_MX_RECORDS", {"domain": domain}))

    suggested: str | None = None
    if own_smtp_server:
        findings.append(Finding("PLATFORM_INCLUDE_NOT_NEEDED", "INFO", {"include": platform}))
    elif authorized:
        findings.append(Finding("PLATFORM_AUTHORIZED", "INFO", {"include": platform}))
    else:
        if records:
            findings.append(Finding("PLATFORM_NOT_AUTHORIZED", "ERROR", {"include": platform}))
            problems.append(Problem("SPF_NEEDS_UPDATE", {"domain": domain}))
        else:
            problems.append(Problem("NO_SPF_RECORD", {"domain": domain}))
        suggested = _suggest(records, platform)
        try:
            async with asyncio.timeout_at(deadline):
                suggestion_tree = await _TreeWalker(dns).record_node(domain, None, None, (_norm(domain),), suggested)
            suggestion_lookups = suggestion_tree.total_lookups
        except TimeoutError:
            suggestion_lookups = lookup_count + 1 + platform_tree.total_lookups
        if suggestion_lookups > LOOKUP_LIMIT:
            findings.append(
                Finding(
                    "SUGGESTION_EXCEEDS_LOOKUP_LIMIT", "WARNING", {"count": suggestion_lookups, "limit": LOOKUP_LIMIT}
                )
            )
        findings.extend(_length_findings(suggested) if len(suggested) > SINGLE_STRING_LIMIT else [])

    return DomainReport(
        domain,
        record,
        tree,
        lookup_count,
        void_count,
        mx_hosts,
        dmarc_record,
        tuple(findings),
        tuple(problems),
        suggested,
        authorized,
    )


async def _ready(value: SpfNode | None) -> SpfNode | None:
    return value
