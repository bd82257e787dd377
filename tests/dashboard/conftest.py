"""Fixtures of the dashboard tests: dashboard users, signed-in HTTP clients, CSRF tokens from pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from resolvers.users import create_user

PASSWORD = "richtig-geheim-123"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Open the login page and post the form, as a browser would."""
    page = await http.get("/login")
    return await http.post("/login", data={"csrf_token": csrf_from(page.text), "email": email, "password": password})


async def post_form(http: httpx.AsyncClient, page_path: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Post `data` to `action` with the CSRF token taken from the page at `page_path`."""
    page = await http.get(page_path)
    assert page.status_code == 200, page.text
    return await http.post(action, data={"csrf_token": csrf_from(page.text), **data})


@dataclass
class DashboardUser:
    email: str
    tenant: str
    password: str = PASSWORD


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
