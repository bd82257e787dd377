"""A throwaway, migrated database for a benchmark: a temporary SQLite file, or a PostgreSQL database created
on BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres, which must allow CREATE DATABASE)
and dropped after.

`scratch_database` is for a benchmark on one event loop; `scratch_database_sync` for one whose phases each
run their own (`asyncio.run` per phase). Each admin statement opens its own connection, so neither holds a
connection across loops.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit, urlunsplit

from mailaccounts.database import migrate_database

__all__ = ["scratch_database", "scratch_database_sync"]


def _server() -> str:
    return os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


async def _admin(sql: str) -> None:
    import asyncpg

    parts = urlsplit(_server())
    connection = await asyncpg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres", password=parts.password,
        database="postgres",
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _create_postgres() -> tuple[str, str]:
    """A new, migrated PostgreSQL database: its name and URL."""
    name = f"mailaccounts_bench_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(_server())._replace(path=f"/{name}"))
    try:
        await migrate_database(url)
    except BaseException:
        await _drop_postgres(name)
        raise
    return name, url


async def _drop_postgres(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database of `kind` (`sqlite` or `postgres`), gone after the block."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite://{folder}/bench.sqlite3"
            await migrate_database(url)
            yield url
        return
    name, url = await _create_postgres()
    try:
        yield url
    finally:
        await _drop_postgres(name)


@contextmanager
def scratch_database_sync(kind: str) -> Iterator[str]:
    """`scratch_database` for a benchmark that runs each phase on an event loop of its own."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite://{folder}/bench.sqlite3"
            asyncio.run(migrate_database(url))
            yield url
        return
    name, url = asyncio.run(_create_postgres())
    try:
        yield url
    finally:
        asyncio.run(_drop_postgres(name))
