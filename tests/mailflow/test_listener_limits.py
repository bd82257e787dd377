"""The SMTP listener under abuse: connection limits, timeouts, source routes, long lines, a failing database."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
import asyncpg
import pytest
from tortoise import connections

from mailflow.listener import ListenerConfig, client_key, start_listener
from orm.models import Message, MessageBody
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.factories import mail, new_account
from tests.support.smtp import deliver, smtp_session

# Every cut-off below must come after its configured time and well before this bound.
GENEROUS = 10.0


class Line:
    """A raw SMTP client over asyncio streams, for what aiosmtplib will not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, source: str = "127.0.0.1") -> Line:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    async def reply(self) -> bytes:
        """One whole reply (all lines of a multi-line one), or b"" when the server hung up."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), GENEROUS)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: bytes) -> bytes:
        await self.send(line + b"\r\n")
        return await self.reply()

    async def hung_up(self) -> bool:
        """Whether the server closed the connection (after anything it still sent)."""
        with suppress(ConnectionError):
            while await asyncio.wait_for(self.reader.read(65536), GENEROUS):
                pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Starts listeners with the given ListenerConfig fields on free loopback ports; stops them afterwards."""
    servers: list[asyncio.Server] = []

    async def start(**fields: Any) -> int:
        config = ListenerConfig(mailbox_domain=MAILBOX_DOMAIN, host="127.0.0.1", port=0, recipient_cache_ttl=60.0)
        server = await start_listener(ListenerConfig(**{**config.__dict__, **fields}))
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def stored_count() -> tuple[int, int]:
    """(messages, bodies) in the database."""
    return await Message.all().count(), await MessageBody.all().count()


# Connection limits


async def test_250_idle_connections_from_one_address_leave_room_for_another(api: Api, start: Any) -> None:
    """With the defaults (200, 20 per address) one address gets 20 slots, then 421 4.7.0; another still delivers."""
    port = await start()
    account = await new_account(api, "vertrieb@firma.example")
    greetings: list[bytes] = []
    crowd: list[Line] = []
    try:
        for _ in range(250):
            client = await Line.connect(port)
            crowd.append(client)
            greetings.append(await client.reply())
        assert sum(g.startswith(b"220 ") for g in greetings) == 20
        assert sum(g.startswith(b"421 4.7.0") for g in greetings) == 230
        for client, greeting in zip(crowd, greetings, strict=True):
            if greeting.startswith(b"421"):
                assert await client.hung_up()

        other = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, timeout=GENEROUS, start_tls=False, source_address=("127.0.0.2", 0)
        )
        await other.connect()
        await other.sendmail("a@extern.example", [account.inbound], mail())
        await other.quit()
    finally:
        for client in crowd:
            await client.close()
    assert await stored_count() == (1, 1)
    await asyncio.sleep(0.1)  # the server notices the closed connections
    again = await Line.connect(port)
    assert (await again.reply()).startswith(b"220 ")
    await again.close()


def test_connections_count_per_ipv4_address_and_per_ipv6_64() -> None:
    """IPv4-mapped peers count as their IPv4 address; IPv6 peers of one /64 share a count, other /64s do not."""
    assert client_key(("192.0.2.7", 25)) == client_key(("::ffff:192.0.2.7", 25, 0, 0)) == "192.0.2.7"
    assert client_key(("192.0.2.7", 25)) != client_key(("192.0.2.8", 25))
    same = client_key(("2001:db8:1:2::1", 25, 0, 0))
    assert same == client_key(("2001:db8:1:2:ffff::9", 25, 0, 0)) == "2001:db8:1:2::/64"
    assert same != client_key(("2001:db8:1:3::1", 25, 0, 0))
    assert client_key(("fe80::1%eth0", 25, 0, 2)) == "fe80::/64"


# Timeouts


async def trickle(client: Line, chunk: bytes, interval: float, until: float) -> bytes:
    """Send `chunk` every `interval` seconds until the server replies (or `until` passes); that reply."""
    reply = asyncio.ensure_future(client.reply())
    with suppress(ConnectionError):
        while not reply.done() and time.monotonic() < until:
            await client.send(chunk)
            await asyncio.sleep(interval)
    return await reply


