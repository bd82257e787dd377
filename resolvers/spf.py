"""SPF checks of accounts and addresses: run the domain audit, store the verdict, bulk and periodic re-checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import Q

from domaincheck.audit import DomainReport, SpfNode, audit_domain
from domaincheck.dns import DnsClient
from domaincheck.messages import MESSAGES as SPF_SOURCE_TEXTS
from domaincheck.names import InvalidDomainName, canonical_domain, mixed_script_label
from domaincheck.spf import SpfResult, check_host
from orm.models import MailAccount
from resolvers.accounts import validate_account_address
from resolvers.errors import NotFound
from resolvers.jobs import JobQueue, JobServices, task
from resolvers.smtp_servers import has_own_smtp_server
from texts import coded_text

__all__ = [
    "CHECK_ACCOUNTS",
    "RECHECK_STALE",
    "BulkCheckSummary",
    "SpfChecker",
    "SpfFindingView",
    "SpfProblemView",
    "SpfReportView",
    "SpfTreeEntry",
    "bulk_check_status",
    "check_account",
    "check_accounts",
    "check_address",
    "check_domain_name",
    "evaluate_client",
    "recheck_stale_accounts",
    "spf_message",
    "stored_report",
]

# A whole check may overrun DNS_TIMEOUT by this much (scheduling, the last answer in flight).
_TIMEOUT_MARGIN = 0.5
# Domains a bulk check audits at the same time (SPF_CHECK_CONCURRENCY); see docs/PERFORMANCE.md.
DEFAULT_CONCURRENCY = 100
# The problem code of a check that could not run (the resolver failed): no verdict about the domain.
_DID_NOT_RUN = "DNS_TEMPORARY_FAILURE"


def spf_message(code: str, lang: str, **params: Any) -> str:
    """The text of an SPF problem or finding code in `lang`, from the catalogue (domaincheck keeps only codes)."""
    return coded_text(lang, code, SPF_SOURCE_TEXTS[code], **params)


@dataclass(frozen=True)
class SpfProblemView:
    """A verdict code with the values its message needs."""

    code: str
    params: Mapping[str, Any]

    def message(self, lang: str) -> str:
        return spf_message(self.code, lang, **self.params)


@dataclass(frozen=True)
class SpfFindingView(SpfProblemView):
    """A detailed diagnosis with its severity (INFO, WARNING, ERROR)."""

    severity: str = "INFO"


@dataclass(frozen=True)
class SpfTreeEntry:
    """One record of the include/redirect tree, flattened in pre-order with its depth."""

    depth: int
    domain: str
    mechanism: str | None
    record: str | None
    lookups: int
    error: str | None


@dataclass(frozen=True)
class SpfReportView:
    """A stored or fresh SPF report, language-neutral: messages are rendered by the caller."""

    domain: str
    checked_at: datetime
    record: str | None
    suggested_record: str | None
    lookup_count: int
    void_lookup_count: int
    mx_hosts: list[str]
    dmarc_record: str | None
    problems: list[SpfProblemView]
    findings: list[SpfFindingView]
    tree: list[SpfTreeEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def failed_to_run(self) -> bool:
        """True when the DNS resolver did not work: the report is no verdict about the domain."""
        return any(problem.code == _DID_NOT_RUN for problem in self.problems)

    def to_json(self) -> dict[str, Any]:
        """The form stored in `mail_account.spf_report`."""
        return {
            "domain": self.domain,
            "checkedAt": self.checked_at.isoformat(),
            "record": self.record,
            "suggestedRecord": self.suggested_record,
            "lookupCount": self.lookup_count,
            "voidLookupCount": self.void_lookup_count,
            "mxHosts": self.mx_hosts,
            "dmarcRecord": self.dmarc_record,
            "problems": [{"code": p.code, "params": dict(p.params)} for p in self.problems],
            "findings": [{"code": f.code, "severity": f.severity, "params": dict(f.params)} for f in self.findings],
            "tree": [entry.__dict__ for entry in self.tree],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpfReportView:
        return cls(
            domain=data["domain"],
            checked_at=datetime.fromisoformat(data["checkedAt"]),
            record=data.get("record"),
            suggested_record=data.get("suggestedRecord"),
            lookup_count=int(data.get("lookupCount", 0)),
            void_lookup_count=int(data.get("voidLookupCount", 0)),
            mx_hosts=list(data.get("mxHosts", [])),
            dmarc_record=data.get("dmarcRecord"),
            problems=[SpfProblemView(p["code"], p.get("params", {})) for p in data.get("problems", [])],
            findings=[SpfFindingView(f["code"], f.get("params", {}), f["severity"]) for f in data.get("findings", [])],
            tree=[SpfTreeEntry(**entry) for entry in data.get("tree", [])],
        )

    def to_api_dict(self, lang: str) -> dict[str, Any]:
        """The report with the GraphQL field names and rendered messages (the CLI's --json)."""
        return {
            "ok": self.ok,
            **self.to_json(),
            "problems": [{"code": p.code, "message": p.message(lang)} for p in self.problems],
            "findings": [{"code": f.code, "severity": f.severity, "message": f.message(lang)} for f in self.findings],
        }


def _flatten(node: SpfNode | None, depth: int = 0) -> list[SpfTreeEntry]:
    if node is None:
        return []
    entries = [SpfTreeEntry(depth, node.domain, node.mechanism, node.record, node.lookups, node.error)]
    for child in node.children:
        entries += _flatten(child, depth + 1)
    return entries


def _view(report: DomainReport, checked_at: datetime) -> SpfReportView:
    return SpfReportView(
        domain=report.domain,
        checked_at=checked_at,
        record=report.record,
        suggested_record=report.suggested_record,
        lookup_count=report.lookup_count,
        void_lookup_count=report.void_lookup_count,
        mx_hosts=list(report.mx_hosts),
        dmarc_record=report.dmarc_record,
        problems=[SpfProblemView(p.code, dict(p.params)) for p in report.problems],
        findings=[SpfFindingView(f.code, dict(f.params), f.severity) for f in report.findings],
        tree=_flatten(report.tree),
    )


class SpfChecker:
    """Runs domain audits with one DNS client, so its cache serves every check of the process."""

    def __init__(
        self,
        dns: DnsClient,
        *,
        platform_include: str,
        sender_ips: Sequence[str] = (),
        timeout: float = 5.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        write_batch: int = 100,
        write_interval: float = 1.0,
        jobs: JobQueue | None = None,
    ) -> None:
        self.dns = dns
        self.platform_include = platform_include
        self.sender_ips = tuple(sender_ips)
        self.timeout = timeout
        # Bulk checks: domains checked at the same time, and how their results are written (see _CheckWriter).
        self.concurrency = concurrency
        self.write_batch = write_batch
        self.write_interval = write_interval
        # Where bulk checks without `wait` go; None where nothing runs jobs (the CLI's one-off checks).
        self.jobs = jobs

    async def check_domain(self, domain: str, *, own_smtp_server: bool = False) -> SpfReportView:
        """Audit `domain`; finishes within the timeout plus a small margin whatever the DNS does."""
        checked_at = datetime.now(UTC)
        async with asyncio.timeout(self.timeout + _TIMEOUT_MARGIN):
            report = await audit_domain(
                domain,
                dns=self.dns,
                platform_include=self.platform_include,
                sender_ips=self.sender_ips,
                own_smtp_server=own_smtp_server,
                timeout=self.timeout,
            )
        return _view(report, checked_at)

    async def run_in_background(self, task_name: str, args: Mapping[str, Any]) -> int:
        """Hand a check to the job queue (it survives a restart and may run on another instance); the job id."""
        if self.jobs is None:
            raise RuntimeError("this SPF checker has no job queue: background checks need one")
        return await self.jobs.enqueue(task_name, args)


def _domain_of(account: MailAccount) -> str:
    return account.email_normalized.rsplit("@", 1)[1]


async def check_account(tenant_id: int, account_id: int, checker: SpfChecker) -> tuple[MailAccount, SpfReportView]:
    """Check the account's domain and store the report on it; returns the updated account and the report.

    A check that could not run (DNS_TEMPORARY_FAILURE) is no verdict: an account with a stored
    verdict keeps it (report and `spf_ok`), only `spf_checked_at` records the attempt; an account
    without one stores the failed report with `spf_ok` unknown (NULL).
    """
    account = await MailAccount.get_or_none(tenant_id=tenant_id, id=account_id)
    if account is None:
        raise NotFound("accountId")
    view = await checker.check_domain(_domain_of(account), own_smtp_server=has_own_smtp_server(account))
    if view.failed_to_run and account.spf_ok is not None:
        # The last verdict stays; only the attempt's time moves, so progress and re-checks count it.
        account.spf_checked_at = view.checked_at
        await account.save(update_fields=["spf_checked_at"])
    else:
        account.spf_report, account.spf_checked_at = view.to_json(), view.checked_at
        account.spf_ok = None if view.failed_to_run else view.ok
        await account.save(update_fields=["spf_report", "spf_checked_at", "spf_ok"])
    return account, view


async def check_address(email: str, checker: SpfChecker) -> SpfReportView:
    """Check the domain of an address before an account exists; stores nothing.

    InvalidEmail, before any DNS query, for an invalid address or a look-alike domain.
    """
    address = validate_account_address(email)
    return await checker.check_domain(address.domain)


def _checked_domain_name(domain: str) -> str:
    """The canonical form of a domain typed as such; InvalidDomainName for a bad or look-alike name."""
    canonical = canonical_domain(domain, multi_label=True)
    if mixed_script_label(canonical) is not None:
        raise InvalidDomainName(domain, "mixed_script")
    return canonical


async def check_domain_name(domain: str, checker: SpfChecker) -> SpfReportView:
    """Check a domain given by name (the CLI); InvalidDomainName, before any DNS query, when it is refused."""
    return await checker.check_domain(_checked_domain_name(domain))


async def evaluate_client(
    checker: SpfChecker, ip: str, domain_or_address: str, *, sender: str | None = None, helo: str = ""
) -> SpfResult:
    """check_host() for one client address, as a postmaster asks after a rejection.

    For an address the domain is its domain and it is the sender; for a domain the sender is
    postmaster@domain unless given. A refused address (InvalidEmail) or domain (InvalidDomainName)
    sends no query.
    """
    if "@" in domain_or_address:
        domain = validate_account_address(domain_or_address).domain
        sender = sender or domain_or_address.strip()
    else:
        domain = _checked_domain_name(domain_or_address)
        sender = sender or f"postmaster@{domain}"
    async with asyncio.timeout(checker.timeout + _TIMEOUT_MARGIN):
        return await check_host(ip, domain, sender, helo, dns=checker.dns)


def stored_report(account: MailAccount) -> SpfReportView | None:
    """The last stored report of an account, or None before the first check."""
    return SpfReportView.from_json(account.spf_report) if account.spf_report else None


@dataclass(frozen=True)
class BulkCheckSummary:
    """Progress or result of re-checking a tenant's accounts since `started_at`."""

    started_at: datetime
    total: int
    checked: int
    ok: int

    @property
    def with_problems(self) -> int:
        return self.checked - self.ok

    @property
    def finished(self) -> bool:
        return self.checked >= self.total


# One bulk-check write: per account the failed flag ($1, read twice), the report, the verdict, the time and the
# id. A check that could not run keeps a stored verdict (report and spf_ok) and only moves spf_checked_at; without
# a stored verdict it stores the failed report and spf_ok stays NULL (unknown). Every right-hand side reads the
# old row.
_STORE_CHECK_SQL = (
    'UPDATE "mail_account" SET '
    '"spf_report" = CASE WHEN $1 AND "spf_ok" IS NOT NULL THEN "spf_report" ELSE $2 END, '
    '"spf_ok" = CASE WHEN $1 THEN "spf_ok" ELSE $3 END, '
    '"spf_checked_at" = $4 '
    'WHERE "id" = $5'
)


def _store_check_sql(dialect: str) -> str:
    """The statement in the connection's dialect: numbered parameters are `$n` on PostgreSQL, `?n` on SQLite."""
    return _STORE_CHECK_SQL.replace("$", "?") if dialect == "sqlite" else _STORE_CHECK_SQL


class _CheckWriter:
    """Stores the results of a bulk check in batches: one statement (executemany) and one commit per batch.

    A batch is written once `batch` domains are done or `interval` seconds have passed since the last write,
    whichever comes first, so `bulk_check_status` (which reads `spf_checked_at`) sees progress while the check
    runs; what a batch holds is lost only if the process dies, and the job resumes from the committed rows.
    `flush_periodically` writes what waits even while no check finishes (the rest hang on a slow DNS).
    """

    def __init__(self, batch: int, interval: float) -> None:
        self.batch = batch
        self.interval = interval
        self._rows: list[tuple[bool, str, bool | None, datetime, int]] = []
        self._domains = 0
        self._last_write = time.monotonic()
        self._report_field = MailAccount._meta.fields_map["spf_report"]

    async def add(self, account_ids: Sequence[int], view: SpfReportView) -> None:
        """Note the result of one domain for its accounts; writes the batch when it is due."""
        failed = view.failed_to_run
        report = self._report_field.to_db_value(view.to_json(), MailAccount)
        verdict = None if failed else view.ok
        self._rows += [(failed, report, verdict, view.checked_at, account_id) for account_id in account_ids]
        self._domains += 1
        if self._domains >= self.batch or time.monotonic() - self._last_write >= self.interval:
            await self.flush()

    async def flush_periodically(self) -> None:
        """Flush every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            if self._rows:
                await self.flush()

    async def flush(self) -> None:
        """Write and commit whatever is collected."""
        rows, self._rows, self._domains = self._rows, [], 0
        self._last_write = time.monotonic()
        if not rows:
            return
        connection = connections.get("default")
        await connection.execute_many(_store_check_sql(connection.capabilities.dialect), [list(row) for row in rows])


async def _check_many(accounts: Sequence[MailAccount], checker: SpfChecker) -> None:
    """Check the accounts' domains, `checker.concurrency` at a time, and store the results in batches.

    Accounts of one domain (and the same own-server choice) share one check. Results are written by
    `_CheckWriter`, so the cost of storing is a few statements per hundred domains, not one per domain.
    """
    # Accounts of one domain share one audit; the DNS cache would make repeats cheap, this makes them free.
    by_domain: dict[tuple[str, bool], list[int]] = {}
    for account in accounts:
        by_domain.setdefault((_domain_of(account), has_own_smtp_server(account)), []).append(account.id)
    pending = iter(by_domain.items())
    writer = _CheckWriter(checker.write_batch, checker.write_interval)

    async def work() -> None:
        # Workers share one iterator: each takes the next domain when its last check is done.
        for (domain, own_server), account_ids in pending:
            view = await checker.check_domain(domain, own_smtp_server=own_server)
            await writer.add(account_ids, view)

    flusher = asyncio.create_task(writer.flush_periodically())
    try:
        async with asyncio.TaskGroup() as workers:
            for _ in range(min(checker.concurrency, len(by_domain))):
                workers.create_task(work())
    except BaseExceptionGroup as failed:
        # The first failure, as a plain exception for the job runner's log and retry.
        raise failed.exceptions[0] from None
    finally:
        flusher.cancel()
        [stopped] = await asyncio.gather(flusher, return_exceptions=True)
        # What was checked before a failure is kept: a rerun of the job resumes after it.
        await writer.flush()
        if isinstance(stopped, Exception):
            # A periodic write failed: its results are lost, so the caller must not take the check as done.
            raise stopped


async def bulk_check_status(tenant_id: int, started_at: datetime) -> BulkCheckSummary:
    """How far a bulk check that started at `started_at` has come, read from the database.

    Works across instances: every check stores its time, so progress needs no shared memory. A time
    without zone is taken as UTC, the zone `spfCheckAll` answers in.
    """
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=UTC)
    accounts = MailAccount.filter(tenant_id=tenant_id)
    done = accounts.filter(spf_checked_at__gte=started_at)
    return BulkCheckSummary(
        started_at=started_at,
        total=await accounts.count(),
        checked=await done.count(),
        ok=await done.filter(spf_ok=True).count(),
    )


async def check_accounts(tenant_id: int, checker: SpfChecker, *, wait: bool = True) -> BulkCheckSummary:
    """Re-check every account of the tenant (bounded concurrency).

    Without `wait` the check is a job (`spf.check_accounts`) and the summary is the one at its start;
    `bulk_check_status` follows it from the database.
    """
    started_at = datetime.now(UTC)
    if not wait:
        total = await MailAccount.filter(tenant_id=tenant_id).count()
        await checker.run_in_background(CHECK_ACCOUNTS, {"tenant_id": tenant_id, "started_at": started_at.isoformat()})
        return BulkCheckSummary(started_at=started_at, total=total, checked=0, ok=0)
    await _check_many(await MailAccount.filter(tenant_id=tenant_id), checker)
    return await bulk_check_status(tenant_id, started_at)


CHECK_ACCOUNTS = "spf.check_accounts"


@task(CHECK_ACCOUNTS, retries=5, retry_wait=10.0)
async def check_accounts_job(services: JobServices, *, tenant_id: int, started_at: str) -> None:
    """The bulk check as a job: checks the accounts not checked since `started_at`, so a rerun resumes it."""
    since = datetime.fromisoformat(started_at)
    rest = MailAccount.filter(Q(spf_checked_at__isnull=True) | Q(spf_checked_at__lt=since), tenant_id=tenant_id)
    await _check_many(await rest, services.spf_checker)


async def recheck_stale_accounts(checker: SpfChecker, older_than: timedelta, *, limit: int = 500) -> int:
    """Re-check up to `limit` accounts (all tenants) whose last check is older than `older_than` or missing."""
    cutoff = datetime.now(UTC) - older_than
    stale = await MailAccount.filter(spf_checked_at__isnull=True).order_by("id").limit(limit)
    if len(stale) < limit:
        stale += await (
            MailAccount.filter(spf_checked_at__lt=cutoff).order_by("spf_checked_at").limit(limit - len(stale))
        )
    await _check_many(stale, checker)
    return len(stale)


RECHECK_STALE = "spf.recheck_stale"
# Accounts one pass of the periodic re-check takes at a time; each batch commits before the next.
RECHECK_BATCH = 500


@task(RECHECK_STALE)
async def recheck_stale_job(services: JobServices, *, older_than_hours: int) -> None:
    """The periodic re-check (SPF_RECHECK_HOURS) as a job: batches until no account is stale any more.

    The runners start it once per period across all instances and never twice at once; a pass that
    fails is not retried, the next period's pass takes over.
    """
    older_than = timedelta(hours=older_than_hours)
    while await recheck_stale_accounts(services.spf_checker, older_than, limit=RECHECK_BATCH) == RECHECK_BATCH:
        pass
