"""Several instances on one PostgreSQL: two `mailaccounts serve` and one `mailaccounts smtp` give the guarantees
of one process (issue 10). PostgreSQL only: SQLite is one machine's database, and CI runs this file on both."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager

import aiosmtplib
import httpx
import pytest

from orm.models import Scope
from resolvers.tokens import create_token
from resolvers.users import create_user
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.dashboard import PASSWORD, sign_in
from tests.support.dns import LoopbackDnsServer
from tests.support.documents import CREATE, DELETE, MERGE, MESSAGES, SET_STATUS
from tests.support.factories import Account, mail
from tests.support.jobs import eventually
from tests.support.serve import Served, serve, smtp_process, worker_process
from tests.support.smtp import smtp_session
from tests.support.zones import ZONE

CHECK_ALL = """
mutation All($input: SpfCheckAllInput) {
  spfCheckAll(input: $input) { summary { startedAt total checked finished } userErrors { code } }
}"""
STATUS = "query S($t: DateTime!) { spfCheckStatus(startedAt: $t) { total checked ok withProblems finished } }"
# Cross-process waits: each is bounded far below the RCPT cache TTL of an hour, and only a broken run reaches it.
DEADLINE = 60


def mailbox_number(account: Account) -> int:
    return int(account.inbound.split("@")[0][1:])


async def rcpt_code(port: int, address: str) -> int:
    """The listener's answer to RCPT TO:<address> in a fresh transaction."""
    client = await smtp_session(port)
    try:
        await client.mail("absender@extern.example")
        code: int = (await client.execute_command(b"RCPT", b"TO:<" + address.encode() + b">")).code
        return code
    finally:
        client.close()


async def send(port: int, account: Account, subject: str) -> None:
    client = await smtp_session(port)
    try:
        raw = mail(subject=subject, message_id=f"<{subject}@extern.example>", to=account.inbound)
        await client.sendmail("absender@extern.example", [account.inbound], raw)
    finally:
        await client.quit()


async def subjects(api: Api, account: Account) -> list[str]:
    data = await api(MESSAGES, {"id": account.id, "first": 100})
    return sorted(edge["node"]["subject"] for edge in data["account"]["messages"]["edges"])


