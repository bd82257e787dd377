"""Fixtures of the dashboard tests: dashboard users, signed-in HTTP clients, CSRF tokens from pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from resolvers.users import create_user
from tests.support.dashboard import PASSWORD, DashboardUser, sign_in
from tests.support.dns import LoopbackDnsServer
from tests.support.zones import ZONE


@pytest.fixture
async def user(db: str) -> DashboardUser:
    """A dashboard user of tenant `acme`."""
    await create_user("acme", "chefin@acme.example", PASSWORD)
    return DashboardUser("chefin@acme.example", "acme")


@pytest.fixture
async def other_user(db: str) -> DashboardUser:
    """A dashboard user of another tenant, `globex`."""
    await create_user("globex", "admin@globex.example", PASSWORD)
    return DashboardUser("admin@globex.example", "globex")


async def _browser_client(settings: Settings) -> httpx.AsyncClient:
    app = build_app(settings, manage_database=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def browser(db: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with its own cookie jar, not signed in."""
    async with await _browser_client(settings) as http:
        yield http


@pytest.fixture
async def signed_in(browser: httpx.AsyncClient, user: DashboardUser) -> httpx.AsyncClient:
    """`browser` signed in as `user`."""
    response = await sign_in(browser, user.email)
    assert response.status_code == 303, response.text
    return browser


@pytest.fixture
async def spf_browser(db: str, settings: Settings, user: DashboardUser) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in dashboard client whose SPF checks ask the loopback DNS server, its job worker running."""
    async with LoopbackDnsServer(ZONE) as dns_server:
        app = build_app(
            replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=1.0), manage_database=False
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            assert (await sign_in(http, user.email)).status_code == 303
            yield http
