"""The wiring: settings, database and the web front put together into one ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from mailaccounts.database import database, ping_database
from mailaccounts.settings import Settings
from web.app import WebConfig, create_app

__all__ = ["build_app"]


def build_app(settings: Settings, *, manage_database: bool = True) -> Starlette:
    """The service's ASGI app; `manage_database=False` when the caller already opened the database."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_database:
            async with database(settings.database_url):
                yield
        else:
            yield

    return create_app(WebConfig(mailbox_domain=settings.mailbox_domain, database_ping=ping_database, lifespan=lifespan))
