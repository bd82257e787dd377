"""The cached async DNS client against the loopback server: result kinds, caching, de-duplication."""

from __future__ import annotations

import asyncio

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from domaincheck.dns import DnsClient, DnsKind
from domaincheck.dns_wire import parse_response
from tests.support.dns import LoopbackDnsServer, StartServer


# Tests that count the queries a server received: a retry timer far above any answer time on a loaded
# machine, so a second transmission can only come from the behaviour under test, never from slowness.
def patient_client(server: LoopbackDnsServer, clock: FakeClock | None = None) -> DnsClient:
    """A client of `server` with a 10 s retry timer (the fixture's is 0.5 s)."""
    if clock is None:
        return DnsClient([server.address], timeout=10.0, lifetime=30.0)
    return DnsClient([server.address], timeout=10.0, lifetime=30.0, clock=clock)

ZONE = {
    "example.com": [{"TXT": "v=spf1 -all"}, {"A": "192.0.2.1"}, {"MX": [10, "mx.example.com"]}],
    "mx.example.com": [{"A": "192.0.2.25"}],
    "long.example.com": [{"TXT": "x" * 700}],
    "slow.example.com": ["TIMEOUT"],
    "broken.example.com": ["SERVFAIL"],
    "alias.example.com": [{"CNAME": "example.com"}],
}


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_result_kinds(loopback_dns: StartServer) -> None:
    """Answers, NXDOMAIN, NODATA, SERVFAIL and timeouts are told apart."""
    _, client = await loopback_dns(ZONE)
    assert (await client.query("example.com", "A")).addresses() == ["192.0.2.1"]
    assert (await client.query("example.com", "MX")).mx_hosts() == [(10, "mx.example.com")]
    assert (await client.query("missing.example.com", "A")).kind is DnsKind.NXDOMAIN
    assert (await client.query("example.com", "AAAA")).kind is DnsKind.NODATA
    assert (await client.query("broken.example.com", "A")).kind is DnsKind.SERVFAIL
    assert (await client.query("slow.example.com", "A")).kind is DnsKind.TIMEOUT
    assert (await client.query("alias.example.com", "TXT")).texts() == [b"v=spf1 -all"]


@pytest.mark.asyncio
async def test_invalid_name_is_nxdomain_without_query(loopback_dns: StartServer) -> None:
    """Empty or over-long labels give NXDOMAIN and send nothing."""
    server, client = await loopback_dns(ZONE)
    assert (await client.query("a..example.com", "A")).kind is DnsKind.NXDOMAIN
    assert (await client.query("x" * 64 + ".example.com", "A")).kind is DnsKind.NXDOMAIN
    assert server.stats.queries_received == 0


@pytest.mark.asyncio
async def test_positive_answer_cached_until_ttl() -> None:
    """An answer is served from the cache until its TTL (300 s) has passed."""
    clock = FakeClock()
    async with LoopbackDnsServer(ZONE) as server:
        client = patient_client(server, clock)
        await client.query("example.com", "A")
        clock.now += 299
        await client.query("EXAMPLE.com.", "A")
        assert server.stats.queries_received == 1
        assert client.stats.cache_hits == 1
        clock.now += 2
        await client.query("example.com", "A")
        assert server.stats.queries_received == 2


@pytest.mark.asyncio
async def test_negative_answers_cached_for_soa_minimum() -> None:
    """NXDOMAIN and NODATA are cached for the SOA minimum (60 s here)."""
    clock = FakeClock()
    async with LoopbackDnsServer(ZONE, negative_ttl=60) as server:
        client = patient_client(server, clock)
        first = await client.query("missing.example.com", "TXT")
        await client.query("missing.example.com", "TXT")
        await client.query("example.com", "AAAA")
        await client.query("example.com", "AAAA")
        assert first.ttl == 60
        assert server.stats.queries_received == 2
        clock.now += 61
        await client.query("missing.example.com", "TXT")
        await client.query("example.com", "AAAA")
        assert server.stats.queries_received == 4


def test_negative_ttl_default_without_soa() -> None:
    """Without an SOA in a negative answer the client's own negative_ttl applies."""
    query = dns.message.make_query("missing.example.com", "TXT")
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    client = DnsClient([("127.0.0.1", 53)], negative_ttl=7)
    parsed = parse_response(response.to_wire(), query.id, query.question[0].name.to_wire(), 16)
    assert parsed is not None
    answer = client._interpret(parsed, dns.rdatatype.TXT, "x")
    assert answer.kind is DnsKind.NXDOMAIN
    assert answer.ttl == 7


@pytest.mark.asyncio
async def test_temporary_errors_are_not_cached(loopback_dns: StartServer) -> None:
    """A SERVFAIL is asked again next time."""
    server, _ = await loopback_dns(ZONE)
    client = patient_client(server)
    await client.query("broken.example.com", "A")
    await client.query("broken.example.com", "A")
    assert server.stats.queries_received == 2


@pytest.mark.asyncio
async def test_concurrent_identical_questions_share_one_query(loopback_dns: StartServer) -> None:
    """Five concurrent identical questions send one query and all get the answer."""
    server, _ = await loopback_dns(ZONE, delay=0.05)
    client = patient_client(server)
    answers = await asyncio.gather(*(client.query("example.com", "TXT") for _ in range(5)))
    assert {a.kind for a in answers} == {DnsKind.ANSWER}
    assert server.stats.queries_received == 1
    assert client.stats.inflight_joins == 4
    assert client.stats.distinct_questions == 1