async def test_silence_before_the_first_command_is_cut_off(start: Any) -> None:
    """A client that never sends a command gets 421 4.4.2 and is disconnected after SMTP_IDLE_TIMEOUT."""
    port = await start(idle_timeout=0.5)
    began = time.monotonic()
    client = await Line.connect(port)
    assert (await client.reply()).startswith(b"220 ")
    assert (await client.reply()).startswith(b"421 4.4.2")
    assert await client.hung_up()
    assert 0.5 <= time.monotonic() - began < GENEROUS
    await client.close()


async def test_silence_between_commands_is_cut_off(start: Any) -> None:
    """After a command, a client that goes quiet gets 421 4.4.2 after SMTP_IDLE_TIMEOUT, not before."""
    port = await start(idle_timeout=0.5)
    client = await Line.connect(port)
    await client.reply()
    began = time.monotonic()
    assert (await client.command(b"EHLO client.example")).startswith(b"250-")
    assert (await client.reply()).startswith(b"421 4.4.2")
    assert await client.hung_up()
    assert 0.5 <= time.monotonic() - began < GENEROUS
    await client.close()


async def test_a_command_line_sent_byte_by_byte_is_cut_off(start: Any) -> None:
    """Bytes of an unfinished command line do not count as activity: the trickle is cut off at the idle timeout."""
    port = await start(idle_timeout=0.5)
    client = await Line.connect(port)
    await client.reply()
    began = time.monotonic()
    assert (await trickle(client, b"X", 0.05, until=began + GENEROUS)).startswith(b"421 4.4.2")
    assert await client.hung_up()
    assert 0.5 <= time.monotonic() - began < GENEROUS
    await client.close()


async def _open_data(client: Line, rcpt: str) -> None:
    await client.reply()
    assert (await client.command(b"EHLO client.example")).startswith(b"250")
    assert (await client.command(b"MAIL FROM:<a@extern.example>")).startswith(b"250")
    assert (await client.command(b"RCPT TO:<" + rcpt.encode() + b">")).startswith(b"250")
    assert (await client.command(b"DATA")).startswith(b"354")


async def test_data_longer_than_the_idle_timeout_but_within_its_deadline_is_stored(api: Api, start: Any) -> None:
    """DATA has its own budget: a transfer of 2.5 s (idle timeout 1 s, DATA deadline 6 s) is stored with 250.

    The margins are wide on purpose (gaps of 0.25 s against 1 s, 2.5 s against 6 s): a loaded machine may
    stretch them, and the test is about the two budgets, not about their precision."""
    port = await start(idle_timeout=1.0, data_timeout=6.0)
    account = await new_account(api, "vertrieb@firma.example")
    client = await Line.connect(port)
    await _open_data(client, account.inbound)
    for line in mail().split(b"\r\n"):
        await client.send(line + b"\r\n")
        await asyncio.sleep(0.25)
    assert (await client.command(b".")).startswith(b"250 ")
    await client.close()
    assert await stored_count() == (1, 1)


async def test_data_sent_slowly_but_steadily_is_cut_off_at_its_deadline(api: Api, start: Any) -> None:
    """A client that sends a DATA line every 0.1 s is never idle (timeout 1 s), yet gets 421 4.4.2 after
    SMTP_DATA_TIMEOUT (2 s)."""
    port = await start(idle_timeout=1.0, data_timeout=2.0)
    account = await new_account(api, "vertrieb@firma.example")
    client = await Line.connect(port)
    await _open_data(client, account.inbound)
    began = time.monotonic()
    assert (await trickle(client, b"Zeile\r\n", 0.1, until=began + 2.0 + GENEROUS)).startswith(b"421 4.4.2")
    assert await client.hung_up()
    assert 2.0 <= time.monotonic() - began < 2.0 + GENEROUS
    await client.close()
    assert await stored_count() == (0, 0)


async def test_a_client_that_never_reads_loses_its_slot_at_the_timeout(start: Any) -> None:
    """A client that floods commands and never reads the replies is dropped at the idle timeout, freeing its slot."""
    port = await start(idle_timeout=0.5, max_connections_per_client=1)
    flooder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    flooder.connect(("127.0.0.1", port))
    flooder.setblocking(False)
    try:
        flood = b"HELP\r\n" * 100_000
        with suppress(BlockingIOError):
            while flood:  # until the server stops reading because its replies pile up
                flood = flood[flooder.send(flood) :]
        began = time.monotonic()
        while True:
            client = await Line.connect(port)
            greeting = await client.reply()
            await client.close()
            if greeting.startswith(b"220 "):
                break
            assert greeting.startswith(b"421 4.7.0")
            assert time.monotonic() - began < GENEROUS, "the silent client still holds its slot"
            await asyncio.sleep(0.2)
    finally:
        flooder.close()


