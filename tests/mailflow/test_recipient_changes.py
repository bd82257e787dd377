"""The listener's RCPT cache hears of account changes committed on other connections and in other processes
(resolvers/mailbox_changes.py, migration 0006), on both databases; the TTL is an hour, so no test waits for it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from orm.models import MailAccount, PendingOperation
from resolvers.mailbox_changes import LISTEN_APPLICATION_NAME, MailboxChanges, open_mailbox_changes
from resolvers.mailboxes import MailboxDisabled, Recipient, RecipientCache, UnknownMailbox
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.documents import DELETE, MERGE, SET_STATUS
from tests.support.factories import Account, new_account
from tests.support.jobs import eventually
from tests.support.serve import smtp_process
from tests.support.smtp import smtp_session

HOUR = 3600.0


def number(account: Account) -> int:
    return int(account.inbound.split("@")[0][1:])


def recipient(account: Account, delivers_to: Account | None = None) -> Recipient:
    return Recipient(account_id=(delivers_to or account).row_id, mailbox_number=number(account), is_bounce=False)


@pytest.fixture
async def changes(db: str) -> AsyncIterator[MailboxChanges]:
    """This process's feed of committed account changes, on its own connection."""
    async with open_mailbox_changes() as feed:
        yield feed


async def test_deactivate_delete_and_merge_elsewhere_drop_the_cached_acceptance_at_once(
    api: Api, changes: MailboxChanges
) -> None:
    """Each change committed through the API (another connection than the feed's) drops the mailbox from a cache
    with a TTL of an hour before the next RCPT: 550 at once, while a cache without the feed still says 250."""
    inactive, deleted, source, target = [
        await new_account(api, f"{name}@firma.example") for name in ("ruhe", "weg", "alt", "neu")
    ]
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR, changes=changes)
    blind = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR)  # the same cache without the feed: stale for an hour
    for account in (inactive, deleted, source, target):
        for each in (cache, blind):
            assert await each.resolve(account.inbound) == recipient(account)
        assert number(account) in cache

    await api(SET_STATUS, {"input": {"accountId": inactive.id, "status": "INACTIVE"}})
    await api(DELETE, {"input": {"accountId": deleted.id, "confirm": deleted.email}})
    merged = await api(MERGE, {"input": {"sourceId": source.id, "targetId": target.id, "confirm": source.email}})
    assert merged["mergeAccounts"]["userErrors"] == []
    await changes.barrier()

    assert [number(account) in cache for account in (inactive, deleted, source, target)] == [False, False, False, True]
    with pytest.raises(MailboxDisabled):
        await cache.resolve(inactive.inbound)
    for gone in (deleted, source):
        with pytest.raises(UnknownMailbox):
            await cache.resolve(gone.inbound)
    assert await cache.resolve(target.inbound) == recipient(target)
    for account in (inactive, deleted, source):
        assert await blind.resolve(account.inbound) == recipient(account)


async def test_a_rolled_back_change_keeps_the_acceptance(api: Api, changes: MailboxChanges) -> None:
    """A deactivation that is rolled back announces nothing: the mailbox stays cached and accepted."""
    account = await new_account(api, "vertrieb@firma.example")
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR, changes=changes)
    await cache.resolve(account.inbound)

    with pytest.raises(RuntimeError):
        async with in_transaction():
            await MailAccount.filter(id=account.row_id).update(active=False)
            raise RuntimeError("roll back")
    await changes.barrier()
    assert changes.caught_up()
    assert number(account) in cache
    assert await cache.resolve(account.inbound) == recipient(account)

    await MailAccount.filter(id=account.row_id).update(active=False)
    await changes.barrier()
    assert number(account) not in cache


async def test_pending_operations_and_the_merge_target_are_announced(api: Api, changes: MailboxChanges) -> None:
    """A delete or merge starting in the background drops the mailbox; during a merge the source delivers to
    the target, and a change of the target drops the source's cached redirect too."""
    deleting, source, target = [await new_account(api, f"{name}@firma.example") for name in ("weg", "alt", "neu")]
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR, changes=changes)
    for account in (deleting, source, target):
        await cache.resolve(account.inbound)

    await MailAccount.filter(id=deleting.row_id).update(pending_operation=PendingOperation.DELETE)
    await MailAccount.filter(id=source.row_id).update(
        pending_operation=PendingOperation.MERGE, merge_target_id=target.row_id
    )
    await changes.barrier()
    assert [number(account) in cache for account in (deleting, source, target)] == [False, False, True]
    with pytest.raises(UnknownMailbox):
        await cache.resolve(deleting.inbound)
    assert await cache.resolve(source.inbound) == recipient(source, delivers_to=target)

    await MailAccount.filter(id=target.row_id).update(active=False)
    await changes.barrier()
    assert number(source) not in cache and number(target) not in cache
    with pytest.raises(MailboxDisabled):
        await cache.resolve(source.inbound)


