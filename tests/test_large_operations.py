"""Merges and deletes of large accounts as resumable jobs: the account stops receiving at once, messages move or
go in committed batches, progress shows in the API, and a crash or a killed worker resumes the work (both
databases; the killed worker on PostgreSQL, where a row lock can hold it mid-batch)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import Direction, MailAccount, Mailbox, Message, MessageBody, Scope
from resolvers.account_jobs import (
    BATCH_LIMITS,
    BATCH_SECONDS,
    finish_operation,
    next_batch_size,
    resume_stalled_operations,
    run_batch,
)
from resolvers.accounts import FINISH_OPERATION
from resolvers.intake import DeliveryDeferred, deliver_message
from resolvers.jobs import JobStatus
from resolvers.mailboxes import UnknownMailbox, resolve_recipient
from resolvers.tokens import create_token
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.documents import ACCOUNT, SEND, SET_STATUS, USER_ERRORS
from tests.support.factories import Account, mail, new_account, row_id
from tests.support.jobs import eventually, quick_runner, working
from tests.support.serve import worker_process

# Above this many messages a merge or delete runs in the background in these tests.
ABOVE = 3

PENDING = "pendingOperation { kind progress total startedAt targetId }"
BACKGROUND_MERGE = f"""
mutation Merge($input: MergeAccountsInput!) {{
  mergeAccounts(input: $input) {{ account {{ id }} movedMessageCount deletedAccountId {PENDING} {USER_ERRORS} }}
}}"""
BACKGROUND_DELETE = f"""
mutation Delete($input: DeleteAccountInput!) {{
  deleteAccount(input: $input) {{ deletedAccountId deletedMessageCount {PENDING} {USER_ERRORS} }}
}}"""
ACCOUNT_PENDING = f"""
query Account($id: ID!) {{ account(id: $id) {{ id messageCount {PENDING} }} }}"""
UPDATE = f"""
mutation Update($input: UpdateAccountInput!) {{ updateAccount(input: $input) {{ account {{ id }} {USER_ERRORS} }} }}"""


@pytest.fixture
async def large_api(db: str, settings: Settings) -> AsyncIterator[Api]:
    """The app with its lifespan (jobs enqueued, no worker of its own) and BACKGROUND_OPERATION_MESSAGES = 3."""
    app = build_app(
        replace(settings, background_operation_messages=ABOVE, jobs_in_process=False), manage_database=False
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        )
        yield Api(http, (await create_token("acme", Scope.WRITE)).secret)


async def add_many_messages(account_id: int, count: int) -> None:
    """`count` inbound messages with bodies in two bulk INSERTs (the per-row factory is too slow for thousands)."""
    await Message.bulk_create(
        [
            Message(account_id=account_id, direction=Direction.INBOUND, subject=f"Nr. {i}", size=5)
            for i in range(count)
        ],
        batch_size=1000,
    )
    ids = set(await Message.filter(account_id=account_id).values_list("id", flat=True))
    ids -= set(await MessageBody.filter(message_id__in=ids).values_list("message_id", flat=True))
    await MessageBody.bulk_create([MessageBody(message_id=i, content=b"Hallo") for i in ids], batch_size=1000)


def mailbox_number(account: Account) -> int:
    return int(account["inboundAddress"].split("@")[0][1:])


async def merge(api: Api, source: Account, target: Account) -> dict[str, Any]:
    variables = {"input": {"sourceId": source["id"], "targetId": target["id"], "confirm": source["email"]}}
    payload: dict[str, Any] = (await api(BACKGROUND_MERGE, variables))["mergeAccounts"]
    return payload


async def delete(api: Api, account: Account) -> dict[str, Any]:
    variables = {"input": {"accountId": account["id"], "confirm": account["email"]}}
    payload: dict[str, Any] = (await api(BACKGROUND_DELETE, variables))["deleteAccount"]
    return payload


async def pending_of(api: Api, account: Account) -> dict[str, Any] | None:
    found = (await api(ACCOUNT_PENDING, {"id": account["id"]}))["account"]
    return None if found is None else found["pendingOperation"]


async def test_a_large_merge_redirects_deliveries_at_once_and_moves_everything_in_a_job(
    large_api: Api, db: str, settings: Settings
) -> None:
    """Above the setting, mergeAccounts answers with a pending MERGE; the source's mailbox delivers to the
    target from then on; the job moves every message and deletes the source, releasing its mailbox."""
    source = await new_account(large_api, "alt@firma.example")
    target = await new_account(large_api, "neu@firma.example")
    await add_many_messages(row_id(source), 7)
    await add_many_messages(row_id(target), 2)

    payload = await merge(large_api, source, target)
    assert payload["userErrors"] == []
    assert payload["movedMessageCount"] == 7
    assert payload["deletedAccountId"] == source["id"]
    assert payload["pendingOperation"]["kind"] == "MERGE"
    assert payload["pendingOperation"]["progress"] == 0
    assert payload["pendingOperation"]["total"] == 7
    assert payload["pendingOperation"]["targetId"] == target["id"]
    assert await pending_of(large_api, source) == payload["pendingOperation"]

    # The source's mailbox now delivers to the target, before a single message has moved.
    recipient = await resolve_recipient(source["inboundAddress"], MAILBOX_DOMAIN)
    assert recipient.account_id == row_id(target)
    stored = await deliver_message([recipient], mail(message_id="<waehrend@extern.example>"))
    assert await Message.filter(id__in=stored.stored_message_ids, account_id=row_id(target)).count() == 1

    async with working(quick_runner(db), settings):
        await eventually(lambda: _gone(source))
    assert await Message.filter(account_id=row_id(target)).count() == 7 + 2 + 1
    assert await MessageBody.all().count() == 10
    assert await pending_of(large_api, source) is None
    assert (await large_api(ACCOUNT_PENDING, {"id": target["id"]}))["account"]["pendingOperation"] is None
    assert (await Mailbox.get(number=mailbox_number(source))).released_at is not None
    with pytest.raises(UnknownMailbox):
        await resolve_recipient(source["inboundAddress"], MAILBOX_DOMAIN)


async def _gone(account: Account) -> bool:
    return not await MailAccount.filter(id=row_id(account)).exists()


async def test_a_large_delete_refuses_mail_at_once_and_deletes_everything_in_a_job(
    large_api: Api, db: str, settings: Settings
) -> None:
    """Above the setting, deleteAccount answers with a pending DELETE; the mailbox refuses mail from then on
    (a delivery accepted at RCPT before is deferred); the job deletes every message with its body, then the account."""
    account = await new_account(large_api, "weg@firma.example")
    keep = await new_account(large_api, "bleibt@firma.example")
    await add_many_messages(row_id(account), 5)
    await add_many_messages(row_id(keep), 1)
    accepted_before = await resolve_recipient(account["inboundAddress"], MAILBOX_DOMAIN)

    payload = await delete(large_api, account)
    assert payload["userErrors"] == []
    assert payload["deletedAccountId"] == account["id"]
    assert payload["deletedMessageCount"] == 5
    assert payload["pendingOperation"]["kind"] == "DELETE"
    assert payload["pendingOperation"]["total"] == 5
    assert payload["pendingOperation"]["targetId"] is None

    with pytest.raises(UnknownMailbox):
        await resolve_recipient(account["inboundAddress"], MAILBOX_DOMAIN)
    with pytest.raises(DeliveryDeferred):
        await deliver_message([accepted_before], mail())

    async with working(quick_runner(db), settings):
        await eventually(lambda: _gone(account))
    assert await Message.all().count() == 1
    assert await MessageBody.all().count() == 1
    assert (await Mailbox.get(number=mailbox_number(account))).released_at is not None


async def test_small_merges_and_deletes_stay_one_transaction(large_api: Api) -> None:
    """Up to the setting nothing is pending: the merge and the delete are done when the mutation answers."""
    source = await new_account(large_api, "alt@firma.example")
    target = await new_account(large_api, "neu@firma.example")
    await add_many_messages(row_id(source), ABOVE)
    payload = await merge(large_api, source, target)
    assert payload["pendingOperation"] is None
    assert payload["movedMessageCount"] == ABOVE
    assert await _gone(source)
    payload = await delete(large_api, target)
    assert payload["pendingOperation"] is None
    assert payload["deletedMessageCount"] == ABOVE
    assert await _gone(target)


async def test_an_account_in_a_running_operation_refuses_other_changes(large_api: Api) -> None:
    """While a merge runs: its source cannot be edited, switched, deleted, merged or sent from, and its target
    cannot be deleted or merged away (OPERATION_PENDING); the target can still be edited."""
    source = await new_account(large_api, "alt@firma.example")
    target = await new_account(large_api, "neu@firma.example")
    other = await new_account(large_api, "dritt@firma.example")
    await add_many_messages(row_id(source), 5)
    assert (await merge(large_api, source, target))["pendingOperation"] is not None

    def codes(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
        return [(e["code"], e["field"]) for e in payload["userErrors"]]

    switched = await large_api(SET_STATUS, {"input": {"accountId": source["id"], "status": "INACTIVE"}})
    assert codes(switched["setStatus"]) == [("OPERATION_PENDING", ["input", "accountId"])]
    edited = await large_api(UPDATE, {"input": {"accountId": source["id"], "senderName": "Neu"}})
    assert codes(edited["updateAccount"]) == [("OPERATION_PENDING", ["input", "accountId"])]
    assert codes(await delete(large_api, source)) == [("OPERATION_PENDING", ["input", "accountId"])]
    assert codes(await merge(large_api, source, other)) == [("OPERATION_PENDING", ["input", "sourceId"])]
    assert codes(await delete(large_api, target)) == [("OPERATION_PENDING", ["input", "accountId"])]
    assert codes(await merge(large_api, target, other)) == [("OPERATION_PENDING", ["input", "sourceId"])]
    assert codes(await merge(large_api, other, source)) == [("OPERATION_PENDING", ["input", "targetId"])]
    draft = {"accountId": source["id"], "to": ["kunde@extern.example"], "subject": "Hallo"}
    sent = await large_api(SEND, {"input": draft})
    assert codes(sent["sendMessage"]) == [("OPERATION_PENDING", ["input", "accountId"])]
    edited = await large_api(UPDATE, {"input": {"accountId": target["id"], "senderName": "Neu"}})
    assert codes(edited["updateAccount"]) == []
    assert (await large_api(ACCOUNT, {"id": source["id"]}))["account"]["status"] == "ACTIVE"


async def test_progress_is_committed_per_batch_and_a_rerun_resumes(large_api: Api) -> None:
    """Each batch commits its messages and its progress; after a run that stopped between batches (a killed
    worker), the next run handles only what is left, and the end state equals the single transaction's."""
    source = await new_account(large_api, "alt@firma.example")
    target = await new_account(large_api, "neu@firma.example")
    await add_many_messages(row_id(source), 10)
    await merge(large_api, source, target)

    # A worker that ran two batches of 4 and died.
    first = await run_batch(row_id(source), 4)
    assert first
    assert (await pending_of(large_api, source))["progress"] == 4  # type: ignore[index]
    assert await run_batch(row_id(source), 4, after=first)
    assert (await pending_of(large_api, source))["progress"] == 8  # type: ignore[index]
    assert await Message.filter(account_id=row_id(target)).count() == 8

    await finish_operation(row_id(source), batch=4)
    assert await _gone(source)
    assert await Message.filter(account_id=row_id(target)).count() == 10
    assert await MessageBody.all().count() == 10
    # A run of a finished operation (a duplicate job) does nothing.
    await finish_operation(row_id(source), batch=4)
    assert await run_batch(row_id(source), 4) is None


