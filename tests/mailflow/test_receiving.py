"""The SMTP listener over loopback: reply codes, stored fields, copies per mailbox, duplicates, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiosmtplib

from orm.models import Direction, Message, MessageBody
from tests.support.api import Api
from tests.support.documents import DELETE, MERGE
from tests.support.factories import mail, new_account
from tests.support.smtp import MAX_CONNECTIONS, MAX_MESSAGE_BYTES, deliver, smtp_session


async def stored(account_id: int) -> list[Message]:
    return await Message.filter(account_id=account_id).order_by("id")


async def test_active_mailbox_gets_250_and_the_message_is_stored(api: Api, listener: int) -> None:
    """RCPT to pN@ of an active account is accepted; DATA stores the message and answers 250."""
    account = await new_account(api, "vertrieb@firma.example")
    reply = await deliver(listener, [account.inbound], mail(to=account.inbound))
    assert reply.code == 250
    assert [m.direction for m in await stored(account.row_id)] == [Direction.INBOUND]


async def test_unknown_deleted_and_merged_mailboxes_get_550_5_1_1(api: Api, listener: int) -> None:
    """Unknown numbers, malformed local parts, deleted and merged-away mailboxes answer 550 5.1.1."""
    deleted = await new_account(api, "weg@firma.example")
    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")
    await api(DELETE, {"input": {"accountId": deleted.id, "confirm": deleted.email}})
    merged = await api(MERGE, {"input": {"sourceId": source.id, "targetId": target.id, "confirm": source.email}})
    assert merged["mergeAccounts"]["userErrors"] == []
    for rcpt in [deleted.inbound, source.inbound, source.outbound, "p999999@mailbox.example.com",
                 "info@mailbox.example.com", "p0@mailbox.example.com", "p12x@mailbox.example.com"]:
        reply = await deliver(listener, [rcpt], mail())
        assert (reply.code, reply.text[:5]) == (550, "5.1.1"), rcpt
    assert await Message.all().count() == 0


async def test_inactive_account_gets_550_5_2_1(api: Api, listener: int) -> None:
    """An inactive account's inbound and bounce addresses answer 550 5.2.1 (mailbox disabled)."""
    account = await new_account(api, "ruhe@firma.example", active=False)
    for rcpt in (account.inbound, account.outbound):
        reply = await deliver(listener, [rcpt], mail())
        assert (reply.code, reply.text[:5]) == (550, "5.2.1")
    assert await Message.all().count() == 0


async def test_other_domains_are_not_relayed(api: Api, listener: int) -> None:
    """Any other domain, even a subdomain or the account's own address, answers 550 5.7.1."""
    account = await new_account(api, "vertrieb@firma.example")
    for rcpt in ["jemand@example.com", account.email, "p1@sub.mailbox.example.com", "p1@mailbox.example.com.evil"]:
        reply = await deliver(listener, [rcpt], mail())
        assert (reply.code, reply.text[:5]) == (550, "5.7.1"), rcpt


async def test_address_is_case_insensitive(api: Api, listener: int) -> None:
    """`P<N>@MAILBOX.EXAMPLE.COM` is the same mailbox."""
    account = await new_account(api, "vertrieb@firma.example")
    reply = await deliver(listener, [account.inbound.upper()], mail())
    assert reply.code == 250
    assert len(await stored(account.row_id)) == 1