@pytest.mark.asyncio
async def test_one_cancelled_waiter_does_not_cancel_the_others(loopback_dns: StartServer) -> None:
    """When one of two waiters is cancelled the other still gets the shared answer."""
    server, _ = await loopback_dns(ZONE, delay=0.05)
    client = patient_client(server)
    first = asyncio.create_task(client.query("example.com", "A"))
    second = asyncio.create_task(client.query("example.com", "A"))
    await asyncio.sleep(0.01)
    first.cancel()
    answer = await second
    assert answer.addresses() == ["192.0.2.1"]
    assert first.cancelled()
    # The first asker ran the exchange; the waiter that stays repeats it once.
    assert server.stats.queries_received <= 2


@pytest.mark.asyncio
async def test_cancellation_stops_the_exchange(loopback_dns: StartServer) -> None:
    """A caller's timeout cancels the lookup and leaves nothing in flight."""
    _, client = await loopback_dns(ZONE)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.query("slow.example.com", "A")
    for _ in range(3):  # let the cancelled exchange and its done-callback run
        await asyncio.sleep(0)
    assert client._inflight == {}


@pytest.mark.asyncio
async def test_truncated_answer_is_repeated_over_tcp(loopback_dns: StartServer) -> None:
    """A TXT answer too big for UDP without EDNS is fetched again over TCP."""
    server, client = await loopback_dns(ZONE, edns=False)
    answer = await client.query("long.example.com", "TXT")
    assert answer.texts() == [b"x" * 700]
    assert client.stats.tcp_fallbacks == 1
    assert server.stats.tcp_queries == 1


@pytest.mark.asyncio
async def test_edns_avoids_tcp(loopback_dns: StartServer) -> None:
    """With EDNS a 700-octet TXT answer fits in UDP."""
    server, client = await loopback_dns(ZONE)
    assert (await client.query("long.example.com", "TXT")).texts() == [b"x" * 700]
    assert server.stats.tcp_queries == 0


@pytest.mark.asyncio
async def test_cache_size_is_bounded(loopback_dns: StartServer) -> None:
    """The cache never grows beyond max_entries."""
    server, _ = await loopback_dns(ZONE)
    client = DnsClient([server.address], max_entries=10)
    for i in range(25):
        await client.query(f"n{i}.example.com", "A")
    assert len(client._cache) <= 10


def test_threaded_server_serves_sync_users() -> None:
    """The server also runs in a background thread for synchronous callers."""
    from tests.support.dns import ThreadedDnsServer

    with ThreadedDnsServer(ZONE) as threaded:
        client = DnsClient([threaded.address], timeout=0.5, lifetime=1.0)
        answer = asyncio.run(client.query("example.com", "A"))
    assert answer.addresses() == ["192.0.2.1"]


@pytest.mark.asyncio
async def test_other_types_fall_back_to_dnspython(loopback_dns: StartServer) -> None:
    """Types outside the lean codec are read by dnspython and still classified."""
    _, client = await loopback_dns(ZONE)
    assert (await client.query("example.com", "HINFO")).kind is DnsKind.NODATA
    assert (await client.query("missing.example.com", "HINFO")).kind is DnsKind.NXDOMAIN


def test_codec_follows_cnames_and_compression() -> None:
    """The codec reads a compressed answer with a CNAME chain like dnspython does."""
    query = dns.message.make_query("alias.example.com", "MX")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("alias.example.com.", 60, "IN", "CNAME", "example.com."))
    response.answer.append(dns.rrset.from_text("example.com.", 300, "IN", "MX", "10 mx.example.com."))
    parsed = parse_response(response.to_wire(), query.id, query.question[0].name.to_wire(), 15)
    assert parsed is not None
    assert parsed.values == ((10, "mx.example.com"),)
    assert parsed.ttl == 60
    assert parse_response(response.to_wire(), query.id ^ 1, query.question[0].name.to_wire(), 15) is None


@pytest.mark.asyncio
async def test_burst_is_answered_without_retransmission(loopback_dns: StartServer) -> None:
    """200 concurrent questions are all answered first time, and every socket is closed afterwards.

    The retry timer is far above the server's time for the burst, even on a loaded machine, so a second
    transmission can only come from a lost question or answer, never from a slow server.
    """
    server, _ = await loopback_dns({f"h{i}.example.com": [{"A": "192.0.2.1"}] for i in range(200)})
    client = patient_client(server)
    answers = await asyncio.gather(*(client.query(f"h{i}.example.com", "A") for i in range(200)))
    assert all(a.kind is DnsKind.ANSWER for a in answers)
    assert client.stats.queries_sent == 200
    assert all(channel.closed for channels in client._channels.values() for channel in channels)


async def test_resolver_probe_tells_a_working_resolver_from_a_lying_one(loopback_dns: StartServer) -> None:
    """The root's SOA is answered by a working resolver; NXDOMAIN or REFUSED for the root marks a broken one."""
    _, working = await loopback_dns({})
    probe = await working.probe_resolver()
    assert (probe.kind, DnsClient.resolver_works(probe)) == (DnsKind.ANSWER, True)
    for failure, kind in (("NXDOMAIN", DnsKind.NXDOMAIN), ("REFUSED", DnsKind.SERVFAIL)):
        _, broken = await loopback_dns({".": [failure]})
        probe = await broken.probe_resolver()
        assert (probe.kind, DnsClient.resolver_works(probe)) == (kind, False)
