"""The wiring: settings, database and the web front put together into one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from domaincheck.dns import DnsClient
from mailaccounts.database import database, ping_database
from mailaccounts.jobs import JobRunner, job_runner_for
from mailaccounts.settings import Settings
from mailflow.listener import ListenerConfig, start_listener
from mailflow.relay import SmtpRelay, parse_relay_url
from resolvers.accounts import BackgroundOperations
from resolvers.jobs import JobServices
from resolvers.mailbox_changes import open_mailbox_changes
from resolvers.outbound import OutboundGuard, OutboundPolicy
from resolvers.rate_limits import prune_counters
from resolvers.sending import EnvelopeSender, Outbox
from resolvers.sign_in import SignInLimits, UnlockMailer
from resolvers.spf import SpfChecker
from schema import GraphQLLimits
from web.app import WebConfig, create_app
from web.dashboard import DashboardConfig

log = logging.getLogger(__name__)

__all__ = [
    "build_app",
    "build_dashboard_config",
    "build_outbox",
    "build_sign_in_limits",
    "build_spf_checker",
    "job_worker",
    "rate_counter_pruning",
    "smtp_listener",
]


def build_outbox(settings: Settings) -> Outbox:
    """The sender of sendMessage: SMTP_RELAY over aiosmtplib, envelope sender per ENVELOPE_SENDER; own
    servers only on addresses the outbound rule allows (OUTBOUND_ALLOW_NETWORKS, DNS_NAMESERVERS)."""
    outbound = OutboundGuard(
        OutboundPolicy(settings.outbound_allow_networks),
        DnsClient(settings.dns_nameservers or None, lifetime=settings.dns_timeout),
        timeout=settings.dns_timeout,
    )
    relay = SmtpRelay(
        parse_relay_url(settings.smtp_relay),
        outbound,
        timeout=settings.smtp_relay_timeout,
        local_hostname=settings.mailbox_domain,
    )
    return Outbox(
        relay=relay,
        mailbox_domain=settings.mailbox_domain,
        outbound=outbound,
        envelope_sender=EnvelopeSender(settings.envelope_sender),
        secret_key=settings.secret_key,
    )


def build_spf_checker(settings: Settings, jobs: JobRunner | None = None) -> SpfChecker:
    """One SPF checker per process, so its DNS cache serves every check; bulk checks go to `jobs`."""
    dns = DnsClient(settings.dns_nameservers or None, lifetime=settings.dns_timeout)
    return SpfChecker(
        dns,
        platform_include=settings.spf_include,
        sender_ips=settings.sender_ips,
        timeout=settings.dns_timeout,
        concurrency=settings.spf_check_concurrency,
        jobs=jobs,
    )


@asynccontextmanager
async def running(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `work` as a background task for the duration of the block; cancelled and awaited at its end."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def job_worker(jobs: JobRunner, services: JobServices) -> AsyncIterator[None]:
    """A job worker on this event loop for the duration of the block (`serve` with JOBS_IN_PROCESS).

    It also starts the periodic tasks (SPF_RECHECK_HOURS); on PostgreSQL they run once per period
    however many instances run a worker.
    """

    async def work() -> None:
        try:
            await jobs.work(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the job worker stopped")

    async with running(work()):
        yield


# Every counter window is at most a day long (LOGIN_WINDOW ≤ 24 h, the API's is a minute): older rows are dead.
RATE_COUNTER_MAX_AGE = 24 * 3600 + 60


@asynccontextmanager
async def rate_counter_pruning(interval: float = 600.0, max_age: float = RATE_COUNTER_MAX_AGE) -> AsyncIterator[None]:
    """Delete ended rate-limit windows every `interval` seconds, so `rate_counter` does not grow without end.

    Every instance prunes; the DELETE is idempotent, so N instances only repeat a cheap statement.
    """

    async def loop() -> None:
        while True:
            try:
                await prune_counters(max_age)
            except Exception:
                log.exception("pruning rate counters failed")
            await asyncio.sleep(interval)

    async with running(loop()):
        yield


def build_sign_in_limits(settings: Settings) -> SignInLimits:
    """LOGIN_MAX_FAILURES_PER_ADDRESS, LOGIN_MAX_FAILURES_PER_USER and LOGIN_WINDOW for the dashboard and the CLI."""
    return SignInLimits(
        per_address=settings.login_max_failures_per_address,
        per_user=settings.login_max_failures_per_user,
        window=settings.login_window,
    )


def build_dashboard_config(
    settings: Settings,
    outbox: Outbox | None = None,
    spf_checker: SpfChecker | None = None,
    background_operations: BackgroundOperations | None = None,
) -> DashboardConfig | None:
    """The dashboard's settings; None (API only) without SECRET_KEY, which signs its sessions.

    Unlock links go out through the outbox's relay, the operator's SMTP_RELAY.
    """
    if not settings.secret_key:
        return None
    limits = build_sign_in_limits(settings)
    return DashboardConfig(
        secret_key=settings.secret_key,
        mailbox_domain=settings.mailbox_domain,
        spf_include=settings.spf_include,
        outbox=outbox,
        session_max_age=settings.session_max_age,
        cookie_secure=settings.session_cookie_secure,
        sign_in_limits=limits,
        unlock_mailer=UnlockMailer(outbox, settings.secret_key, failures=limits.per_user) if outbox else None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        public_url=settings.public_url,
        spf_checker=spf_checker,
        background_operations=background_operations,
    )


@asynccontextmanager
async def smtp_listener(settings: Settings) -> AsyncIterator[None]:
    """Run the SMTP listener on SMTP_LISTEN on the current event loop for the duration of the block.

    Its RCPT cache hears of every account state change any process commits (`open_mailbox_changes`).
    """
    config = ListenerConfig(
        mailbox_domain=settings.mailbox_domain,
        host=settings.smtp_listen_host,
        port=settings.smtp_listen_port,
        max_message_bytes=settings.smtp_max_message_bytes,
        max_connections=settings.smtp_max_connections,
        max_connections_per_client=settings.smtp_max_connections_per_ip,
        idle_timeout=settings.smtp_idle_timeout,
        data_timeout=settings.smtp_data_timeout,
        recipient_cache_ttl=settings.smtp_recipient_cache_ttl,
    )
    async with open_mailbox_changes() as changes:
        server = await start_listener(config, changes)
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()


def build_app(
    settings: Settings,
    *,
    manage_database: bool = True,
    run_smtp_listener: bool = False,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The service's ASGI app; `manage_database=False` when the caller already opened the database.

    With `run_smtp_listener` (`mailaccounts serve`) the lifespan also runs the SMTP listener; with
    JOBS_IN_PROCESS it runs a job worker. `clock` is the API rate limit's (tests fake it).
    """

    # One of each per process: the API and the dashboard share the relay, the DNS cache and the job queue.
    outbox = build_outbox(settings)
    jobs = job_runner_for(settings)
    spf_checker = build_spf_checker(settings, jobs)
    background_operations = BackgroundOperations(jobs, settings.background_operation_messages)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if manage_database:
                await stack.enter_async_context(database(settings.database_url))
            if run_smtp_listener:
                await stack.enter_async_context(smtp_listener(settings))
            await stack.enter_async_context(jobs.open())
            if settings.jobs_in_process:
                await stack.enter_async_context(job_worker(jobs, JobServices(spf_checker=spf_checker)))
            await stack.enter_async_context(rate_counter_pruning())
            yield

    return create_app(
        WebConfig(
            mailbox_domain=settings.mailbox_domain,
            database_ping=ping_database,
            lifespan=lifespan,
            outbox=outbox,
            spf_checker=spf_checker,
            background_operations=background_operations,
            dashboard=build_dashboard_config(settings, outbox, spf_checker, background_operations),
            production=settings.production,
            graphql_limits=GraphQLLimits(
                max_fields=settings.graphql_max_fields, max_network_fields=settings.graphql_max_network_fields
            ),
            api_rate_limit=settings.api_rate_limit,
            clock=clock,
        )
    )