@asynccontextmanager
async def running_instances(db: str, **settings: str) -> AsyncIterator[tuple[list[Served], int, str, dict[str, str]]]:
    """Two `serve` and one `smtp` process on the test's PostgreSQL database, RCPT cache TTL one hour, SPF checks
    asking a loopback DNS server, at most 2 failed sign-ins per address, plus `settings`; yields them, the smtp
    port, a token and their environment."""
    token = (await create_token("acme", Scope.WRITE)).secret
    await create_user("acme", "chefin@acme.example", PASSWORD)
    async with AsyncExitStack() as stack:
        dns_server = await stack.enter_async_context(LoopbackDnsServer(ZONE))
        host, port = dns_server.address
        env = {
            **os.environ,
            "DATABASE_URL": db,
            "SECRET_KEY": "s" * 40,
            "MAILBOX_DOMAIN": MAILBOX_DOMAIN,
            "SMTP_RECIPIENT_CACHE_TTL": "3600",
            "DNS_NAMESERVERS": f"{host}:{port}",
            "DNS_TIMEOUT": "10",
            "LOGIN_MAX_FAILURES_PER_ADDRESS": "2",
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        smtp_port = await stack.enter_async_context(smtp_process(env))
        with ExitStack() as processes:
            # serve() waits for /healthz synchronously; nothing on this loop is needed meanwhile.
            served = [processes.enter_context(serve(env)) for _ in range(2)]
            yield served, smtp_port, token, env


@pytest.fixture
async def instances(db: str, is_postgres: bool) -> AsyncIterator[tuple[list[Served], int, str]]:
    """`running_instances` with the default settings."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: several instances share one PostgreSQL; SQLite serves one machine")
    async with running_instances(db) as (served, smtp_port, token, _):
        yield served, smtp_port, token


async def test_two_serve_and_one_smtp_process_behave_as_one(instances: tuple[list[Served], int, str]) -> None:
    """Creates, deliveries, deactivate/merge/delete, a bulk SPF check and the sign-in limit through two `serve`
    and one `smtp` process: every listener refuses a changed mailbox at once (not after the hour of its RCPT
    cache), mail lands in the right account as the other instance reads it, progress of a bulk check started
    on one instance is read on the other, failures count across instances, and no mailbox number is reused."""
    (first, second), smtp_port, token = instances
    async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as one, httpx.AsyncClient(
        base_url=second.base_url, timeout=30
    ) as two:
        apis = [Api(one, token), Api(two, token)]
        listeners = [first.smtp_port, second.smtp_port, smtp_port]

        # Creates on both instances at once: distinct mailbox numbers.
        async def create(api: Api, name: str) -> Account:
            payload = (await api(CREATE, {"input": {"email": f"{name}@gut.example", "senderName": name}}))[
                "createAccount"
            ]
            assert payload["userErrors"] == [], payload
            return Account(payload["account"])

        names = ["ruhe", "alt", "neu", "weg", "bleibt", "x1", "x2", "x3"]
        accounts = dict(
            zip(names, await asyncio.gather(*(create(apis[i % 2], n) for i, n in enumerate(names))), strict=True)
        )
        numbers = {mailbox_number(account) for account in accounts.values()}
        assert len(numbers) == len(names)

        # Deliveries through every listener, read on the instance that did not create the account.
        for index, port in enumerate(listeners):
            for name in ("ruhe", "alt", "neu", "weg"):
                await send(port, accounts[name], f"{name}-{index}")
        for i, name in enumerate(names[:4]):
            reader = apis[(i + 1) % 2]
            assert await subjects(reader, accounts[name]) == [f"{name}-{index}" for index in range(3)]

        # Every listener has accepted every mailbox before the changes, so each holds cached acceptances.
        for port in listeners:
            for account in accounts.values():
                assert await rcpt_code(port, account.inbound) == 250

        ruhe, alt, neu, weg = (accounts[name] for name in ("ruhe", "alt", "neu", "weg"))
        status = await apis[0](SET_STATUS, {"input": {"accountId": ruhe.id, "status": "INACTIVE"}})
        assert status["setStatus"]["userErrors"] == []
        merged = await apis[1](MERGE, {"input": {"sourceId": alt.id, "targetId": neu.id, "confirm": alt.email}})
        assert merged["mergeAccounts"]["userErrors"] == []
        deleted = await apis[0](DELETE, {"input": {"accountId": weg.id, "confirm": weg.email}})
        assert deleted["deleteAccount"]["userErrors"] == []

        async def all_refused() -> bool:
            codes = [await rcpt_code(port, account.inbound) for port in listeners for account in (ruhe, alt, weg)]
            return codes == [550] * len(codes)

        # The notifications leave at COMMIT; a wait bounded far below the hour of the cache.
        await eventually(all_refused, timeout=DEADLINE)
        for port in listeners:
            assert await rcpt_code(port, neu.inbound) == 250
            assert await rcpt_code(port, accounts["bleibt"].inbound) == 250

        # The merged messages and new mail through every listener land in the target, read on the other instance.
        for index, port in enumerate(listeners):
            await send(port, neu, f"nach-{index}")
        assert await subjects(apis[0], neu) == sorted(
            [f"alt-{i}" for i in range(3)] + [f"neu-{i}" for i in range(3)] + [f"nach-{i}" for i in range(3)]
        )

        # A bulk check started on one instance, in the background, followed on the other.
        started = (await apis[0](CHECK_ALL, {"input": {"wait": False}}))["spfCheckAll"]
        assert started["userErrors"] == []
        summary = started["summary"]

        async def finished() -> bool:
            progress = (await apis[1](STATUS, {"t": summary["startedAt"]}))["spfCheckStatus"]
            return bool(progress["finished"])

        await eventually(finished, timeout=DEADLINE)
        progress = (await apis[1](STATUS, {"t": summary["startedAt"]}))["spfCheckStatus"]
        assert progress == {
            "total": summary["total"],
            "checked": summary["total"],
            "ok": summary["total"],
            "withProblems": 0,
            "finished": True,
        }

        # Mailbox numbers are never handed out twice, also after a delete and a merge, by either instance.
        later = await asyncio.gather(*(create(apis[i % 2], f"neu{i}") for i in range(4)))
        later_numbers = {mailbox_number(account) for account in later}
        assert len(later_numbers) == 4 and not later_numbers & numbers
        assert min(later_numbers) > max(numbers)

    # One failed sign-in on each instance reaches the limit of 2 per address: the third attempt is throttled.
    async with httpx.AsyncClient(base_url=first.base_url) as a, httpx.AsyncClient(base_url=second.base_url) as b:
        assert (await sign_in(a, "chefin@acme.example", "falsch-falsch-1")).status_code == 401
        assert (await sign_in(b, "chefin@acme.example", "falsch-falsch-2")).status_code == 401
        assert (await sign_in(a, "chefin@acme.example", PASSWORD)).status_code == 429


PENDING = "query P($id: ID!) { account(id: $id) { id pendingOperation { kind progress total } } }"


async def test_a_background_merge_redirects_mail_on_every_listener_and_any_worker_finishes_it(
    db: str, is_postgres: bool
) -> None:
    """A merge above BACKGROUND_OPERATION_MESSAGES started on one instance: every listener delivers the source's
    mail to the target from its start (though each had cached the source), the other instance shows it pending,
    and a `mailaccounts worker` on another "machine" finishes it, after which every listener refuses the source."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: several instances share one PostgreSQL; SQLite serves one machine")
    # No worker in the serve processes: the merge stays pending until the worker below starts.
    settings = {"BACKGROUND_OPERATION_MESSAGES": "2", "JOBS_IN_PROCESS": "false"}
    async with running_instances(db, **settings) as ((first, second), smtp_port, token, env):
        listeners = [first.smtp_port, second.smtp_port, smtp_port]
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as one, httpx.AsyncClient(
            base_url=second.base_url, timeout=30
        ) as two:
            apis = [Api(one, token), Api(two, token)]
            created = [
                (await api(CREATE, {"input": {"email": f"{name}@gut.example", "senderName": name}}))["createAccount"]
                for api, name in ((apis[0], "alt"), (apis[1], "neu"))
            ]
            alt, neu = (Account(payload["account"]) for payload in created)
            for index, port in enumerate(listeners):
                await send(port, alt, f"alt-{index}")
            for port in listeners:
                assert await rcpt_code(port, alt.inbound) == 250

            merged = await apis[1](MERGE, {"input": {"sourceId": alt.id, "targetId": neu.id, "confirm": alt.email}})
            assert merged["mergeAccounts"]["userErrors"] == []
            pending = (await apis[0](PENDING, {"id": alt.id}))["account"]["pendingOperation"]
            assert pending == {"kind": "MERGE", "progress": 0, "total": 3}

            # The source's mail goes to the target on every listener, from the merge's start.
            async def delivered_to_target(index: int) -> bool:
                try:
                    await send(listeners[index], alt, f"waehrend-{index}")
                except aiosmtplib.SMTPResponseException as exc:
                    # 451 while the notification is on its way: accepted at RCPT from the cache, deferred at DATA.
                    assert exc.code == 451, exc
                    return False
                return f"waehrend-{index}" in await subjects(apis[0], neu)

            for index in range(len(listeners)):
                await eventually(lambda index=index: delivered_to_target(index), timeout=DEADLINE)
            assert await subjects(apis[1], alt) == ["alt-0", "alt-1", "alt-2"]

            async with worker_process(env):

                async def source_gone() -> bool:
                    return (await apis[1](PENDING, {"id": alt.id}))["account"] is None

                await eventually(source_gone, timeout=DEADLINE)
            target_subjects = await subjects(apis[0], neu)
            assert [s for s in target_subjects if s.startswith("alt-")] == ["alt-0", "alt-1", "alt-2"]

            async def all_refuse_the_source() -> bool:
                return [await rcpt_code(port, alt.inbound) for port in listeners] == [550] * len(listeners)

            await eventually(all_refuse_the_source, timeout=DEADLINE)