# Addresses and lines


async def test_source_routes_are_stripped_and_malformed_ones_refused(api: Api, listener: int) -> None:
    """`<@relay:pN@…>` and `<@a,@b:pN@…>` deliver to pN (the route is ignored); a malformed route is 553."""
    account = await new_account(api, "vertrieb@firma.example")
    client = await smtp_session(listener)
    try:
        routed_sender = await client.execute_command(b"MAIL", b"FROM:<@relay.example:absender@extern.example>")
        assert routed_sender.code == 250
        for route in (b"@relay.example:", b"@a.example,@[192.0.2.1]:"):
            reply = await client.execute_command(b"RCPT", b"TO:<" + route + account.inbound.encode() + b">")
            assert reply.code == 250
        relayed = await client.execute_command(b"RCPT", b"TO:<@" + MAILBOX_DOMAIN.encode() + b":user@extern.example>")
        assert relayed.code == 550 and relayed.message.startswith("5.7.1")
        for malformed in (b"@a.example, @b.example:", b"@:", b"@a.example@b.example:", b"@a.example:@b.example:"):
            reply = await client.execute_command(b"RCPT", b"TO:<" + malformed + account.inbound.encode() + b">")
            assert reply.code == 553, malformed
        await client.data(mail())
    finally:
        await client.quit()
    [message] = await Message.filter(account_id=account.row_id)
    assert message.subject == "Angebot"
    assert await MessageBody.all().count() == 1  # one copy, although two RCPTs named the account


async def test_over_long_command_lines_get_500_and_the_session_goes_on(api: Api, listener: int) -> None:
    """Command lines over 512 octets (MAIL: 538 with SIZE) get 500, also after many EHLOs; the next command works."""
    account = await new_account(api, "vertrieb@firma.example")
    client = await Line.connect(listener)
    try:
        await client.reply()
        for _ in range(30):  # aiosmtpd 1.4 raised MAIL's limit by 26 octets at every EHLO
            assert (await client.command(b"EHLO client.example")).startswith(b"250")
        long_sender = b"MAIL FROM:<" + b"a" * 560 + b"@extern.example>"
        assert (await client.command(long_sender)).startswith(b"500")
        assert (await client.command(b"MAIL FROM:<a@extern.example>")).startswith(b"250")
        long_rcpt = b"RCPT TO:<" + account.inbound.encode() + b"> " + b"X" * 520
        assert (await client.command(long_rcpt)).startswith(b"500")
        assert (await client.command(b"RCPT TO:" + b"x" * 20_000)).startswith(b"500")
        assert (await client.command(b"RCPT TO:<" + account.inbound.encode() + b">")).startswith(b"250")
        assert (await client.command(b"QUIT")).startswith(b"221")
    finally:
        await client.close()


async def test_text_lines_over_1000_octets_are_refused_and_the_connection_stays_usable(
    api: Api, listener: int
) -> None:
    """A DATA line of 998 octets + CRLF is stored; one longer than 1000 octets gets 500 and nothing is stored."""
    account = await new_account(api, "vertrieb@firma.example")
    client = await smtp_session(listener)
    try:
        longest = mail(message_id="<lang-1@extern.example>", body="x" * 998 + "\r\n")
        assert (await client.sendmail("a@extern.example", [account.inbound], longest))[0] == {}
        too_long = mail(message_id="<lang-2@extern.example>", body="y" * 1100 + "\r\n")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail("a@extern.example", [account.inbound], too_long)
        assert refused.value.code == 500
        await client.sendmail("a@extern.example", [account.inbound], mail(message_id="<danach@extern.example>"))
    finally:
        await client.quit()
    headers = await Message.filter(account_id=account.row_id).order_by("id").values_list("message_id_header", flat=True)
    assert headers == ["<lang-1@extern.example>", "<danach@extern.example>"]


