"""Account state changes seen by every process on the database, so each listener's RCPT cache drops them at once.

Migration 0006 makes the database announce every change of an account's state (`active`, a pending merge or
delete, its removal) with the account id and mailbox number:
- PostgreSQL: triggers call `pg_notify('mailbox_changed', '<account id>:<mailbox number>')`. NOTIFY is
  delivered at COMMIT (a rolled-back change announces nothing) to every connection that LISTENs;
  `PostgresMailboxChanges` holds one such connection per process.
- SQLite: triggers append both to `mailbox_change` (in the same transaction, so a rollback removes it).
  `SqliteMailboxChanges` reads that log on its own connection before the cache trusts an entry; asking
  `PRAGMA data_version` first makes the check cost one pragma while nothing was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from tortoise import connections

__all__ = [
    "CHANNEL",
    "LISTEN_APPLICATION_NAME",
    "AccountChange",
    "MailboxChanges",
    "PostgresMailboxChanges",
    "SqliteMailboxChanges",
    "Subscriber",
    "open_mailbox_changes",
]

log = logging.getLogger(__name__)

CHANNEL = "mailbox_changed"
# The LISTEN connection's name in pg_stat_activity, so an operator (or a test) can tell it from the pool's.
LISTEN_APPLICATION_NAME = "mailaccounts-mailbox-changes"


# (account id, mailbox number) of an account whose state changed, or that is gone.
AccountChange = tuple[int, int]


class Subscriber(Protocol):
    """What is told about changes: a cache of mailbox answers."""

    def accounts_changed(self, changes: Iterable[AccountChange]) -> None:
        """These accounts changed state (or are gone)."""

    def everything_changed(self) -> None:
        """Changes may have been missed: nothing known so far can be trusted."""


class MailboxChanges:
    """A feed of mailbox state changes committed by any process. This base knows of none: one process, TTL only."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Tell `subscriber` of every change from now on."""
        self._subscribers.append(subscriber)

    def caught_up(self) -> bool:
        """True when the subscribers have been told of every change committed so far (this may tell them now).

        False while the feed cannot promise that (its connection is down): then nothing cached may be trusted.
        Called on every RCPT, so it does no I/O beyond what SQLite answers from its own file at once.
        """
        return True

    async def barrier(self) -> None:
        """Return once every change committed before this call has been told (PostgreSQL: one round trip)."""

    def _tell(self, changes: Iterable[AccountChange]) -> None:
        changes = list(changes)
        for subscriber in self._subscribers:
            subscriber.accounts_changed(changes)

    def _tell_everything(self) -> None:
        for subscriber in self._subscribers:
            subscriber.everything_changed()


