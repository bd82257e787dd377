"""Using the dashboard as a browser does: the test users' password, CSRF tokens from pages, signing in, URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from strawberry.relay import GlobalID

from web.formatting import to_slug

PASSWORD = "richtig-geheim-123"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def account_path(account_id: int) -> str:
    """The dashboard URL of the account with this database id."""
    return f"/mail-accounts/{to_slug(str(GlobalID('MailAccount', str(account_id))))}"


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
