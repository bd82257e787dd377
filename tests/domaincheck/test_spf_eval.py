"""check_host() behaviour beyond the suites: cancellation, PTR errors, lookup budget, concurrency."""

from __future__ import annotations

import asyncio
import time

import pytest

from domaincheck.spf import SpfAssumption, check_host
from tests.support.dns import StartServer

pytestmark = pytest.mark.asyncio


async def test_result_reports_term_and_lookups(loopback_dns: StartServer) -> None:
    """The result names the deciding term, its domain and the DNS-querying terms used."""
    _, client = await loopback_dns(
        {
            "example.com": [{"TXT": "v=spf1 a include:_spf.example.net -all"}, {"A": "192.0.2.1"}],
            "_spf.example.net": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
        }
    )
    result = await check_host("198.51.100.7", "example.com", "user@example.com", dns=client)
    assert (result.result, result.term, result.lookups) == ("pass", "include:_spf.example.net", 2)
    failed = await check_host("203.0.113.1", "example.com", "user@example.com", dns=client)
    assert (failed.result, failed.term, failed.domain) == ("fail", "-all", "example.com")
    assert failed.explanation == "example.com does not designate 203.0.113.1 as a permitted sender"


async def test_servfail_during_ptr_validation_skips_the_name(loopback_dns: StartServer) -> None:
    """RFC 7208 5.5: a SERVFAIL while validating a PTR name skips it instead of giving temperror."""
    _, client = await loopback_dns(
        {
            "example.com": [{"TXT": "v=spf1 ptr -all"}],
            "1.2.0.192.in-addr.arpa": [{"PTR": "broken.example.com"}, {"PTR": "good.example.com"}],
            "broken.example.com": ["SERVFAIL"],
            "good.example.com": [{"A": "192.0.2.1"}],
        }
    )
    assert (await check_host("192.0.2.1", "example.com", "", "example.com", dns=client)).result == "pass"
    _, client = await loopback_dns(
        {
            "example.com": [{"TXT": "v=spf1 ptr -all"}],
            "1.2.0.192.in-addr.arpa": [{"PTR": "broken.example.com"}],
            "broken.example.com": ["SERVFAIL"],
        }
    )
    assert (await check_host("192.0.2.1", "example.com", "", "example.com", dns=client)).result == "fail"


async def test_prefetch_stays_within_the_lookup_limit(loopback_dns: StartServer) -> None:
    """Includes beyond the tenth lookup are never queried, even speculatively."""
    includes = " ".join(f"include:i{i}.example.net" for i in range(1, 13))
    zone = {"example.com": [{"TXT": f"v=spf1 {includes} -all"}]}
    zone.update({f"i{i}.example.net": [{"TXT": "v=spf1 -all"}] for i in range(1, 13)})
    server, client = await loopback_dns(zone)
    result = await check_host("192.0.2.1", "example.com", "", "example.com", dns=client)
    assert result.result == "permerror"
    asked = {name for name, _ in server.stats.questions}
    assert "i10.example.net." in asked
    assert "i11.example.net." not in asked and "i12.example.net." not in asked


async def test_independent_lookups_run_concurrently(loopback_dns: StartServer) -> None:
    """Five includes behind a 50 ms delay cost about two round trips, not six."""
    includes = " ".join(f"include:i{i}.example.net" for i in range(5))
    zone = {"example.com": [{"TXT": f"v=spf1 {includes} -all"}]}
    zone.update({f"i{i}.example.net": [{"TXT": "v=spf1 ip4:198.51.100.1 -all"}] for i in range(5)})
    _, client = await loopback_dns(zone, delay=0.05)
    started = time.perf_counter()
    result = await check_host("192.0.2.1", "example.com", "", "example.com", dns=client)
    assert result.result == "fail"
    assert time.perf_counter() - started < 0.2


async def test_timeout_cancels_cleanly(loopback_dns: StartServer) -> None:
    """A caller's asyncio.timeout stops the check and leaves no task behind."""
    _, client = await loopback_dns(
        {
            "example.com": [{"TXT": "v=spf1 include:slow.example.net include:slow2.example.net -all"}],
            "slow.example.net": ["TIMEOUT"],
            "slow2.example.net": ["TIMEOUT"],
        }
    )
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await check_host("192.0.2.1", "example.com", "", "example.com", dns=client)
    for _ in range(5):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert client._inflight == {}


async def test_dns_timeout_is_temperror(loopback_dns: StartServer) -> None:
    """Without a caller timeout, a DNS timeout inside an include gives temperror."""
    _, client = await loopback_dns(
        {
            "example.com": [{"TXT": "v=spf1 include:slow.example.net -all"}],
            "slow.example.net": ["TIMEOUT"],
        }
    )
    result = await check_host("192.0.2.1", "example.com", "", "example.com", dns=client)
    assert result.result == "temperror"


ASSUMED = SpfAssumption(frozenset({"_spf.platform.example"}))


async def test_assumed_include_passes_without_being_evaluated(loopback_dns: StartServer) -> None:
    """Under an assumption the assumed include passes at once: its own record is never asked for."""
    server, client = await loopback_dns(
        {
            "example.com": [{"TXT": "v=spf1 include:_spf.platform.example -all"}],
            "_spf.platform.example": [{"TXT": "v=spf1 -all"}],
        }
    )
    result = await check_host("192.0.2.0", "example.com", "postmaster@example.com", dns=client, assume=ASSUMED)
    assert (result.result, result.term, result.lookups) == ("pass", "include:_spf.platform.example", 1)
    assert server.stats.questions[("_spf.platform.example.", "TXT")] == 0


async def test_assumed_sender_matches_no_other_mechanism(loopback_dns: StartServer) -> None:
    """A term that matches the IP does not match the assumed sender; its lookups still count."""
    _, client = await loopback_dns(
        {"example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 a include:_spf.platform.example ~all"}, {"A": "192.0.2.0"}]}
    )
    real = await check_host("192.0.2.0", "example.com", "postmaster@example.com", dns=client)
    assert (real.result, real.term) == ("pass", "ip4:192.0.2.0/24")
    assumed = await check_host("192.0.2.0", "example.com", "postmaster@example.com", dns=client, assume=ASSUMED)
    assert (assumed.result, assumed.term, assumed.lookups) == ("pass", "include:_spf.platform.example", 2)


async def test_assumption_keeps_limits_and_qualifiers(loopback_dns: StartServer) -> None:
    """The assumed include after the void-lookup limit, or behind ~, does not pass, as for a real sender."""
    voids = " ".join(f"exists:v{i}.example.com" for i in range(3))
    _, client = await loopback_dns(
        {
            "voids.example.com": [{"TXT": f"v=spf1 {voids} include:_spf.platform.example -all"}],
            "soft.example.com": [{"TXT": "v=spf1 ~include:_spf.platform.example -all"}],
            "redirected.example.com": [{"TXT": "v=spf1 redirect=_spf.platform.example"}],
        }
    )

    async def assumed(domain: str) -> str:
        return (await check_host("192.0.2.0", domain, f"postmaster@{domain}", dns=client, assume=ASSUMED)).result

    assert await assumed("voids.example.com") == "permerror"
    assert await assumed("soft.example.com") == "softfail"
    assert await assumed("redirected.example.com") == "pass"
