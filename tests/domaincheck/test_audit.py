"""The domain audit against the loopback DNS server: every problem code and the main findings."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from domaincheck.audit import DomainReport, audit_domain
from domaincheck.dns import DnsClient
from domaincheck.spf import check_host
from resolvers.spf import spf_message
from tests.support.dns import StartServer

PLATFORM_INCLUDE = "_spf.aranes.de"
PLATFORM = {PLATFORM_INCLUDE: [{"TXT": "v=spf1 ip4:203.0.113.0/24 -all"}]}
MX = [{"MX": [10, "mx.example.com"]}]
MX_HOST = {"mx.example.com": [{"A": "192.0.2.25"}]}
DMARC = {"_dmarc.example.com": [{"TXT": "v=DMARC1; p=none"}]}


def zone(record: str | list[str] | None, *, mx: bool = True, **extra: list[Any]) -> dict[str, list[Any]]:
    """A zone for example.com with the given SPF record(s), MX, DMARC and the platform include."""
    items: list[Any] = [{"A": "192.0.2.10"}]
    if isinstance(record, str):
        items.append({"TXT": record})
    elif record:
        items.extend({"TXT": r} for r in record)
    if mx:
        items.extend(MX)
    return {"example.com": items, **MX_HOST, **DMARC, **PLATFORM, **{k.replace("_", "."): v for k, v in extra.items()}}


async def audit(loopback_dns: StartServer, data: dict[str, list[Any]], **options: Any) -> DomainReport:
    """Start a server for the zone and audit example.com."""
    _, client = await loopback_dns(data)
    return await audit_domain("example.com", dns=client, **{"platform_include": PLATFORM_INCLUDE, **options})


pytestmark = pytest.mark.asyncio


async def test_platform_included_is_ok(loopback_dns: StartServer) -> None:
    """A record with include:_spf.aranes.de, MX and DMARC has no problem."""
    report = await audit(loopback_dns, zone("v=spf1 mx include:_spf.aranes.de -all"))
    assert report.ok
    assert report.platform_authorized
    assert report.lookup_count == 2
    assert report.mx_hosts == ("mx.example.com",)
    assert report.dmarc_record == "v=DMARC1; p=none"
    assert {"PLATFORM_AUTHORIZED", "DMARC_PRESENT"} <= set(report.finding_codes)
    assert report.suggested_record is None


async def test_platform_through_reseller_include(loopback_dns: StartServer) -> None:
    """The platform include reached through a reseller's include counts as authorized."""
    data = zone(
        "v=spf1 include:spf.reseller.example ~all",
        spf_reseller_example=[{"TXT": "v=spf1 ip4:198.51.100.0/24 include:_spf.aranes.de ~all"}],
    )
    report = await audit(loopback_dns, data)
    assert report.ok
    assert report.tree is not None
    assert [c.domain for c in report.tree.children] == ["spf.reseller.example"]
    assert report.tree.children[0].children[0].domain == "_spf.aranes.de"
    assert report.lookup_count == 2


async def test_missing_platform_needs_update(loopback_dns: StartServer) -> None:
    """A record without the platform gives SPF_NEEDS_UPDATE and a suggestion before ~all."""
    data = zone("v=spf1 include:spf.other.example ~all", spf_other_example=[{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}])
    report = await audit(loopback_dns, data)
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]
    assert report.suggested_record == "v=spf1 include:spf.other.example include:_spf.aranes.de ~all"
    assert "PLATFORM_NOT_AUTHORIZED" in report.finding_codes


async def test_suggestion_goes_before_redirect(loopback_dns: StartServer) -> None:
    """Without all, the include is inserted before redirect=."""
    data = zone("v=spf1 a redirect=spf.other.example", spf_other_example=[{"TXT": "v=spf1 -all"}])
    report = await audit(loopback_dns, data)
    assert report.suggested_record == "v=spf1 a include:_spf.aranes.de redirect=spf.other.example"


