"""The bulk SPF check stores its results in batches: few statements, progress committed per batch, verdicts kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domaincheck.dns import DnsClient
from orm.models import MailAccount, Tenant
from resolvers.accounts import create_account
from resolvers.spf import SpfChecker, SpfProblemView, SpfReportView, bulk_check_status, check_accounts
from resolvers.tokens import ensure_tenant
from tests.support.dns import LoopbackDnsServer
from tests.support.sql import Statements, recorded_statements
from tests.support.zones import PLATFORM, mail_domain

DOMAINS = 24
ZONE: dict[str, list[Any]] = {**PLATFORM}
for number in range(DOMAINS):
    # Every third domain lacks the platform's include: a problem, so the stored verdicts differ.
    spf = "v=spf1 mx ~all" if number % 3 == 0 else "v=spf1 mx include:_spf.aranes.de ~all"
    ZONE |= mail_domain(f"d{number}.example", spf)


@pytest.fixture
def statements() -> Iterator[Statements]:
    with recorded_statements() as recorded:
        yield recorded


@pytest.fixture
async def dns_client() -> AsyncIterator[DnsClient]:
    async with LoopbackDnsServer(ZONE) as server:
        yield DnsClient([server.address], lifetime=2.0)


@pytest.fixture
async def tenant(db: str) -> Tenant:
    tenant = await ensure_tenant("acme")
    for number in range(DOMAINS):
        await create_account(tenant.id, f"info@d{number}.example", "Info")
    return tenant


def checker_for(dns: DnsClient, **options: Any) -> SpfChecker:
    return SpfChecker(dns, platform_include="_spf.aranes.de", timeout=2.0, **options)


def expected_verdicts() -> dict[str, bool]:
    return {f"info@d{number}.example": number % 3 != 0 for number in range(DOMAINS)}


async def stored_verdicts() -> dict[str, bool | None]:
    return {a.email_normalized: a.spf_ok for a in await MailAccount.all()}


async def test_results_are_written_in_a_few_statements(
    tenant: Tenant, dns_client: DnsClient, statements: Statements
) -> None:
    """24 domains with batches of 10 are stored by three UPDATE statements, not one per domain, with every verdict."""
    checker = checker_for(dns_client, write_batch=10, write_interval=3600.0)
    summary = await check_accounts(tenant.id, checker)
    assert (summary.total, summary.checked, summary.ok) == (DOMAINS, DOMAINS, 16)
    assert await stored_verdicts() == expected_verdicts()
    assert len(statements.updates()) == 3, statements.updates()
    # The rest: reading the accounts and the summary, independent of the number of domains.
    assert len(statements.sql) <= 8, statements.sql


class HeldChecker(SpfChecker):
    """Checks normally, except that the check after the first `held` waits for `release`; notes the finished."""

    def __init__(self, dns: DnsClient, held: int, **options: Any) -> None:
        super().__init__(dns, platform_include="_spf.aranes.de", timeout=2.0, **options)
        self.held, self.started, self.release, self.finished = held, 0, asyncio.Event(), []

    async def check_domain(self, domain: str, *, own_smtp_server: bool = False) -> SpfReportView:
        self.started += 1
        if self.started == self.held + 1:
            await self.release.wait()
        view = await super().check_domain(domain, own_smtp_server=own_smtp_server)
        self.finished.append(domain)
        return view


async def test_progress_is_committed_per_batch(tenant: Tenant, dns_client: DnsClient) -> None:
    """One domain at a time in batches of 4: while the 11th domain is held, the first 8 are committed and
    visible to bulk_check_status, the 9th and 10th wait for their batch; at the end all are stored."""
    checker = HeldChecker(dns_client, 10, concurrency=1, write_batch=4, write_interval=3600.0)
    started_at = datetime.now(UTC)
    running = asyncio.create_task(check_accounts(tenant.id, checker))
    async with asyncio.timeout(10):
        while len(checker.finished) < 10:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # a write due now would have happened
    progress = await bulk_check_status(tenant.id, started_at)
    assert (progress.total, progress.checked) == (DOMAINS, 8)
    checker.release.set()
    summary = await running
    assert (summary.checked, summary.finished) == (DOMAINS, True)
    assert await stored_verdicts() == expected_verdicts()


async def test_progress_is_committed_after_the_interval_while_the_rest_hangs(
    tenant: Tenant, dns_client: DnsClient
) -> None:
    """In batches of 100 with an interval of 0.2 s, the 5 domains finished before a check that hangs are
    committed while it hangs: the interval is kept on a timer, not only when the next check finishes."""
    checker = HeldChecker(dns_client, 5, concurrency=1, write_batch=100, write_interval=0.2)
    started_at = datetime.now(UTC)
    running = asyncio.create_task(check_accounts(tenant.id, checker))
    async with asyncio.timeout(10):
        while (await bulk_check_status(tenant.id, started_at)).checked < 5:
            await asyncio.sleep(0.01)
    assert len(checker.finished) == 5
    checker.release.set()
    assert (await running).checked == DOMAINS


class FailingChecker(SpfChecker):
    """Reports a check that could not run (DNS_TEMPORARY_FAILURE) for the domains in `down`."""

    def __init__(self, dns: DnsClient, down: set[str], **options: Any) -> None:
        super().__init__(dns, platform_include="_spf.aranes.de", timeout=2.0, **options)
        self.down = down

    async def check_domain(self, domain: str, *, own_smtp_server: bool = False) -> SpfReportView:
        if domain in self.down:
            problem = SpfProblemView("DNS_TEMPORARY_FAILURE", {})
            return SpfReportView(domain, datetime.now(UTC), None, None, 0, 0, [], None, [problem], [])
        return await super().check_domain(domain, own_smtp_server=own_smtp_server)


async def test_a_failed_check_in_a_batch_keeps_the_stored_verdict(tenant: Tenant, dns_client: DnsClient) -> None:
    """In one batch: an account with a verdict keeps report and verdict (only the time moves), one without
    gets the failed report and an unknown verdict, the others get their fresh verdicts."""
    kept, never = "info@d1.example", "info@d2.example"
    await check_accounts(tenant.id, checker_for(dns_client))
    before = await MailAccount.get(email_normalized=kept)
    long_ago = datetime.now(UTC) - timedelta(days=3)
    await MailAccount.filter(email_normalized=never).update(spf_ok=None, spf_report=None, spf_checked_at=None)
    await MailAccount.filter(email_normalized=kept).update(spf_checked_at=long_ago)
    checker = FailingChecker(dns_client, {"d1.example", "d2.example"}, write_batch=100)
    summary = await check_accounts(tenant.id, checker)
    assert summary.checked == DOMAINS
    after = await MailAccount.get(email_normalized=kept)
    assert (after.spf_ok, after.spf_report) == (True, before.spf_report)
    assert after.spf_checked_at is not None and after.spf_checked_at > long_ago
    unknown = await MailAccount.get(email_normalized=never)
    assert unknown.spf_ok is None
    assert [p["code"] for p in unknown.spf_report["problems"]] == ["DNS_TEMPORARY_FAILURE"]
    verdicts = await stored_verdicts()
    assert verdicts == expected_verdicts() | {never: None}


class BrokenChecker(SpfChecker):
    """Raises on the check after the first `good`, as an unexpected failure would."""

    def __init__(self, dns: DnsClient, good: int, **options: Any) -> None:
        super().__init__(dns, platform_include="_spf.aranes.de", timeout=2.0, **options)
        self.good, self.started = good, 0

    async def check_domain(self, domain: str, *, own_smtp_server: bool = False) -> SpfReportView:
        self.started += 1
        if self.started > self.good:
            raise RuntimeError(f"the {self.started}th check broke")
        return await super().check_domain(domain, own_smtp_server=own_smtp_server)


async def test_a_crash_keeps_what_was_checked_and_raises_the_error(tenant: Tenant, dns_client: DnsClient) -> None:
    """A check that raises ends the bulk check with that error (not a group), after storing what was checked,
    so the job's rerun resumes from there."""
    checker = BrokenChecker(dns_client, 6, concurrency=1, write_batch=100, write_interval=3600.0)
    started_at = datetime.now(UTC)
    with pytest.raises(RuntimeError, match="the 7th check broke"):
        await check_accounts(tenant.id, checker)
    assert (await bulk_check_status(tenant.id, started_at)).checked == 6
