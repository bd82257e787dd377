"""The job queue on both runners (procrastinate on PostgreSQL, in-process on SQLite), run in this process."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg.conninfo
import pytest
from tortoise import connections

from domaincheck.dns import DnsClient
from mailaccounts.jobs import apply_job_schema, psycopg_conninfo
from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.jobs import JobError, JobServices, JobStatus, Periodic, task
from resolvers.spf import RECHECK_STALE, SpfChecker, SpfReportView
from resolvers.tokens import ensure_tenant
from tests.support.dns import LoopbackDnsServer
from tests.support.jobs import eventually, has_status, quick_runner, working
from tests.support.zones import ZONE
from web.request_id import RequestIdLogFilter, current_request_id, request_id_bound

RAN: list[tuple[str, str]] = []
RUNS: defaultdict[str, list[float]] = defaultdict(list)
GATES: dict[str, asyncio.Event] = {}
STARTED: list[str] = []


@task("tests.record")
async def _record(services: JobServices, *, value: str) -> None:
    RAN.append((value, current_request_id()))


@task("tests.flaky", retries=2, retry_wait=0.3)
async def _flaky(services: JobServices, *, key: str) -> None:
    RUNS[key].append(time.monotonic())
    raise RuntimeError(f"{key} broke")


@task("tests.hold")
async def _hold(services: JobServices, *, name: str) -> None:
    STARTED.append(name)
    await GATES[name].wait()


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    for record in (RAN, RUNS, GATES, STARTED):
        record.clear()
    yield


async def test_a_job_runs_with_the_request_id_of_what_enqueued_it(db: str, settings: Settings) -> None:
    """enqueue returns the job's id; the task runs with the enqueuer's request id bound, and the job lists it."""
    async with working(quick_runner(db), settings) as runner:
        with request_id_bound("req-started-it"):
            job_id = await runner.enqueue("tests.record", {"value": "eins"})
        assert isinstance(job_id, int)
        await eventually(lambda: RAN)
        await eventually(lambda: has_status(runner, job_id, JobStatus.SUCCEEDED))
        assert RAN == [("eins", "req-started-it")]
        (job,) = await runner.jobs(JobStatus.SUCCEEDED)
        assert (job.id, job.task, job.args, job.request_id, job.attempts) == (
            job_id,
            "tests.record",
            {"value": "eins"},
            "req-started-it",
            1,
        )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdLogFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_failing_job_is_retried_with_backoff_then_fails_logged_with_the_request_id(
    db: str, settings: Settings
) -> None:
    """A failing task runs 1 + retries times, each retry after a doubled wait; the final failure is an
    error logged with the request id of what enqueued the job, and the job stays failed."""
    records = _Records()
    logging.getLogger("mailaccounts.jobs").addHandler(records)
    try:
        async with working(quick_runner(db), settings) as runner:
            with request_id_bound("req-flaky-start"):
                job_id = await runner.enqueue("tests.flaky", {"key": "a"})
            await eventually(lambda: has_status(runner, job_id, JobStatus.FAILED))
    finally:
        logging.getLogger("mailaccounts.jobs").removeHandler(records)
    first, second, third = RUNS["a"]
    assert second - first >= 0.3 - 0.05 and third - second >= 0.6 - 0.05, RUNS["a"]
    ours = [r for r in records.records if f"job {job_id} " in r.getMessage()]
    assert [(r.levelno, r.request_id) for r in ours] == [  # type: ignore[attr-defined]
        (logging.WARNING, "req-flaky-start"),
        (logging.WARNING, "req-flaky-start"),
        (logging.ERROR, "req-flaky-start"),
    ]
    assert "a broke" in str(ours[-1].exc_info[1] if ours[-1].exc_info else "")


async def test_jobs_sharing_a_lock_run_one_after_another(db: str, settings: Settings) -> None:
    """A job waits while one with its lock runs, and jobs behind it without the lock are not held up."""
    GATES.update(first=asyncio.Event(), second=asyncio.Event(), free=asyncio.Event())
    runner = quick_runner(db)
    async with runner.open():
        await runner.enqueue("tests.hold", {"name": "first"}, lock="L")
        await runner.enqueue("tests.hold", {"name": "second"}, lock="L")
        await runner.enqueue("tests.hold", {"name": "free"})
    async with working(runner, settings):
        await eventually(lambda: {"first", "free"} <= set(STARTED))
        assert "second" not in STARTED
        GATES["first"].set()
        await eventually(lambda: "second" in STARTED)
        GATES["second"].set(), GATES["free"].set()


async def test_a_queueing_lock_lets_one_job_wait(db: str) -> None:
    """A second job with the queueing lock of one still waiting is refused; an unknown task is refused too."""
    runner = quick_runner(db)
    async with runner.open():
        await runner.enqueue("tests.record", {"value": "x"}, queueing_lock="only-one")
        with pytest.raises(JobError, match="waiting already"):
            await runner.enqueue("tests.record", {"value": "y"}, queueing_lock="only-one")
        with pytest.raises(JobError, match="no task"):
            await runner.enqueue("tests.unknown", {})
        assert [job.args for job in await runner.jobs()] == [{"value": "x"}]


class HeldChecker(SpfChecker):
    """An SPF checker whose checks wait for `release`, and which notes every domain it is asked to check."""

    def __init__(self, settings: Settings, checked: list[str], release: asyncio.Event) -> None:
        super().__init__(
            DnsClient(settings.dns_nameservers, lifetime=settings.dns_timeout),
            platform_include=settings.spf_include,
            timeout=settings.dns_timeout,
        )
        self.checked, self.release = checked, release

    async def check_domain(self, domain: str, *, own_smtp_server: bool = False) -> SpfReportView:
        self.checked.append(domain)
        await self.release.wait()
        return await super().check_domain(domain, own_smtp_server=own_smtp_server)


async def test_a_periodic_recheck_runs_once_per_period_across_two_workers(db: str, settings: Settings) -> None:
    """Two workers (two instances, each with its own SPF checker) on one database and a one-second period;
    the first pass is held for longer than two periods: every stale account is still checked exactly once,
    not once per worker or per period."""
    tenant = await ensure_tenant("acme")
    long_ago = datetime.now(UTC) - timedelta(hours=30)
    for email in ("a@gut.example", "b@alt.example"):
        account = await create_account(tenant.id, email, "X")
        await MailAccount.filter(id=account.id).update(spf_checked_at=long_ago)
    checked: list[str] = []
    release = asyncio.Event()
    async with LoopbackDnsServer(ZONE) as dns_server:
        checking = replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=5.0)
        periodic = [Periodic(RECHECK_STALE, 1, {"older_than_hours": 24})]
        one, two = quick_runner(db, periodic=periodic), quick_runner(db, periodic=periodic)
        async with (
            working(one, checking, HeldChecker(checking, checked, release)),
            working(two, checking, HeldChecker(checking, checked, release)),
        ):
            await eventually(lambda: len(checked) == 2)
            held_since = time.monotonic()
            # Two more periods start while the first pass is held; a second pass would ask for the same domains.
            await eventually(lambda: time.monotonic() - held_since > 2.5)
            release.set()

            async def passes_after_the_check() -> bool:
                if await MailAccount.filter(spf_checked_at__lt=long_ago + timedelta(hours=1)).exists():
                    return False
                return len(await one.jobs(JobStatus.SUCCEEDED)) >= 3

            await eventually(passes_after_the_check)
    assert sorted(checked) == ["alt.example", "gut.example"]
    assert set(await MailAccount.all().values_list("spf_ok", flat=True)) == {True, False}


async def test_operator_cancels_waiting_and_running_jobs(db: str, settings: Settings) -> None:
    """cancel: a waiting job ends cancelled, a running one is stopped (aborted), an ended one is refused;
    retry refuses a job that did not fail."""
    GATES.update(holder=asyncio.Event(), queued=asyncio.Event())
    async with working(quick_runner(db), settings) as runner:
        holder = await runner.enqueue("tests.hold", {"name": "holder"}, lock="busy")
        await eventually(lambda: STARTED == ["holder"])
        queued = await runner.enqueue("tests.hold", {"name": "queued"}, lock="busy")
        assert await runner.cancel(queued) == JobStatus.CANCELLED
        assert await runner.cancel(holder) == JobStatus.DOING
        await eventually(lambda: has_status(runner, holder, JobStatus.ABORTED))
        with pytest.raises(JobError, match="already"):
            await runner.cancel(holder)
        with pytest.raises(JobError, match="not failed"):
            await runner.retry(queued)
        with pytest.raises(JobError, match="no job"):
            await runner.retry(999_999)
    assert STARTED == ["holder"]


async def test_the_job_schema_is_applied_once(db: str, is_postgres: bool) -> None:
    """The test database's migration applied the job tables: applying them again changes nothing and fails not."""
    await apply_job_schema(db)
    conn = connections.get("default")
    if is_postgres:
        rows = await conn.execute_query_dict(
            "SELECT obj_description(to_regclass('procrastinate_jobs'), 'pg_class') AS version"
        )
        assert rows == [{"version": f"procrastinate {importlib.metadata.version('procrastinate')}"}]
    else:
        rows = await conn.execute_query_dict("SELECT name FROM sqlite_master WHERE name = 'job_queue'")
        assert rows == [{"name": "job_queue"}]


@pytest.mark.parametrize(
    ("database_url", "conninfo"),
    [
        ("postgres://u:p@db.example:5432/crm", "postgresql://u:p@db.example:5432/crm"),
        ("postgres://u@db/crm?minsize=2&maxsize=20", "postgresql://u@db/crm"),
        ("postgres://u@db/crm?sslmode=verify-full&sslrootcert=/ca.pem", None),
        ("postgres://u@db/crm?ssl=true&maxsize=8", "postgresql://u@db/crm?sslmode=require"),
        ("postgres://u@db/crm?ssl=true&sslmode=verify-ca", "postgresql://u@db/crm?sslmode=verify-ca"),
    ],
)
def test_the_job_queue_connects_with_the_libpq_options_of_database_url(database_url: str, conninfo: str | None) -> None:
    """procrastinate's connections keep sslmode and the other libpq options; Tortoise's pool options are dropped."""
    expected = conninfo or "postgresql" + database_url.removeprefix("postgres")
    assert psycopg_conninfo(database_url) == expected
    psycopg.conninfo.conninfo_to_dict(expected)  # libpq accepts every option left