async def test_no_spf_record(loopback_dns: StartServer) -> None:
    """Without any SPF record: NO_SPF_RECORD and a new record with mx and the platform."""
    report = await audit(loopback_dns, zone(None))
    assert report.problem_codes == ["NO_SPF_RECORD"]
    assert report.record is None
    assert report.suggested_record == "v=spf1 mx include:_spf.aranes.de ~all"


async def test_no_mx_records(loopback_dns: StartServer) -> None:
    """A domain without MX gets NO_MX_RECORDS."""
    report = await audit(loopback_dns, zone("v=spf1 include:_spf.aranes.de -all", mx=False))
    assert report.problem_codes == ["NO_MX_RECORDS"]
    assert "MX_MISSING" in report.finding_codes


async def test_null_mx_counts_as_no_mx(loopback_dns: StartServer) -> None:
    """A null MX (0 .) gives NO_MX_RECORDS and the MX_NULL finding."""
    data = zone("v=spf1 include:_spf.aranes.de -all", mx=False)
    data["example.com"].append({"MX": [0, ""]})
    report = await audit(loopback_dns, data)
    assert report.problem_codes == ["NO_MX_RECORDS"]
    assert "MX_NULL" in report.finding_codes
    assert report.mx_hosts == ()


@pytest.mark.parametrize("items", [None, ["SERVFAIL"], ["TIMEOUT"]], ids=["nxdomain", "servfail", "timeout"])
async def test_unreachable_domain_is_the_only_problem(loopback_dns: StartServer, items: list[Any] | None) -> None:
    """NXDOMAIN, SERVFAIL and timeouts give DOMAIN_UNREACHABLE and nothing else."""
    data: dict[str, list[Any]] = {**PLATFORM}
    if items is not None:
        data["example.com"] = items
    report = await audit(loopback_dns, data, timeout=2.0)
    assert report.problem_codes == ["DOMAIN_UNREACHABLE"]
    problem = report.problems[0]
    assert spf_message(problem.code, "de", **problem.params) == "Die Domain example.com ist nicht erreichbar."


async def test_audit_timeout_is_unreachable_not_missing_record(loopback_dns: StartServer) -> None:
    """When the whole audit runs out of time the verdict is DOMAIN_UNREACHABLE, never NO_SPF_RECORD."""
    _, client = await loopback_dns({"example.com": ["TIMEOUT"]})
    started = time.perf_counter()
    report = await audit_domain("example.com", dns=client, platform_include=PLATFORM_INCLUDE, timeout=0.1)
    assert time.perf_counter() - started < 0.5
    assert report.problem_codes == ["DOMAIN_UNREACHABLE"]
    assert report.finding_codes == ["AUDIT_TIMEOUT"]


async def test_platform_after_lookup_limit_needs_update(loopback_dns: StartServer) -> None:
    """Eleven lookups with the platform last: too many lookups, not authorized, suggestion still too big."""
    includes = " ".join(f"include:s{i}.provider.example" for i in range(10))
    extra = {f"s{i}_provider_example": [{"TXT": f"v=spf1 ip4:198.51.100.{i} -all"}] for i in range(10)}
    report = await audit(loopback_dns, zone(f"v=spf1 {includes} include:_spf.aranes.de -all", **extra))
    assert report.lookup_count == 11
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]
    assert {"SPF_TOO_MANY_LOOKUPS", "SUGGESTION_EXCEEDS_LOOKUP_LIMIT"} <= set(report.finding_codes)
    exceeded = next(f for f in report.findings if f.code == "SUGGESTION_EXCEEDS_LOOKUP_LIMIT")
    assert "SMTP" in spf_message(exceeded.code, "de", **exceeded.params)
    assert "SMTP" in spf_message(exceeded.code, "en", **exceeded.params)


