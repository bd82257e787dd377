"""The dashboard's SPF screens over HTTP: one account, all accounts without script, and the progress API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.dashboard import DashboardUser, csrf_from, sign_in
from tests.support.dns import LoopbackDnsServer
from tests.support.zones import ZONE


@pytest.fixture
async def spf_browser(db: str, settings: Settings, user: DashboardUser) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in dashboard client whose SPF checks ask the loopback DNS server."""
    async with LoopbackDnsServer(ZONE) as dns_server:
        app = build_app(
            replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=1.0), manage_database=False
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            assert (await sign_in(http, user.email)).status_code == 303
            yield http


async def _accounts(user: DashboardUser, *emails: str) -> None:
    tenant = await ensure_tenant(user.tenant)
    for email in emails:
        await create_account(tenant.id, email, "Vertrieb")


async def test_spf_check_of_one_account_shows_the_panel(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """The SPF-Check button stores the report and the account page shows problem and suggested record."""
    await _accounts(user, "vertrieb@alt.example")
    account = await MailAccount.get(email="vertrieb@alt.example")
    listing = await spf_browser.get("/mail-accounts")
    link = next(part.split('"')[0] for part in listing.text.split('href="/mail-accounts/')[1:] if "alt.example" in part)
    page = await spf_browser.get(f"/mail-accounts/{link}")
    assert "Noch nicht geprüft" in page.text
    checked = await spf_browser.post(f"/mail-accounts/{link}/spf-check", data={"csrf_token": csrf_from(page.text)})
    assert checked.status_code == 303
    panel = await spf_browser.get(checked.headers["location"])
    assert "Die SPF-Prüfung ist abgeschlossen." in panel.text
    assert "angepasst werden muss" in panel.text
    assert "v=spf1 mx include:_spf.anbieter.example include:_spf.aranes.de ~all" in panel.text
    assert (await MailAccount.get(id=account.id)).spf_ok is False


async def test_spf_check_all_without_script_waits_for_every_account(
    spf_browser: httpx.AsyncClient, user: DashboardUser
) -> None:
    """Without JavaScript "SPF-Check für alle" checks every account, then the list shows OK and Problem."""
    await _accounts(user, "a@gut.example", "b@alt.example", "c@ohnemx.example")
    page = await spf_browser.get("/mail-accounts")
    response = await spf_browser.post("/mail-accounts/spf-check", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    listing = await spf_browser.get("/mail-accounts")
    assert "Die SPF-Prüfung von 3 Mail-Account(s) ist abgeschlossen." in listing.text
    assert await MailAccount.filter(spf_ok=True).count() == 1
    assert await MailAccount.filter(spf_ok=False).count() == 2


async def test_the_list_names_each_accounts_spf_problem(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """After the checks, the SPF column says which problem an account has in a few words, not only "Problem"."""
    await _accounts(user, "a@gut.example", "b@alt.example", "c@ohnemx.example")
    page = await spf_browser.get("/mail-accounts")
    await spf_browser.post("/mail-accounts/spf-check", data={"csrf_token": csrf_from(page.text)})
    listing = (await spf_browser.get("/mail-accounts")).text
    rows = {
        email: listing.split(email, 1)[1].split("</tr>", 1)[0]
        for email in ("a@gut.example", "b@alt.example", "c@ohnemx.example")
    }
    assert ">OK</a>" in rows["a@gut.example"] and "badge-problem" not in rows["a@gut.example"]
    assert ">SPF ohne Plattform</a>" in rows["b@alt.example"]
    assert ">Keine MX-Einträge</a>" in rows["c@ohnemx.example"]
    assert ">Problem</a>" not in listing


async def test_spf_check_all_with_script_reports_progress(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """The progress script's JSON start returns at once; spf-status follows the check to the end."""
    await _accounts(user, "a@gut.example", "b@alt.example")
    page = await spf_browser.get("/mail-accounts")
    started = await spf_browser.post(
        "/mail-accounts/spf-check",
        headers={"X-CSRF-Token": csrf_from(page.text), "Accept": "application/json"},
    )
    assert started.status_code == 200
    body = started.json()
    assert body["total"] == 2
    async with asyncio.timeout(10):
        while True:
            status = (
                await spf_browser.get("/mail-accounts/spf-status", params={"startedAt": body["startedAt"]})
            ).json()
            if status["finished"]:
                break
            await asyncio.sleep(0.05)
    assert status == {"total": 2, "checked": 2, "ok": 1, "withProblems": 1, "finished": True}
    assert (await spf_browser.get("/mail-accounts/spf-status")).status_code == 400


async def test_spf_check_all_needs_the_csrf_token(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """Starting the bulk check without the CSRF token is refused and checks nothing."""
    await _accounts(user, "a@gut.example")
    response = await spf_browser.post("/mail-accounts/spf-check", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert await MailAccount.filter(spf_checked_at__isnull=False).count() == 0


async def test_fix_instructions_name_the_configured_include(db: str, settings: Settings, user: DashboardUser) -> None:
    """The panel's fix names SPF_INCLUDE, the include the check looks for, not a fixed default."""
    await _accounts(user, "vertrieb@alt.example")
    app = build_app(replace(settings, spf_include="_spf.anbieter.example"), manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        assert (await sign_in(http, user.email)).status_code == 303
        listing = await http.get("/mail-accounts")
        link = next(p.split('"')[0] for p in listing.text.split('href="/mail-accounts/')[1:] if "alt.example" in p)
        page = await http.get(f"/mail-accounts/{link}")
    assert "<code>include:_spf.anbieter.example</code>" in page.text
    assert "include:_spf.aranes.de" not in page.text
