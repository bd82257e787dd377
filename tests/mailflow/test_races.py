"""Delivery racing merge and delete: a message lands in the target before the move, or the sender gets 4xx/5xx."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiosmtplib
import pytest

from orm.models import Message
from tests.support.api import Api
from tests.support.documents import DELETE, MERGE
from tests.support.factories import Account, mail, new_account
from tests.support.smtp import MAX_CONNECTIONS, deliver, smtp_session


async def merge(api: Api, source: Account, target: Account) -> None:
    payload = await api(MERGE, {"input": {"sourceId": source.id, "targetId": target.id, "confirm": source.email}})
    assert payload["mergeAccounts"]["userErrors"] == []


async def data_after_rcpt(port: int, rcpt: str) -> tuple[aiosmtplib.SMTP, int]:
    """Open a transaction up to an accepted RCPT; the caller sends DATA later."""
    client = await smtp_session(port)
    await client.mail("absender@extern.example")
    response = await client.execute_command(b"RCPT", f"TO:<{rcpt}>".encode())
    return client, response.code


async def finish_data(client: aiosmtplib.SMTP, raw: bytes) -> tuple[int, str]:
    try:
        response = await client.data(raw)
        return response.code, response.message
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    finally:
        await client.quit()


@pytest.mark.parametrize("removal", ["merge", "delete"])
async def test_account_removed_between_rcpt_and_data_gets_451(api: Api, listener: int, removal: str) -> None:
    """If the account is merged away or deleted after RCPT, DATA answers 451 and stores nothing;
    the sender's retry then gets 550 5.1.1."""
    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")
    client, code = await data_after_rcpt(listener, source.inbound)
    assert code == 250
    if removal == "merge":
        await merge(api, source, target)
    else:
        await api(DELETE, {"input": {"accountId": source.id, "confirm": source.email}})
    code, text = await finish_data(client, mail())
    assert (code, text[:5]) == (451, "4.2.1")
    assert await Message.all().count() == 0
    retry = await deliver(listener, [source.inbound], mail())
    assert (retry.code, retry.text[:5]) == (550, "5.1.1")


async def test_account_disabled_between_rcpt_and_data_gets_451(api: Api, listener: int) -> None:
    """Deactivating after RCPT defers the message; the retry gets 550 5.2.1."""
    from tests.support.documents import SET_STATUS

    account = await new_account(api, "ruhe@firma.example")
    client, _ = await data_after_rcpt(listener, account.inbound)
    await api(SET_STATUS, {"input": {"accountId": account.id, "status": "INACTIVE"}})
    code, _ = await finish_data(client, mail())
    assert code == 451
    assert (await deliver(listener, [account.inbound], mail())).code == 550


async def test_delivery_waits_for_a_merge_lock_and_then_is_deferred(
    api: Api, listener: int, is_postgres: bool, database_url: str
) -> None:
    """PostgreSQL: while a merge holds FOR UPDATE on the source, the insert waits; after the merge
    commits the row is refused by the RESTRICT foreign key and the sender gets 451, nothing is lost."""
    if not is_postgres:
        pytest.skip("row locks exist only on PostgreSQL; SQLite serializes the writers")
    import asyncpg

    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")
    parts = urlsplit(database_url)
    conn = await asyncpg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
        password=parts.password, database=parts.path.lstrip("/"),
    )
    try:
        client, _ = await data_after_rcpt(listener, source.inbound)
        merge_tx = conn.transaction()
        await merge_tx.start()
        # The statements of resolvers.accounts.merge_accounts, held open at the worst moment.
        await conn.execute(
            "SELECT id FROM mail_account WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE",
            sorted([source.row_id, target.row_id]),
        )
        await conn.execute("UPDATE message SET account_id = $1 WHERE account_id = $2", target.row_id, source.row_id)
        await conn.execute("DELETE FROM mail_account WHERE id = $1", source.row_id)
        pending = asyncio.create_task(finish_data(client, mail()))
        await asyncio.sleep(0.5)
        assert not pending.done(), "the insert should wait for the merge's lock"
        await merge_tx.commit()
        code, _ = await asyncio.wait_for(pending, 10)
    finally:
        await conn.close()
    assert code == 451
    assert await Message.all().count() == 0


@pytest.mark.parametrize("removal", ["merge", "delete"])
async def test_concurrent_deliveries_and_removal_lose_nothing(api: Api, listener: int, removal: str) -> None:
    """Many deliveries racing a merge (or delete): every 250 message is in the target (or was deleted with
    the account), nothing is stored elsewhere, and every other delivery got 4xx/5xx."""
    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")

    slots = asyncio.Semaphore(MAX_CONNECTIONS - 2)

    async def one(i: int) -> int:
        await asyncio.sleep(i * 0.005)
        async with slots:
            return (await deliver(listener, [source.inbound], mail(message_id=f"<race-{i}@x.example>"))).code

    deliveries = [asyncio.create_task(one(i)) for i in range(30)]
    await asyncio.sleep(0.05)
    if removal == "merge":
        await merge(api, source, target)
    else:
        await api(DELETE, {"input": {"accountId": source.id, "confirm": source.email}})
    codes = await asyncio.gather(*deliveries)
    assert all(code == 250 or 400 <= code < 600 for code in codes)
    accepted = {f"<race-{i}@x.example>" for i, code in enumerate(codes) if code == 250}
    in_target = set(await Message.filter(account_id=target.row_id).values_list("message_id_header", flat=True))
    if removal == "merge":
        assert in_target == accepted
    else:
        assert in_target == set()
    assert await Message.filter(account_id=source.row_id).count() == 0
    assert await Message.all().count() == len(in_target)
    assert any(code != 250 for code in codes), "the removal should have happened during the deliveries"