async def test_message_over_the_limit_gets_552(api: Api, listener: int) -> None:
    """A message larger than SMTP_MAX_MESSAGE_BYTES is refused with 552 and not stored."""
    account = await new_account(api, "vertrieb@firma.example")
    big = mail(body=("x" * 76 + "\r\n") * (MAX_MESSAGE_BYTES // 78 + 10))
    reply = await deliver(listener, [account.inbound], big)
    assert reply.code == 552
    assert await Message.all().count() == 0


async def test_size_declared_too_large_in_mail_from_gets_552(api: Api, listener: int) -> None:
    """MAIL FROM with SIZE= above the limit is refused before any data is sent."""
    client = await smtp_session(listener)
    try:
        command = f"FROM:<a@extern.example> SIZE={MAX_MESSAGE_BYTES + 1}".encode()
        response = await client.execute_command(b"MAIL", command)
        assert response.code == 552
    finally:
        await client.quit()


async def test_stored_fields_and_raw_bytes(api: Api, listener: int) -> None:
    """Raw bytes are stored unchanged; Message-ID, From, To, decoded Subject, Date and size are parsed."""
    account = await new_account(api, "vertrieb@firma.example")
    raw = mail(subject="=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", to=account.inbound)
    assert (await deliver(listener, [account.inbound], raw)).code == 250
    [message] = await stored(account.row_id)
    assert message.message_id_header == "<angebot-1@extern.example>"
    assert message.from_header == "Erika Mustermann <erika@extern.example>"
    assert message.to_header == account.inbound
    assert message.subject == "Grüße aus Köln"
    assert message.date == datetime(2025, 6, 3, 8, 15, tzinfo=UTC)
    assert message.size == len(raw)
    assert message.is_bounce is False
    body = await MessageBody.get(message_id=message.id)
    assert bytes(body.content) == raw


async def test_dot_stuffed_lines_and_8bit_bytes_arrive_unchanged(api: Api, listener: int) -> None:
    """Lines starting with a dot and non-UTF-8 bytes are stored exactly as the sender meant them."""
    account = await new_account(api, "vertrieb@firma.example")
    raw = mail(body=".eine Zeile mit Punkt\r\n..zwei Punkte\r\n") + b"Latin-1: \xe4\xf6\xfc\r\n"
    assert (await deliver(listener, [account.inbound], raw)).code == 250
    [message] = await stored(account.row_id)
    assert bytes((await MessageBody.get(message_id=message.id)).content) == raw


async def test_several_recipients_get_one_copy_each(api: Api, listener: int) -> None:
    """One message to three mailboxes (one named twice) stores one copy per mailbox."""
    accounts = [await new_account(api, f"k{i}@firma.example") for i in range(3)]
    rcpts = [a.inbound for a in accounts] + [accounts[0].inbound.upper()]
    assert (await deliver(listener, rcpts, mail())).code == 250
    for account in accounts:
        assert len(await stored(account.row_id)) == 1


async def test_refused_recipient_does_not_stop_the_others(api: Api, listener: int) -> None:
    """With one unknown and one valid recipient, the valid one gets the message."""
    account = await new_account(api, "vertrieb@firma.example")
    reply = await deliver(listener, ["p999999@mailbox.example.com", account.inbound], mail())
    assert reply.code == 250
    assert len(await stored(account.row_id)) == 1


async def test_broken_headers_and_mime_are_stored_raw(api: Api, listener: int) -> None:
    """A message with garbage headers, a bad date and broken MIME is stored raw with empty fields."""
    account = await new_account(api, "vertrieb@firma.example")
    raw = (
        b"From: <<<kaputt\r\nSubject: =?bogus?x?zzz?=\r\nDate: gestern irgendwann\r\n"
        b"Message-ID: ohne-klammern\r\nContent-Type: multipart/mixed; boundary=\r\n"
        b"Header ohne Doppelpunkt\r\n\r\n--nix\r\n\xff\xfe\x00\r\n"
    )
    assert (await deliver(listener, [account.inbound], raw)).code == 250
    [message] = await stored(account.row_id)
    assert message.date is None
    assert message.size == len(raw)
    assert bytes((await MessageBody.get(message_id=message.id)).content) == raw


async def test_message_without_headers_is_stored(api: Api, listener: int) -> None:
    """Even a body without any header is stored (empty fields, no Message-ID)."""
    account = await new_account(api, "vertrieb@firma.example")
    assert (await deliver(listener, [account.inbound], b"nur Text\r\n")).code == 250
    [message] = await stored(account.row_id)
    assert (message.message_id_header, message.subject, message.from_header) == (None, "", "")


async def test_same_message_id_twice_is_stored_once(api: Api, listener: int) -> None:
    """A retrying server delivering the same Message-ID again gets 250, the mailbox keeps one copy."""
    first = await new_account(api, "a@firma.example")
    second = await new_account(api, "b@firma.example")
    assert (await deliver(listener, [first.inbound], mail())).code == 250
    assert (await deliver(listener, [first.inbound, second.inbound], mail())).code == 250
    assert len(await stored(first.row_id)) == 1
    assert len(await stored(second.row_id)) == 1
    assert (await deliver(listener, [first.inbound], mail(message_id="<anderes@extern.example>"))).code == 250
    assert len(await stored(first.row_id)) == 2


async def test_bounce_address_stores_a_bounce(api: Api, listener: int) -> None:
    """Mail to pN.out@ (the platform envelope sender) is stored INBOUND with isBounce."""
    account = await new_account(api, "vertrieb@firma.example")
    dsn = mail(subject="Undelivered Mail Returned to Sender", message_id="<dsn-1@relay.example>")
    assert (await deliver(listener, [account.outbound], dsn, mail_from="")).code == 250
    [message] = await stored(account.row_id)
    assert (message.direction, message.is_bounce) == (Direction.INBOUND, True)


async def test_connections_over_the_cap_get_421(api: Api, listener: int) -> None:
    """Beyond SMTP_MAX_CONNECTIONS open connections a new one is greeted with 421; freed slots are reused."""
    clients = [await smtp_session(listener) for _ in range(MAX_CONNECTIONS)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener)
        greeting = await reader.readline()
        assert greeting.startswith(b"421 4.3.2")
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
    finally:
        for client in clients:
            await client.quit()
    await asyncio.sleep(0.05)
    client = await smtp_session(listener)
    await client.quit()


async def test_too_many_recipients_get_452(api: Api, listener: int) -> None:
    """The 101st RCPT of one message answers 452, the first 100 are kept."""
    account = await new_account(api, "vertrieb@firma.example")
    client = await smtp_session(listener)
    try:
        await client.mail("a@extern.example")
        codes = [
            (await client.execute_command(b"RCPT", f"TO:<{account.inbound}>".encode())).code for _ in range(101)
        ]
        assert codes == [250] * 100 + [452]
        await client.data(mail())
    finally:
        await client.quit()
    assert len(await stored(account.row_id)) == 1


async def test_client_sends_with_smtplib_style_sendmail(api: Api, listener: int) -> None:
    """aiosmtplib.send (a normal client) delivers and reports no refused recipient."""
    account = await new_account(api, "vertrieb@firma.example")
    errors, _ = await aiosmtplib.send(
        mail(), sender="a@extern.example", recipients=[account.inbound], hostname="127.0.0.1", port=listener
    )
    assert errors == {}
    assert len(await stored(account.row_id)) == 1


async def test_8bit_headers_are_decoded_and_stored_unchanged(api: Api, listener: int) -> None:
    """Raw UTF-8 headers (RFC 6532) and legacy Latin-1 ones are listed readable; the bytes are stored as sent."""
    account = await new_account(api, "vertrieb@firma.example")
    utf8 = mail(subject="Grüße aus Köln").replace(b"Erika", "Jörg".encode())
    latin1 = mail(subject="Grüße", message_id="<latin1@extern.example>").replace(
        "Grüße".encode(), "Grüße".encode("latin-1")
    )
    for raw in (utf8, latin1):
        assert (await deliver(listener, [account.inbound], raw)).code == 250
    first, second = await stored(account.row_id)
    assert (first.subject, first.from_header) == ("Grüße aus Köln", "Jörg Mustermann <erika@extern.example>")
    assert second.subject == "Grüße"
    assert bytes((await MessageBody.get(message_id=second.id)).content) == latin1