async def test_an_unrelated_update_keeps_the_acceptance(api: Api, changes: MailboxChanges) -> None:
    """Updates of other columns (the SPF check writes every account) announce nothing."""
    account = await new_account(api, "vertrieb@firma.example")
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR, changes=changes)
    await cache.resolve(account.inbound)
    await MailAccount.filter(id=account.row_id).update(spf_ok=True, sender_name="Neu")
    await changes.barrier()
    assert number(account) in cache


async def test_a_lost_listen_connection_gives_no_stale_answer(
    api: Api, changes: MailboxChanges, is_postgres: bool
) -> None:
    """PostgreSQL: when the LISTEN connection is killed, the cache is bypassed (a change made meanwhile is
    refused, although its notification went nowhere) and emptied; once listening again it caches anew."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite reads its change log on every RCPT, there is no connection to lose")
    account = await new_account(api, "vertrieb@firma.example")
    other = await new_account(api, "andere@firma.example")
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR, changes=changes)
    await cache.resolve(account.inbound)
    await cache.resolve(other.inbound)

    await connections.get("default").execute_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [LISTEN_APPLICATION_NAME],
    )
    await eventually(lambda: number(other) not in cache)  # told at once, before it listens again
    await MailAccount.filter(id=account.row_id).update(active=False)
    with pytest.raises(MailboxDisabled):
        await cache.resolve(account.inbound)

    await eventually(changes.caught_up)
    assert await cache.resolve(other.inbound) == recipient(other)
    assert number(other) in cache


async def test_a_listener_process_refuses_at_once_what_this_process_changed(
    api: Api, database_url: str, is_postgres: bool
) -> None:
    """`mailaccounts smtp` (another process, RCPT cache TTL one hour) answers 550 for a mailbox deactivated
    here right after it had accepted it, and 250 again once it is active again."""
    account = await new_account(api, "vertrieb@firma.example")
    env = {**os.environ, "DATABASE_URL": database_url, "SMTP_RECIPIENT_CACHE_TTL": "3600", "LOG_LEVEL": "WARNING"}
    async with smtp_process(env) as port:
        client = await smtp_session(port)
        try:
            await client.mail("absender@extern.example")

            async def rcpt() -> int:
                code: int = (await client.execute_command(b"RCPT", b"TO:<" + account.inbound.encode() + b">")).code
                return code

            async def refused() -> bool:
                return await rcpt() == 550

            assert await rcpt() == 250
            await api(SET_STATUS, {"input": {"accountId": account.id, "status": "INACTIVE"}})
            if is_postgres:
                # The notification leaves at COMMIT and arrives in about a millisecond, not before the mutation
                # returned: waiting for it is bounded far below the TTL, so the cache cannot be what ends it.
                await eventually(refused, timeout=30)
            else:
                assert await refused()  # the change log is read before the cache is trusted
            await api(SET_STATUS, {"input": {"accountId": account.id, "status": "ACTIVE"}})
            assert await rcpt() == 250  # refusals are never cached
        finally:
            client.close()


async def test_sqlite_keeps_the_newest_10000_changes_and_a_gap_empties_the_cache(
    api: Api, changes: MailboxChanges, is_postgres: bool
) -> None:
    """SQLite: the triggers keep the newest 10,000 log entries; a listener that finds the entries after the
    last one it read pruned away drops every cached acceptance."""
    if is_postgres:
        pytest.skip("SQLite only: PostgreSQL announces changes by NOTIFY and keeps no log")
    first, second = await new_account(api, "a@firma.example"), await new_account(api, "b@firma.example")
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=HOUR, changes=changes)
    await cache.resolve(first.inbound)
    await cache.resolve(second.inbound)
    await changes.barrier()

    toggles = "".join(
        f"UPDATE mail_account SET active = {i % 2} WHERE id = {first.row_id};" for i in range(10_001)
    )
    conn = connections.get("default")
    await conn.execute_script(f"BEGIN; {toggles} COMMIT;")
    rows = await conn.execute_query_dict("SELECT count(*) AS n, min(id) AS low, max(id) AS high FROM mailbox_change")
    assert rows[0]["n"] == 10_000 and rows[0]["high"] - rows[0]["low"] == 9_999
    await changes.barrier()
    assert number(first) not in cache and number(second) not in cache  # the gap: everything dropped
