"""Domain audit for the product: SPF include tree, limits, MX, DMARC, findings and the verdict (problems).

The verdict answers one question: can the platform send mail for this domain? check_host() alone
decides it; the tree walk and the finding functions explain it. ``problems`` holds codes of
:data:`domaincheck.messages.PROBLEM_CODES` (DNS_TEMPORARY_FAILURE when the resolver did not work,
which is no verdict); ``findings`` holds the detailed diagnosis. Both store codes and parameters,
so callers render them in German or English.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from domaincheck.dns import DnsAnswer, DnsClient, DnsKind
from domaincheck.messages import message
from domaincheck.names import canonical_domain
from domaincheck.spf_eval import SpfAssumption, SpfResult, SpfResultCode, check_host, parse_record_cached
from domaincheck.spf_parse import DNS_MECHANISMS, Mechanism, Modifier, SpfRecord, select_spf_records

__all__ = [
    "DomainReport",
    "Finding",
    "Problem",
    "Severity",
    "SpfNode",
    "audit_domain",
]

LOOKUP_LIMIT = 10
VOID_LOOKUP_LIMIT = 2
MAX_TREE_NODES = 60
MAX_TREE_DEPTH = 12
SINGLE_STRING_LIMIT = 255
RECOMMENDED_LENGTH = 450
# The address of the hypothetical sender the platform question is asked for: under the assumption
# it matches no ip4/a/mx term anyway; it only feeds macros and makes lookups ask for A records.
_ASSUMED_SENDER_IP = "192.0.2.0"

Severity = Literal["INFO", "WARNING", "ERROR"]
NodeError = Literal["no-record", "multiple-records", "syntax-error", "loop", "temperror", "macro", "too-deep"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosis: a stable code, its severity and the parameters of its message."""

    code: str
    severity: Severity
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """The English source text; the user's language comes from the project's catalogue (texts/)."""
        return message(self.code, **self.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: code, severity, params and the English message."""
        return {"code": self.code, "severity": self.severity, "params": dict(self.params), "message": self.message()}


@dataclass(frozen=True, slots=True)
class Problem:
    """A verdict (DOMAIN_UNREACHABLE, NO_MX_RECORDS, SPF_NEEDS_UPDATE, NO_SPF_RECORD) or DNS_TEMPORARY_FAILURE."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """The English source text; the user's language comes from the project's catalogue (texts/)."""
        return message(self.code, **self.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: code, params and the English message."""
        return {"code": self.code, "params": dict(self.params), "message": self.message()}


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form with the camelCase keys of the GraphQL type; codes, params, English messages."""
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
            "findings": [finding.to_dict() for finding in self.findings],
            "problems": [problem.to_dict() for problem in self.problems],
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
        if children and void_checks:
            nodes, voids = await asyncio.gather(asyncio.gather(*children), asyncio.gather(*void_checks))
        else:
            # Most records have only one kind (or none): skip the gathers, a large part of the audit's CPU.
            nodes, voids = await _all(children), await _all(void_checks)
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


async def _all(jobs: Sequence[Awaitable[Any]]) -> list[Any]:
    """``asyncio.gather`` without its tasks and futures for zero or one job."""
    if not jobs:
        return []
    if len(jobs) == 1:
        return [await jobs[0]]
    return list(await asyncio.gather(*jobs))


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


# -- the families of findings, each from the lookups it needs ----------------------------------------


@dataclass(frozen=True, slots=True)
class _MxFindings:
    hosts: tuple[str, ...]
    missing: bool
    findings: list[Finding]


def _mx_findings(domain: str, mx: DnsAnswer) -> _MxFindings:
    """MX presence: a null MX (``0 .``) or no MX at all means the domain receives no mail."""
    exchanges = sorted(mx.mx_hosts(), key=lambda pair: pair[0])
    null_mx = bool(exchanges) and all(host == "" for _, host in exchanges)
    hosts = tuple(host for _, host in exchanges if host)
    findings: list[Finding] = []
    if null_mx:
        findings.append(Finding("MX_NULL", "WARNING", {"domain": domain}))
    elif not hosts:
        findings.append(Finding("MX_MISSING", "ERROR", {"domain": domain}))
    return _MxFindings(hosts, null_mx or not hosts, findings)


def _mx_host_findings(host_answers: Sequence[tuple[str, list[DnsAnswer]]]) -> list[Finding]:
    """MX hosts without any address, and address lookups that failed temporarily."""
    findings: list[Finding] = []
    for host, answers in host_answers:
        if any(a.is_temporary_error for a in answers):
            findings.extend(_temperror_finding(a) for a in answers if a.is_temporary_error)
        elif not any(a.kind is DnsKind.ANSWER for a in answers):
            findings.append(Finding("MX_HOST_WITHOUT_ADDRESS", "WARNING", {"host": host}))
    return findings


def _dmarc_findings(domain: str, dmarc: DnsAnswer) -> tuple[str | None, list[Finding]]:
    """The ``_dmarc`` record (the first ``v=DMARC1`` TXT) and whether it is there."""
    records = [t.decode("latin-1") for t in dmarc.texts() if t[:8].lower() == b"v=dmarc1"]
    record = records[0] if records else None
    if dmarc.is_temporary_error:
        return record, [_temperror_finding(dmarc)]
    if record is not None:
        return record, [Finding("DMARC_PRESENT", "INFO", {"record": record})]
    return record, [Finding("DMARC_MISSING", "WARNING", {"domain": domain})]


def _record_findings(tree: SpfNode, record: str | None) -> list[Finding]:
    """SPF record presence and syntax over the whole tree, then the root record's own advice."""
    findings = _tree_findings(tree)
    if record is not None and tree.parsed is not None:
        findings.extend(_root_findings(record, tree.parsed))
    return findings


def _void_count(tree: SpfNode) -> int:
    return sum(len(node.void_terms) + (1 if node.void else 0) for _, node in tree.walk())


def _limit_findings(lookup_count: int, void_count: int) -> list[Finding]:
    """The RFC 7208 limits over the worst case of the tree (every term evaluated)."""
    findings: list[Finding] = []
    if lookup_count > LOOKUP_LIMIT:
        findings.append(Finding("SPF_TOO_MANY_LOOKUPS", "ERROR", {"count": lookup_count, "limit": LOOKUP_LIMIT}))
    if void_count > VOID_LOOKUP_LIMIT:
        findings.append(
            Finding("SPF_TOO_MANY_VOID_LOOKUPS", "ERROR", {"count": void_count, "limit": VOID_LOOKUP_LIMIT})
        )
    return findings


def _platform_verdict(platform: SpfResult | None, ip_results: Sequence[SpfResult]) -> SpfResultCode:
    """The evaluator's answer: for the configured sender IPs if any (all must pass), else for the platform."""
    if not ip_results:
        assert platform is not None
        return platform.result
    codes = {result.result for result in ip_results}
    if "temperror" in codes:
        return "temperror"
    return "pass" if codes == {"pass"} else "fail"


def _evaluation_params(platform: str, result: SpfResult | None) -> dict[str, Any]:
    """The include and, when the platform was evaluated, what check_host decided and by which term."""
    params: dict[str, Any] = {"include": platform}
    if result is not None:
        params.update(result=result.result, term=result.term, decidedIn=result.domain, lookups=result.lookups)
    return params


# -- the verdict when nothing can be said about the records -------------------------------------------


def _report_without_records(
    domain: str, findings: list[Finding], problem: Problem, record: str | None = None
) -> DomainReport:
    return DomainReport(domain, record, None, 0, 0, (), None, tuple(findings), (problem,), None, False)


async def _resolver_answer(probe: asyncio.Future[DnsAnswer], deadline: float) -> DnsAnswer | None:
    """The resolver probe's answer, waiting for it at most until ``deadline``; None if it has none."""
    if not probe.done():
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(probe)
        except TimeoutError:
            return None
    if probe.cancelled() or probe.exception() is not None:
        return None
    return probe.result()


async def _unresolvable(
    domain: str,
    findings: list[Finding],
    probe: asyncio.Future[DnsAnswer],
    deadline: float,
    record: str | None = None,
) -> DomainReport:
    """A lookup of the domain failed: DOMAIN_UNREACHABLE if the resolver works, else DNS_TEMPORARY_FAILURE.

    NXDOMAIN, SERVFAIL or a timeout only say something about the domain when the same resolver
    answers for the root zone; without a working resolver (no network, nothing listening, a stub
    answering NXDOMAIN for everything) the check did not run, and the report says so instead of
    giving a verdict.
    """
    answer = await _resolver_answer(probe, deadline)
    if answer is not None and DnsClient.resolver_works(answer):
        return _report_without_records(domain, findings, Problem("DOMAIN_UNREACHABLE", {"domain": domain}), record)
    kind = answer.kind.value if answer is not None else DnsKind.TIMEOUT.value
    # A resolver that denies the root denies everything: its "does not exist" is no finding about the domain.
    findings = [finding for finding in findings if finding.code != "DOMAIN_NXDOMAIN"]
    findings.append(Finding("DNS_RESOLVER_UNAVAILABLE", "ERROR", {"domain": domain, "kind": kind}))
    return _report_without_records(domain, findings, Problem("DNS_TEMPORARY_FAILURE", {"domain": domain}), record)


# -- the audit ------------------------------------------------------------------------------------------


async def _mx_addresses(client: DnsClient, host: str) -> tuple[str, list[DnsAnswer]]:
    """A, and AAAA only when there is no A record (one query saved for most hosts)."""
    ipv4 = await client.query(host, "A")
    if ipv4.kind is DnsKind.ANSWER:
        return host, [ipv4]
    return host, [ipv4, await client.query(host, "AAAA")]


async def _ready(value: SpfNode | None) -> SpfNode | None:
    return value


async def _no_result() -> SpfResult | None:
    return None


async def audit_domain(
    domain: str,
    *,
    dns: DnsClient,
    platform_include: str,
    sender_ips: Sequence[str] = (),
    own_smtp_server: bool = False,
    timeout: float = 5.0,
) -> DomainReport:
    """Audit a sending domain: SPF (tree, limits, platform authorization), MX, DMARC; bounded by ``timeout``.

    The verdict comes from check_host(): for every IP of ``sender_ips`` when given (all must
    pass), otherwise for a sender that only ``include:<platform_include>`` authorizes
    (:class:`~domaincheck.spf_eval.SpfAssumption`). The tree, limits and findings explain it.
    A domain that does not resolve (NXDOMAIN, SERVFAIL, timeout) gets DOMAIN_UNREACHABLE only, or
    DNS_TEMPORARY_FAILURE only when the resolver itself does not work (it fails for the root too).
    With ``own_smtp_server`` the SPF problems are not reported (the platform does not send).
    A name that is no valid multi-label domain (``a..b``, a label over 63 or a name over 253 octets)
    raises ``InvalidDomainName`` before any query; U-labels are checked as their A-labels.
    """
    domain = canonical_domain(domain, multi_label=True)
    deadline = asyncio.get_running_loop().time() + timeout
    # Asked with the first lookups, so a failed lookup of the domain needs no second wait to tell
    # a dead resolver from a dead domain (cached: one query per TTL for a shared client).
    probe = asyncio.ensure_future(dns.probe_resolver())
    try:
        return await _audit(domain, dns, _norm(platform_include), sender_ips, own_smtp_server, timeout, deadline, probe)
    finally:
        probe.cancel()


async def _audit(
    domain: str,
    dns: DnsClient,
    platform: str,
    sender_ips: Sequence[str],
    own_smtp_server: bool,
    timeout: float,
    deadline: float,
    probe: asyncio.Future[DnsAnswer],
) -> DomainReport:
    try:
        async with asyncio.timeout_at(deadline):
            txt, mx, dmarc = await dns.query_many([(domain, "TXT"), (domain, "MX"), (f"_dmarc.{domain}", "TXT")])
    except TimeoutError:
        return await _unresolvable(domain, [Finding("AUDIT_TIMEOUT", "ERROR", {"seconds": timeout})], probe, deadline)
    for answer in (txt, mx):
        if answer.kind is DnsKind.NXDOMAIN:
            missing = Finding("DOMAIN_NXDOMAIN", "ERROR", {"domain": domain})
            return await _unresolvable(domain, [missing], probe, deadline)
        if answer.is_temporary_error:
            return await _unresolvable(domain, [_temperror_finding(answer)], probe, deadline)

    records = select_spf_records(txt.texts()) if txt.kind is DnsKind.ANSWER else []
    record = records[0] if len(records) == 1 else None
    mx_result = _mx_findings(domain, mx)
    dmarc_record, dmarc_findings = _dmarc_findings(domain, dmarc)
    findings = [*mx_result.findings, *dmarc_findings]

    tree_job: Awaitable[SpfNode | None]
    if record is not None:
        tree_job = _TreeWalker(dns).record_node(domain, None, None, (_norm(domain),), record)
    elif len(records) > 1:
        tree_job = _ready(SpfNode(domain, None, None, 0, error="multiple-records", record_count=len(records)))
    else:
        tree_job = _ready(None)
    sender = f"postmaster@{domain}"
    # The tree walk has every lookup in flight already, so the evaluator's own prefetch would only add tasks.
    platform_job = (
        _no_result()
        if sender_ips
        else check_host(
            _ASSUMED_SENDER_IP,
            domain,
            sender,
            domain,
            dns=dns,
            prefetch=False,
            assume=SpfAssumption(frozenset({platform})),
        )
    )
    ip_checks = [check_host(ip, domain, sender, domain, dns=dns, prefetch=False) for ip in sender_ips]
    try:
        async with asyncio.timeout_at(deadline):
            tree, platform_tree, host_answers, platform_result, ip_results = await asyncio.gather(
                tree_job,
                _TreeWalker(dns).walk(platform, None, None, (platform,)),
                asyncio.gather(*(_mx_addresses(dns, host) for host in mx_result.hosts)),
                platform_job,
                asyncio.gather(*ip_checks),
            )
    except TimeoutError:
        findings.append(Finding("AUDIT_TIMEOUT", "ERROR", {"seconds": timeout}))
        return await _unresolvable(domain, findings, probe, deadline, record)

    findings.extend(_mx_host_findings(host_answers))
    lookup_count = tree.total_lookups if tree is not None else 0
    void_count = _void_count(tree) if tree is not None else 0
    if tree is not None:
        findings.extend(_record_findings(tree, record))
        findings.extend(_limit_findings(lookup_count, void_count))

    verdict = _platform_verdict(platform_result, ip_results)
    if verdict == "temperror":
        reasons = [r.reason for r in (platform_result, *ip_results) if r is not None and r.result == "temperror"]
        findings.append(Finding("SPF_TEMPERROR", "ERROR", {"detail": reasons[0] if reasons else "temperror"}))
        return await _unresolvable(domain, findings, probe, deadline, record)

    problems: list[Problem] = []
    if mx_result.missing:
        problems.append(Problem("NO_MX_RECORDS", {"domain": domain}))
    authorized = verdict == "pass"
    suggested: str | None = None
    params = _evaluation_params(platform, platform_result)
    if own_smtp_server:
        findings.append(Finding("PLATFORM_INCLUDE_NOT_NEEDED", "INFO", {"include": platform}))
    elif authorized:
        findings.append(Finding("PLATFORM_AUTHORIZED", "INFO", params))
    else:
        if records:
            findings.append(Finding("PLATFORM_NOT_AUTHORIZED", "ERROR", params))
            problems.append(Problem("SPF_NEEDS_UPDATE", {"domain": domain}))
        else:
            problems.append(Problem("NO_SPF_RECORD", {"domain": domain}))
        suggested = _suggest(records, platform)
        findings.extend(await _suggestion_findings(dns, domain, suggested, deadline, lookup_count, platform_tree))

    return DomainReport(
        domain,
        record,
        tree,
        lookup_count,
        void_count,
        mx_result.hosts,
        dmarc_record,
        tuple(findings),
        tuple(problems),
        suggested,
        authorized,
    )


async def _suggestion_findings(
    dns: DnsClient, domain: str, suggested: str, deadline: float, lookup_count: int, platform_tree: SpfNode
) -> list[Finding]:
    """The suggested record walked like a real one: over the lookup limit, or too long for one string."""
    try:
        async with asyncio.timeout_at(deadline):
            suggestion_tree = await _TreeWalker(dns).record_node(domain, None, None, (_norm(domain),), suggested)
        suggestion_lookups = suggestion_tree.total_lookups
    except TimeoutError:
        suggestion_lookups = lookup_count + 1 + platform_tree.total_lookups
    findings: list[Finding] = []
    if suggestion_lookups > LOOKUP_LIMIT:
        findings.append(
            Finding("SUGGESTION_EXCEEDS_LOOKUP_LIMIT", "WARNING", {"count": suggestion_lookups, "limit": LOOKUP_LIMIT})
        )
    findings.extend(_length_findings(suggested) if len(suggested) > SINGLE_STRING_LIMIT else [])
    return findings
