"""Opening, migrating and pinging the database for the service and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tortoise import connections
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

from orm.config import tortoise_config

__all__ = ["database", "migrate_database", "ping_database"]


def _prepare(database_url: str) -> None:
    """SQLite creates the file but not its folder."""
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://").split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


@asynccontextmanager
async def database(database_url: str, *, global_fallback: bool = True) -> AsyncIterator[TortoiseContext]:
    """Open the database for the duration of the block.

    With `global_fallback` the context is also visible to tasks that did not inherit it (uvicorn runs
    the lifespan and the requests in unrelated tasks).
    """
    _prepare(database_url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(database_url), _enable_global_fallback=global_fallback)
        yield ctx


async def migrate_database(database_url: str) -> None:
    """Apply every migration in orm/migrations that the database has not seen yet, then the job tables."""
    from mailaccounts.jobs import apply_job_schema

    _prepare(database_url)
    async with TortoiseContext() as ctx:
        await migrate(config=tortoise_config(database_url))
        await connections.close_all(discard=True)
        # The SQLite runner's table lives beside the models; procrastinate connects on its own.
        await ctx.init(config=tortoise_config(database_url))
        try:
            await apply_job_schema(database_url)
        finally:
            await connections.close_all(discard=True)


async def ping_database() -> None:
    """One round trip to the database; raises when it does not answer."""
    await connections.get("default").execute_query("SELECT 1")