class PostgresMailboxChanges(MailboxChanges):
    """LISTEN on `mailbox_changed` over one connection of its own; reconnects when it is lost.

    While the connection is down `caught_up()` is False (the cache is bypassed) and every subscriber is
    told that everything changed, once when it is lost and once when listening again (notifications sent
    in between are gone). A silently dead connection is found by a `SELECT 1` every `ping_interval`
    seconds that must answer within `ping_timeout`. Reconnecting waits `retry_wait` seconds, doubled after
    each failed attempt in a row.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        ping_interval: float = 5.0,
        ping_timeout: float = 5.0,
        retry_wait: float = 1.0,
    ) -> None:
        super().__init__()
        self._connect = connect
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.retry_wait = retry_wait
        self._listening = False
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._busy = asyncio.Lock()  # one query at a time on the connection: pings and barriers
        self._listened_since_wait = False

    def caught_up(self) -> bool:
        return self._listening

    async def barrier(self) -> None:
        """A round trip on the LISTEN connection: PostgreSQL sends the notifications queued for it before the
        answer (at the latest before ReadyForQuery), and asyncpg runs their callbacks before the awaiting code
        resumes. Does nothing while not listening (then the cache is bypassed anyway)."""
        connection = self._connection
        if self._listening and connection is not None:
            async with self._busy:
                await connection.fetchval("SELECT 1")
            await asyncio.sleep(0)

    async def start(self) -> None:
        """Start listening in the background; returns once the first attempt succeeded or failed."""
        self._task = asyncio.create_task(self._run(), name="mailbox changes")
        await self._first_attempt.wait()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        account_id, _, mailbox_number = payload.partition(":")
        try:
            change = (int(account_id), int(mailbox_number))
        except ValueError:
            log.warning("ignored a %s notification with the payload %r", channel, payload)
            return
        self._tell([change])

    async def _run(self) -> None:
        wait = self.retry_wait
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening for mailbox changes failed (%s); RCPT answers bypass the cache", exc)
            finally:
                self._first_attempt.set()
            # Doubled after each failure in a row, up to 30 s, so an outage does not fill the log.
            wait = self.retry_wait if self._listened_since_wait else min(wait * 2, 30.0)
            self._listened_since_wait = False
            await asyncio.sleep(wait)

    async def _listen_once(self) -> None:
        connection = await self._connect()
        self._connection = connection
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, self._notified)
            # Notifications sent while nobody listened are lost: forget everything, then trust again.
            self._tell_everything()
            self._listening = True
            self._listened_since_wait = True
            self._first_attempt.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.ping_interval)
                    break
                async with self._busy:
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), self.ping_timeout)
            log.warning("the connection listening for mailbox changes was closed; reconnecting")
        finally:
            self._connection = None
            if self._listening:
                self._listening = False
                self._tell_everything()
            if not connection.is_closed():
                connection.terminate()


class SqliteMailboxChanges(MailboxChanges):
    """Reads the `mailbox_change` log on a connection of its own, whenever `PRAGMA data_version` says that
    another connection committed something (every connection of this and other processes is another one).

    The connection never waits for a lock (timeout 0; in WAL mode readers are not blocked anyway): when
    SQLite is busy the answer is False and the cache is bypassed for that RCPT. When the log was pruned
    past what this process has read, everything counts as changed.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._connection = sqlite3.connect(path, timeout=0.0, isolation_level=None)
        self._data_version = -1
        self._seen: int | None = None  # the newest log entry told; None until the log was read once

    def caught_up(self) -> bool:
        try:
            if self._seen is None:
                newest = self._connection.execute("SELECT coalesce(max(id), 0) FROM mailbox_change").fetchone()
                self._seen = int(newest[0])
            version = self._connection.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return True
            rows = self._connection.execute(
                "SELECT id, account_id, mailbox_number FROM mailbox_change WHERE id > ? ORDER BY id", (self._seen,)
            ).fetchall()
        except sqlite3.Error as exc:
            log.info("reading mailbox changes failed (%s); this RCPT bypasses the cache", exc)
            return False
        self._data_version = version
        if rows:
            if rows[0][0] != self._seen + 1:
                self._tell_everything()  # pruned past what this process read
            else:
                self._tell((account_id, number) for _id, account_id, number in rows)
            self._seen = rows[-1][0]
        return True

    async def barrier(self) -> None:
        """Read the log now (the cache does so on every RCPT anyway)."""
        self.caught_up()

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


class _NothingCached(MailboxChanges):
    """For a database no other connection can see (SQLite in memory): never caught up, so nothing is cached."""

    def caught_up(self) -> bool:
        return False


async def _postgres_connection(client: Any) -> Any:
    """One connection with the options of Tortoise's pool (DATABASE_URL), less those only a pool takes."""
    import asyncpg  # type: ignore[import-untyped]

    accepted = inspect.signature(asyncpg.connect).parameters
    return await asyncpg.connect(
        host=client.host,
        port=client.port,
        user=client.user,
        password=client.password,
        database=client.database,
        server_settings={**client.server_settings, "application_name": LISTEN_APPLICATION_NAME},
        **{name: value for name, value in client.extra.items() if name in accepted},
    )


@asynccontextmanager
async def open_mailbox_changes(connection_name: str = "default") -> AsyncIterator[MailboxChanges]:
    """The feed for the database Tortoise has open, for the duration of the block."""
    client = connections.get(connection_name)
    dialect = client.capabilities.dialect
    if dialect == "postgres":
        feed = PostgresMailboxChanges(lambda: _postgres_connection(client))
        await feed.start()
        try:
            yield feed
        finally:
            await feed.close()
    elif dialect == "sqlite":
        path: str = client.filename
        if path == ":memory:":
            yield _NothingCached()
            return
        sqlite_feed = SqliteMailboxChanges(path)
        try:
            yield sqlite_feed
        finally:
            sqlite_feed.close()
    else:
        raise ValueError(f"no mailbox change feed for the {dialect} dialect")
