"""Storing received mail: the batched insert, one delivery path, and the listener's recipient cache."""

from __future__ import annotations

import asyncio

import pytest

from orm.models import Direction, Message, MessageBody
from resolvers.intake import _MESSAGE_COLUMNS, DeliveryDeferred, DeliveryQueue, deliver_message
from resolvers.mailboxes import MailboxDisabled, Recipient, RecipientCache, UnknownMailbox
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.documents import DELETE, SET_STATUS
from tests.support.factories import Account, mail, new_account
from tests.support.smtp import MAX_CONNECTIONS, deliver


def recipient(account: Account, is_bounce: bool = False) -> Recipient:
    number = int(account.inbound.split("@")[0][1:])
    return Recipient(account_id=account.row_id, mailbox_number=number, is_bounce=is_bounce)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_insert_columns_are_the_message_model(db: str) -> None:
    """The raw multi-row INSERT names every column of Message except the generated id, so a new field fails here."""
    columns = set(Message._meta.db_fields) - {"id"}
    assert set(_MESSAGE_COLUMNS) == columns


async def test_concurrent_deliveries_keep_each_header_row_with_its_own_body(api: Api, listener: int) -> None:
    """Messages stored together in one batch each keep their own raw bytes: subject, size and body match per row."""
    accounts = [await new_account(api, f"k{i}@firma.example") for i in range(3)]
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(i: int) -> int:
        rcpts = [accounts[i % 3].inbound] if i % 2 else [a.inbound for a in accounts]
        raw = mail(subject=f"Nr. {i}", message_id=f"<batch-{i}@x.example>", body=f"Inhalt {i}\r\n" * (i + 1))
        async with slots:
            return (await deliver(listener, rcpts, raw)).code

    assert await asyncio.gather(*(one(i) for i in range(24))) == [250] * 24
    rows = await Message.all().order_by("id")
    assert len(rows) == 12 * 3 + 12
    for row in rows:
        content = bytes((await MessageBody.get(message_id=row.id)).content)
        number = int(row.subject.removeprefix("Nr. "))
        assert row.message_id_header == f"<batch-{number}@x.example>"
        assert row.size == len(content)
        assert content.endswith(f"Inhalt {number}\r\n".encode() * (number + 1))


async def test_deliveries_queued_together_keep_their_own_outcomes(api: Api) -> None:
    """One transaction for several deliveries: a gone account defers only its message, a Message-ID repeated
    within the batch is stored once per account, bounce flags and directions are per account."""
    first = await new_account(api, "a@firma.example")
    second = await new_account(api, "b@firma.example")
    gone = await new_account(api, "weg@firma.example")
    await api(DELETE, {"input": {"accountId": gone.id, "confirm": gone.email}})
    queue = DeliveryQueue()
    results = await asyncio.gather(
        queue.deliver([recipient(first), recipient(second, is_bounce=True)], mail(message_id="<x@e.example>")),
        queue.deliver([recipient(gone)], mail(message_id="<y@e.example>")),
        queue.deliver([recipient(first)], mail(message_id="<x@e.example>")),
        queue.deliver([recipient(second)], mail(message_id=None)),
        return_exceptions=True,
    )
    stored, deferred, duplicate, without_id = results
    assert isinstance(deferred, DeliveryDeferred)
    assert not isinstance(stored, BaseException) and len(stored.stored_message_ids) == 2
    assert not isinstance(duplicate, BaseException)
    assert (duplicate.stored_message_ids, duplicate.duplicate_account_ids) == ([], [first.row_id])
    assert not isinstance(without_id, BaseException) and len(without_id.stored_message_ids) == 1
    rows = await Message.filter(id__in=stored.stored_message_ids).order_by("account_id")
    assert [(r.account_id, r.is_bounce, r.direction) for r in rows] == [
        (first.row_id, False, Direction.INBOUND),
        (second.row_id, True, Direction.INBOUND),
    ]
    assert await Message.all().count() == 3
    bodies = {row.message_id: bytes(row.content) for row in await MessageBody.all()}
    assert bodies[without_id.stored_message_ids[0]] == mail(message_id=None)
    assert all(bodies[i] == mail(message_id="<x@e.example>") for i in stored.stored_message_ids)


async def test_single_delivery_takes_the_same_path(api: Api) -> None:
    """deliver_message stores one copy per account, skips a known Message-ID and defers for a disabled account."""
    account = await new_account(api, "vertrieb@firma.example")
    result = await deliver_message([recipient(account), recipient(account)], mail())
    assert len(result.stored_message_ids) == 1
    again = await deliver_message([recipient(account)], mail())
    assert (again.stored_message_ids, again.duplicate_account_ids) == ([], [account.row_id])
    await api(SET_STATUS, {"input": {"accountId": account.id, "status": "INACTIVE"}})
    with pytest.raises(DeliveryDeferred):
        await deliver_message([recipient(account)], mail(message_id="<neu@x.example>"))
    assert await Message.all().count() == 1
    assert (await deliver_message([], mail())).stored_message_ids == []


async def test_recipient_cache_remembers_acceptances_until_ttl_or_forget(api: Api) -> None:
    """An accepted mailbox is answered from memory for `ttl` seconds (even after the account was disabled),
    then or after `forget` it is looked up again and gets the current answer."""
    account = await new_account(api, "vertrieb@firma.example")
    clock = Clock()
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=5.0, clock=clock)
    assert await cache.resolve(account.inbound) == recipient(account)
    assert await cache.resolve(account.outbound.upper()) == recipient(account, is_bounce=True)
    await api(SET_STATUS, {"input": {"accountId": account.id, "status": "INACTIVE"}})
    clock.now += 4.9
    assert await cache.resolve(account.inbound) == recipient(account)
    clock.now += 0.2
    with pytest.raises(MailboxDisabled):
        await cache.resolve(account.inbound)
    await api(SET_STATUS, {"input": {"accountId": account.id, "status": "ACTIVE"}})
    assert await cache.resolve(account.inbound) == recipient(account)
    await api(DELETE, {"input": {"accountId": account.id, "confirm": account.email}})
    cache.forget([recipient(account)])
    with pytest.raises(UnknownMailbox):
        await cache.resolve(account.inbound)


async def test_recipient_cache_never_remembers_a_refusal(api: Api) -> None:
    """A refused mailbox is looked up every time, so an account activated again is accepted at once."""
    account = await new_account(api, "ruhe@firma.example", active=False)
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=60.0)
    with pytest.raises(MailboxDisabled):
        await cache.resolve(account.inbound)
    await api(SET_STATUS, {"input": {"accountId": account.id, "status": "ACTIVE"}})
    assert await cache.resolve(account.inbound) == recipient(account)


async def test_recipient_cache_is_bounded(api: Api) -> None:
    """Beyond `max_entries` the oldest acceptance is dropped and looked up again next time."""
    first = await new_account(api, "a@firma.example")
    second = await new_account(api, "b@firma.example")
    cache = RecipientCache(MAILBOX_DOMAIN, ttl=60.0, max_entries=1)
    await cache.resolve(first.inbound)
    await cache.resolve(second.inbound)
    await api(SET_STATUS, {"input": {"accountId": first.id, "status": "INACTIVE"}})
    with pytest.raises(MailboxDisabled):
        await cache.resolve(first.inbound)