# The database


@asynccontextmanager
async def database_unavailable(database_url: str) -> AsyncIterator[None]:
    """For the duration of the block the listener's statements fail; afterwards the database is back unchanged.

    PostgreSQL: the server refuses every connection (the pool's are terminated). SQLite: its one connection
    stays open but the accounts table is gone (Tortoise cannot survive a failed SQLite reconnect: the
    connection lock stays taken).
    """
    if database_url.startswith("sqlite://"):
        conn = connections.get("default")
        await conn.execute_script("ALTER TABLE mail_account RENAME TO mail_account_away")
        try:
            yield
        finally:
            await conn.execute_script("ALTER TABLE mail_account_away RENAME TO mail_account")
        return
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres", database="postgres"
    )
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        try:
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def test_rcpt_while_the_database_is_down_gets_451_then_250(api: Api, listener: int, db: str) -> None:
    """RCPT lookups against an unavailable database answer 451 4.3.0 (no 5xx, no internals); later 250."""
    account = await new_account(api, "vertrieb@firma.example")
    client = await smtp_session(listener)
    try:
        await client.mail("a@extern.example")
        async with database_unavailable(db):
            reply = await client.execute_command(b"RCPT", f"TO:<{account.inbound}>".encode())
        assert (reply.code, reply.message) == (451, "4.3.0 Temporary local problem, try again later")
        assert (await client.execute_command(b"RCPT", f"TO:<{account.inbound}>".encode())).code == 250
        await client.data(mail())
    finally:
        await client.quit()
    assert await stored_count() == (1, 1)


async def test_data_while_the_database_is_down_gets_451_and_nothing_is_stored(
    api: Api, listener: int, db: str
) -> None:
    """DATA against an unavailable database (RCPT answered from the cache) gets 451; the retry stores it once."""
    account = await new_account(api, "vertrieb@firma.example")
    assert (await deliver(listener, [account.inbound], mail(message_id="<vorher@extern.example>"))).code == 250
    retried = mail(message_id="<waehrend@extern.example>")
    async with database_unavailable(db):
        reply = await deliver(listener, [account.inbound], retried)
    assert reply.code == 451
    assert await stored_count() == (1, 1)
    assert (await deliver(listener, [account.inbound], retried)).code == 250
    assert await stored_count() == (2, 2)


@asynccontextmanager
async def failing_commit(is_postgres: bool) -> AsyncIterator[None]:
    """Every transaction that stores a message body fails at COMMIT: a deferred foreign key to no account."""
    conn = connections.get("default")
    if is_postgres:
        await conn.execute_script(
            "CREATE TABLE commit_trap (account_id integer REFERENCES mail_account (id) DEFERRABLE INITIALLY DEFERRED);"
            "CREATE FUNCTION commit_trap() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO commit_trap VALUES (-1); RETURN NULL; END $$;"
            "CREATE TRIGGER commit_trap AFTER INSERT ON message_body FOR EACH STATEMENT EXECUTE FUNCTION commit_trap();"
        )
    else:
        await conn.execute_script(
            "CREATE TABLE commit_trap (account_id INTEGER REFERENCES mail_account (id) DEFERRABLE INITIALLY DEFERRED);"
            "CREATE TRIGGER commit_trap AFTER INSERT ON message_body BEGIN INSERT INTO commit_trap VALUES (-1); END;"
        )
    try:
        yield
    finally:
        drop_function = "DROP FUNCTION commit_trap();" if is_postgres else ""
        await connections.get("default").execute_script(
            f"DROP TRIGGER commit_trap{' ON message_body' if is_postgres else ''}; {drop_function}"
            "DROP TABLE commit_trap;"
        )


async def test_a_failed_commit_gets_451_and_leaves_nothing_half_stored(
    api: Api, listener: int, is_postgres: bool
) -> None:
    """When COMMIT fails after the inserts, the sender gets 451, no row is left, and the next delivery is stored."""
    account = await new_account(api, "vertrieb@firma.example")
    async with failing_commit(is_postgres):
        reply = await deliver(listener, [account.inbound], mail())
        assert reply.code == 451
        assert await stored_count() == (0, 0)
    assert (await deliver(listener, [account.inbound], mail())).code == 250
    assert await stored_count() == (1, 1)