async def test_platform_before_lookup_limit_is_authorized(loopback_dns: StartServer) -> None:
    """The platform include matched before the limit counts as authorized; the overflow is still reported."""
    includes = " ".join(f"include:s{i}.provider.example" for i in range(10))
    extra = {f"s{i}_provider_example": [{"TXT": f"v=spf1 ip4:198.51.100.{i} -all"}] for i in range(10)}
    report = await audit(loopback_dns, zone(f"v=spf1 include:_spf.aranes.de {includes} -all", **extra))
    assert report.platform_authorized
    assert report.ok
    assert "SPF_TOO_MANY_LOOKUPS" in report.finding_codes


async def test_multiple_records(loopback_dns: StartServer) -> None:
    """Two SPF records: SPF_MULTIPLE_RECORDS, SPF_NEEDS_UPDATE and one merged suggestion."""
    report = await audit(loopback_dns, zone(["v=spf1 mx -all", "v=spf1 ip4:192.0.2.1 ~all"]))
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]
    assert "SPF_MULTIPLE_RECORDS" in report.finding_codes
    assert report.record is None
    assert report.suggested_record == "v=spf1 mx ip4:192.0.2.1 include:_spf.aranes.de -all"


async def test_syntax_error_with_position(loopback_dns: StartServer) -> None:
    """A syntax error is reported with its position and the suggestion drops the broken term."""
    report = await audit(loopback_dns, zone("v=spf1 include:_spf.aranes.de ip4:192.0.2.300 -all"))
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]
    error = next(f for f in report.findings if f.code == "SPF_SYNTAX_ERROR")
    assert error.params["position"] == 34
    assert "Position 34" in spf_message(error.code, "de", **error.params)
    assert report.suggested_record == "v=spf1 include:_spf.aranes.de -all"


async def test_include_without_spf(loopback_dns: StartServer) -> None:
    """An include whose target has no SPF record is an error and needs an update."""
    data = zone("v=spf1 include:gone.example include:_spf.aranes.de -all", gone_example=[{"A": "192.0.2.1"}])
    report = await audit(loopback_dns, data)
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]
    assert "SPF_TARGET_WITHOUT_SPF" in report.finding_codes


async def test_loop_is_reported_with_chain(loopback_dns: StartServer) -> None:
    """An include loop gives SPF_LOOP with the chain of domains."""
    data = zone(
        "v=spf1 include:a.loop.example -all",
        a_loop_example=[{"TXT": "v=spf1 include:b.loop.example"}],
        b_loop_example=[{"TXT": "v=spf1 include:a.loop.example"}],
    )
    report = await audit(loopback_dns, data)
    loop = next(f for f in report.findings if f.code == "SPF_LOOP")
    assert loop.params["chain"] == "example.com → a.loop.example → b.loop.example → a.loop.example"
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ("v=spf1 include:_spf.aranes.de +all", "SPF_PLUS_ALL"),
        ("v=spf1 include:_spf.aranes.de ?all", "SPF_NEUTRAL_ALL"),
        ("v=spf1 include:_spf.aranes.de", "SPF_NO_ALL"),
        ("v=spf1 ptr include:_spf.aranes.de -all", "SPF_PTR_USED"),
        ("v=spf1 include:_spf.aranes.de -all a", "SPF_TERMS_AFTER_ALL"),
        ("v=spf1 include:_spf.aranes.de -all redirect=example.net", "SPF_REDIRECT_IGNORED"),
    ],
)
async def test_record_findings(loopback_dns: StartServer, record: str, code: str) -> None:
    """Risky or dead terms are reported."""
    report = await audit(loopback_dns, zone(record))
    assert code in report.finding_codes


async def test_too_many_void_lookups(loopback_dns: StartServer) -> None:
    """Three a: terms pointing to nothing exceed the void lookup limit."""
    report = await audit(
        loopback_dns, zone("v=spf1 a:x1.example.com a:x2.example.com a:x3.example.com include:_spf.aranes.de -all")
    )
    assert report.void_lookup_count == 3
    assert "SPF_TOO_MANY_VOID_LOOKUPS" in report.finding_codes
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]


