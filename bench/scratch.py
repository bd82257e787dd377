"""A throwaway, migrated database for a benchmark: a temporary SQLite file, or a PostgreSQL database created
on BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres, which must allow CREATE DATABASE)
and dropped after."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from mailaccounts.database import migrate_database

__all__ = ["scratch_database"]


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite://{folder}/bench.sqlite3"
            await migrate_database(url)
            yield url
        return
    import asyncpg

    server = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(server)
    name = f"mailaccounts_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres", password=parts.password,
        database="postgres",
    )
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(parts._replace(path=f"/{name}"))
        await migrate_database(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
