"""Shared fixtures: a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL), the app over ASGI."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from tortoise import connections

from mailaccounts.app import build_app
from mailaccounts.database import database, migrate_database
from mailaccounts.settings import Settings
from orm.models import Scope
from resolvers.tokens import create_token
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.serve import cli_environment

# Children first, so a DELETE never trips a RESTRICT foreign key.
TABLES = [
    "message_body",
    "message",
    "mail_account",
    "mailbox",
    "api_token",
    "dashboard_user",
    "tenant",
    "rate_counter",
]
# The job runners' own tables (mailaccounts/jobs_sqlite.py, procrastinate's), children first as well.
JOB_TABLES = {
    "sqlite": ["job_queue"],
    "postgres": [
        "procrastinate_periodic_defers",
        "procrastinate_events",
        "procrastinate_jobs",
        "procrastinate_workers",
    ],
}


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    conn = await asyncpg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database="postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this test run; dropped (PostgreSQL) or in a temp folder (SQLite)."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        asyncio.run(migrate_database(url))
        yield url
        return
    name = f"mailaccounts_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(server)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(migrate_database(url))
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return not database_url.startswith("sqlite://")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    """The database opened for one test and emptied before it."""
    async with database(database_url):
        conn = connections.get("default")
        for table in TABLES + JOB_TABLES["sqlite" if database_url.startswith("sqlite://") else "postgres"]:
            await conn.execute_script(f'DELETE FROM "{table}"')
        yield database_url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, mailbox_domain=MAILBOX_DOMAIN, secret_key="k" * 40)


@pytest.fixture
async def client(db: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the real app (database opened by `db`)."""
    app = build_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def api(client: httpx.AsyncClient) -> Api:
    """A write token of tenant `acme`."""
    return Api(client, (await create_token("acme", Scope.WRITE)).secret)


@pytest.fixture
async def reader(client: httpx.AsyncClient) -> Api:
    """A read token of tenant `acme`."""
    return Api(client, (await create_token("acme", Scope.READ)).secret)


@pytest.fixture
async def other(client: httpx.AsyncClient) -> Api:
    """A write token of another tenant, `globex`."""
    return Api(client, (await create_token("globex", Scope.WRITE)).secret)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI run: a fresh SQLite database in a temp folder (the CLI tests use SQLite)."""
    return cli_environment(tmp_path)