async def test_the_periodic_resume_finishes_an_operation_that_lost_its_job(large_api: Api) -> None:
    """An operation whose job never ran (its enqueue failed) and that made no progress for a while is finished
    by the periodic resume; a fresh one is left to its own job."""
    account = await new_account(large_api, "weg@firma.example")
    await add_many_messages(row_id(account), 5)
    await delete(large_api, account)
    assert await resume_stalled_operations() == 0
    assert not await _gone(account)
    await MailAccount.filter(id=row_id(account)).update(updated_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert await resume_stalled_operations() == 1
    assert await _gone(account)
    assert await Message.all().count() == 0


async def test_the_job_is_enqueued_once_per_operation(large_api: Api, db: str) -> None:
    """Starting a background operation enqueues one finishing job for the account, keyed by its lock."""
    account = await new_account(large_api, "weg@firma.example")
    await add_many_messages(row_id(account), 5)
    await delete(large_api, account)
    runner = quick_runner(db)
    async with runner.open():
        jobs = [job for job in await runner.jobs() if job.task == FINISH_OPERATION]
    assert [(job.status, job.args.get("account_id")) for job in jobs] == [(JobStatus.TODO, row_id(account))]


async def test_a_killed_worker_leaves_a_merge_that_another_worker_finishes(
    large_api: Api, db: str, settings: Settings, is_postgres: bool
) -> None:
    """SIGKILL a `mailaccounts worker` in the middle of a large merge (its second batch waits on a row lock the
    test holds): the committed first batch stays, a second worker finishes the rest, no message is lost."""
    if not is_postgres:
        pytest.skip("needs a row lock that holds the worker mid-batch: PostgreSQL (SQLite has no row locks)")
    from resolvers.account_jobs import BATCH_MESSAGES

    source = await new_account(large_api, "alt@firma.example")
    target = await new_account(large_api, "neu@firma.example")
    total = BATCH_MESSAGES + 500
    await add_many_messages(row_id(source), total)
    # The first message of the second batch, locked by the test: the worker's second batch waits for it.
    second_batch_first = (await Message.filter(account_id=row_id(source)).order_by("id").offset(BATCH_MESSAGES))[0]
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "LOG_LEVEL": "WARNING",
        "JOBS_STALLED_AFTER": "3",
        "MAILBOX_DOMAIN": MAILBOX_DOMAIN,
    }
    import asyncpg

    conn = await asyncpg.connect(db.replace("postgres://", "postgresql://", 1))
    try:
        lock = conn.transaction()
        await lock.start()
        await conn.execute("SELECT id FROM message WHERE id = $1 FOR UPDATE", second_batch_first.id)
        assert (await merge(large_api, source, target))["pendingOperation"]["total"] == total

        async with worker_process(env) as first:
            await eventually(lambda: _progress_is(source, BATCH_MESSAGES), timeout=60)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        await lock.rollback()
    finally:
        await conn.close()
    assert await Message.filter(account_id=row_id(target)).count() == BATCH_MESSAGES

    async with worker_process(env):
        await eventually(lambda: _gone(source), timeout=120)
    assert await Message.filter(account_id=row_id(target)).count() == total
    assert await MessageBody.all().count() == total


async def _progress_is(account: Account, done: int) -> bool:
    row = await MailAccount.filter(id=row_id(account)).values("operation_done")
    return bool(row) and row[0]["operation_done"] == done


def test_batches_adapt_to_their_time() -> None:
    """A batch that took over twice BATCH_SECONDS halves the next one, one under half of it doubles it, within
    BATCH_LIMITS: so a lock lasts about BATCH_SECONDS however big the bodies and however loaded the database."""
    low, high = BATCH_LIMITS
    assert next_batch_size(2000, BATCH_SECONDS * 3) == 1000
    assert next_batch_size(2000, BATCH_SECONDS / 3) == 4000
    assert next_batch_size(2000, BATCH_SECONDS) == 2000
    assert next_batch_size(low, BATCH_SECONDS * 10) == low
    assert next_batch_size(high, 0.0) == high