async def test_long_record_advice(loopback_dns: StartServer) -> None:
    """A record over 450 characters gets the split and length advice."""
    ips = " ".join(f"ip4:198.51.100.{i}" for i in range(30))
    report = await audit(loopback_dns, zone(f"v=spf1 {ips} include:_spf.aranes.de -all"))
    assert {"SPF_RECORD_NEEDS_SPLIT", "SPF_RECORD_TOO_LONG"} <= set(report.finding_codes)
    assert report.ok


async def test_mx_host_without_address_and_missing_dmarc(loopback_dns: StartServer) -> None:
    """An MX host with neither A nor AAAA and a missing DMARC record are reported."""
    data = zone("v=spf1 include:_spf.aranes.de -all")
    data["example.com"] = [{"TXT": "v=spf1 include:_spf.aranes.de -all"}, {"MX": [10, "void.example.com"]}]
    del data["_dmarc.example.com"]
    report = await audit(loopback_dns, data)
    assert {"MX_HOST_WITHOUT_ADDRESS", "DMARC_MISSING"} <= set(report.finding_codes)
    assert report.dmarc_record is None


async def test_own_smtp_server_needs_no_platform(loopback_dns: StartServer) -> None:
    """With the account's own SMTP server the SPF problems are not reported."""
    report = await audit(loopback_dns, zone(None), own_smtp_server=True)
    assert report.ok
    assert "PLATFORM_INCLUDE_NOT_NEEDED" in report.finding_codes
    assert report.suggested_record is None


async def test_sender_ips_decide_authorization(loopback_dns: StartServer) -> None:
    """With sender_ips the verdict is check_host() passing for every IP."""
    data = zone("v=spf1 ip4:192.0.2.0/24 -all")
    assert (await audit(loopback_dns, data, sender_ips=["192.0.2.7", "192.0.2.8"])).ok
    report = await audit(loopback_dns, data, sender_ips=["192.0.2.7", "198.51.100.1"])
    assert report.problem_codes == ["SPF_NEEDS_UPDATE"]


async def test_temperror_in_include_is_not_needs_update(loopback_dns: StartServer) -> None:
    """An include that times out before the platform gives DOMAIN_UNREACHABLE, not SPF_NEEDS_UPDATE."""
    data = zone("v=spf1 include:slow.example include:_spf.aranes.de -all", slow_example=["TIMEOUT"])
    report = await audit(loopback_dns, data)
    assert report.problem_codes == ["DOMAIN_UNREACHABLE"]
    assert "SPF_TEMPERROR" in report.finding_codes


async def test_lookups_run_concurrently(loopback_dns: StartServer) -> None:
    """Five includes behind a 50 ms DNS delay take about three round trips, not seven."""
    includes = " ".join(f"include:s{i}.provider.example" for i in range(5))
    extra = {f"s{i}_provider_example": [{"TXT": "v=spf1 -all"}] for i in range(5)}
    _, client = await loopback_dns(zone(f"v=spf1 {includes} include:_spf.aranes.de -all", **extra), delay=0.05)
    started = time.perf_counter()
    report = await audit_domain("example.com", dns=client, platform_include=PLATFORM_INCLUDE)
    assert report.ok
    assert time.perf_counter() - started < 0.3


async def test_to_dict_uses_camel_case_and_codes(loopback_dns: StartServer) -> None:
    """to_dict() has the GraphQL field names, codes with params and English source messages (no language)."""
    report = await audit(loopback_dns, zone(None))
    data = report.to_dict()
    assert {
        "domain",
        "record",
        "tree",
        "lookupCount",
        "voidLookupCount",
        "mxHosts",
        "dmarcRecord",
        "findings",
        "problems",
        "ok",
        "suggestedRecord",
    } <= set(data)
    assert data["problems"] == [
        {
            "code": "NO_SPF_RECORD",
            "params": {"domain": "example.com"},
            "message": "The domain example.com has no SPF record.",
        }
    ]
    assert spf_message("NO_SPF_RECORD", "de", **data["problems"][0]["params"]) == (
        "Für die Domain example.com ist kein SPF-Eintrag hinterlegt."
    )


DEAD_RESOLVERS = {
    "nxdomain-for-everything": {".": ["NXDOMAIN"], "example.com": ["NXDOMAIN"]},
    "refused": {".": ["REFUSED"], "example.com": ["REFUSED"]},
    "servfail": {".": ["SERVFAIL"], "example.com": ["SERVFAIL"]},
    "timeout": {".": ["TIMEOUT"], "example.com": ["TIMEOUT"]},
}


@pytest.mark.parametrize("name", list(DEAD_RESOLVERS))
async def test_resolver_that_fails_for_the_root_too_gives_no_verdict(loopback_dns: StartServer, name: str) -> None:
    """A resolver failing for the root zone as well (no upstream) is DNS_TEMPORARY_FAILURE, not a domain verdict."""
    report = await audit(loopback_dns, {**PLATFORM, **DEAD_RESOLVERS[name]}, timeout=2.0)
    assert report.problem_codes == ["DNS_TEMPORARY_FAILURE"]
    problem = report.problems[0]
    assert spf_message(problem.code, "de") == "Der DNS-Server war nicht erreichbar; bitte später erneut prüfen."
    assert problem.message() == "The DNS server could not be reached; please check again later."
    assert "DNS_RESOLVER_UNAVAILABLE" in report.finding_codes
    assert "DOMAIN_NXDOMAIN" not in report.finding_codes


async def test_no_dns_server_listening_gives_no_verdict() -> None:
    """With nothing listening at the nameserver's address the check reports DNS_TEMPORARY_FAILURE."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = DnsClient([("127.0.0.1", port)], timeout=0.2, lifetime=0.6)
    async with asyncio.timeout(10):  # the audit's own bound is 2 s; this only keeps a broken run finite
        report = await audit_domain("example.com", dns=client, platform_include=PLATFORM_INCLUDE, timeout=2.0)
    assert report.problem_codes == ["DNS_TEMPORARY_FAILURE"]
    assert report.record is None and report.tree is None


@pytest.mark.parametrize("failure", ["REFUSED", "SERVFAIL", "TIMEOUT"])
async def test_failure_of_one_domain_with_a_working_resolver_is_unreachable(
    loopback_dns: StartServer, failure: str
) -> None:
    """A resolver that answers for the root but fails for the domain: the domain is unreachable (a verdict)."""
    report = await audit(loopback_dns, {**PLATFORM, "example.com": [failure]}, timeout=2.0)
    assert report.problem_codes == ["DOMAIN_UNREACHABLE"]


PLATFORM_IP = "203.0.113.5"  # in the platform's ip4:203.0.113.0/24, in no customer record below
VERDICT_RECORDS = {
    "include": "v=spf1 mx include:_spf.aranes.de -all",
    "missing": "v=spf1 mx -all",
    "soft-include": "v=spf1 ~include:_spf.aranes.de -all",
    "after-all": "v=spf1 -all include:_spf.aranes.de",
    "redirect": "v=spf1 mx redirect=_spf.aranes.de",
    "plus-all": "v=spf1 mx +all",
    "exists-voids": "v=spf1 exists:x1.example.com exists:x2.example.com exists:x3.example.com "
    "include:_spf.aranes.de -all",
    "reseller": "v=spf1 include:spf.reseller.example -all",
}


@pytest.mark.parametrize("name", list(VERDICT_RECORDS))
async def test_verdict_is_the_evaluators(loopback_dns: StartServer, name: str) -> None:
    """The audit authorizes the platform exactly when check_host() passes for a platform relay address."""
    data = zone(
        VERDICT_RECORDS[name], spf_reseller_example=[{"TXT": "v=spf1 ip4:198.51.100.0/24 include:_spf.aranes.de ~all"}]
    )
    _, client = await loopback_dns(data)
    report = await audit_domain("example.com", dns=client, platform_include=PLATFORM_INCLUDE)
    result = await check_host(PLATFORM_IP, "example.com", "postmaster@example.com", "example.com", dns=client)
    assert report.platform_authorized == (result.result == "pass")
    assert report.ok == report.platform_authorized
