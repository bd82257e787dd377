"""The dashboard's SPF screens: one account, all accounts with and without script (in Chromium), the summary."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.browser import chromium_page, needs_chromium, sign_in_page
from tests.support.dashboard import DashboardUser, csrf_from, sign_in
from tests.support.dns import LoopbackDnsServer
from tests.support.serve import app_with_dns
from tests.support.zones import ZONE


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
    """Without JavaScript "SPF-Check für alle" checks every account and ends on the list with a summary, once."""
    await _accounts(user, "a@gut.example", "b@alt.example", "c@ohnemx.example")
    page = await spf_browser.get("/mail-accounts")
    response = await spf_browser.post("/mail-accounts/spf-check", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/mail-accounts"
    listing = await spf_browser.get("/mail-accounts")
    assert "SPF-Check für alle abgeschlossen: 3 geprüft, 2 mit Problemen." in listing.text
    assert '<a href="/mail-accounts?spf=problem">Mail-Accounts mit SPF-Problemen anzeigen</a>' in listing.text
    assert await MailAccount.filter(spf_ok=True).count() == 1
    assert await MailAccount.filter(spf_ok=False).count() == 2
    assert "abgeschlossen" not in (await spf_browser.get("/mail-accounts")).text


@pytest.mark.parametrize(
    ("emails", "summary"),
    [
        (["b@alt.example"], "1 geprüft, 1 mit Problem."),
        (["a@gut.example", "b@gut.example"], "2 geprüft, keine Probleme."),
        (["a@gut.example", "b@alt.example", "c@ohnespf.example"], "3 geprüft, 2 mit Problemen."),
    ],
)
async def test_spf_check_all_summary_in_german_plural(
    spf_browser: httpx.AsyncClient, user: DashboardUser, emails: list[str], summary: str
) -> None:
    """The summary counts in proper German: one problem, none, several; the link only when there are problems."""
    await _accounts(user, *emails)
    page = await spf_browser.get("/mail-accounts")
    await spf_browser.post("/mail-accounts/spf-check", data={"csrf_token": csrf_from(page.text)})
    listing = (await spf_browser.get("/mail-accounts")).text
    assert f"SPF-Check für alle abgeschlossen: {summary}" in listing
    assert ("Mail-Accounts mit SPF-Problemen anzeigen" in listing) is ("keine Probleme" not in summary)


async def test_list_filtered_to_accounts_with_spf_problems(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """The summary's link lists only the accounts whose check found a problem; the SPF filter keeps its choice."""
    await _accounts(user, "a@gut.example", "b@alt.example", "c@ohnemx.example")
    page = await spf_browser.get("/mail-accounts")
    await spf_browser.post("/mail-accounts/spf-check", data={"csrf_token": csrf_from(page.text)})
    await _accounts(user, "d@alt.example")
    problems = (await spf_browser.get("/mail-accounts?spf=problem")).text
    assert "b@alt.example" in problems and "c@ohnemx.example" in problems
    assert "a@gut.example" not in problems and "d@alt.example" not in problems
    assert "2 Mail-Accounts" in problems
    assert '<option value="problem" selected>mit SPF-Problemen</option>' in problems
    assert 'href="/mail-accounts">Zurücksetzen</a>' in problems
    unchecked = (await spf_browser.get("/mail-accounts?spf=unchecked")).text
    assert "d@alt.example" in unchecked and "b@alt.example" not in unchecked
    assert "b@alt.example" in (await spf_browser.get("/mail-accounts?spf=bogus")).text


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
    # The script then reloads the list, which shows the summary the finished status queued.
    listing = (await spf_browser.get("/mail-accounts")).text
    assert "SPF-Check für alle abgeschlossen: 2 geprüft, 1 mit Problem." in listing


async def test_spf_check_all_needs_the_csrf_token(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """Starting the bulk check without the CSRF token is refused and checks nothing."""
    await _accounts(user, "a@gut.example")
    response = await spf_browser.post("/mail-accounts/spf-check", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert await MailAccount.filter(spf_checked_at__isnull=False).count() == 0


async def test_fix_instructions_name_the_configured_include(db: str, settings: Settings, user: DashboardUser) -> None:
    """The panel's fix names SPF_INCLUDE, the include the check looks for, not a fixed default."""
    await _accounts(user, "vertrieb@ohnespf.example")
    async with LoopbackDnsServer(ZONE) as dns_server:
        app = build_app(
            replace(settings, spf_include="_spf.anbieter.example", dns_nameservers=(dns_server.address,)),
            manage_database=False,
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            assert (await sign_in(http, user.email)).status_code == 303
            listing = await http.get("/mail-accounts")
            link = next(p.split('"')[0] for p in listing.text.split('href="/mail-accounts/')[1:] if "ohnespf" in p)
            page = await http.get(f"/mail-accounts/{link}")
            checked = await http.post(f"/mail-accounts/{link}/spf-check", data={"csrf_token": csrf_from(page.text)})
            page = await http.get(checked.headers["location"])
    assert "<code>include:_spf.anbieter.example</code>" in page.text
    assert "_spf.aranes.de" not in page.text


# Records every text the progress box shows while visible, in sessionStorage so it survives the reload at the end.
RECORD_PROGRESS = """
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-spf-progress]");
  if (!box) return;
  new MutationObserver(() => {
    if (box.hidden) return;
    const seen = JSON.parse(sessionStorage.getItem("spfProgress") || "[]");
    seen.push(box.textContent.replace(/\\s+/g, " ").trim());
    sessionStorage.setItem("spfProgress", JSON.stringify(seen));
  }).observe(box, { attributes: true, childList: true, subtree: true, characterData: true });
});
"""


@pytest.fixture
async def base_url(db: str, settings: Settings) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, its SPF checks asking the loopback DNS server."""
    async with app_with_dns(settings, ZONE) as url:
        yield url


@needs_chromium
async def test_spf_check_all_in_the_browser_shows_progress_summary_and_link(base_url: str, user: DashboardUser) -> None:
    """In Chromium: the progress counts of the real total from the start, ends in the summary, whose link filters."""
    from playwright.async_api import expect

    await _accounts(user, "a@gut.example", "b@alt.example", "c@ohnemx.example")
    async with chromium_page(base_url) as page:
        await page.add_init_script(RECORD_PROGRESS)
        await sign_in_page(page, user.email)
        await page.get_by_role("button", name="SPF-Check für alle").click()
        summary = page.get_by_text("SPF-Check für alle abgeschlossen: 3 geprüft, 2 mit Problemen.")
        await expect(summary).to_be_visible()
        seen = await page.evaluate("JSON.parse(sessionStorage.getItem('spfProgress') || '[]')")
        assert seen and seen[0] == "SPF-Check läuft: 0 von 3 geprüft", seen
        assert all(re.fullmatch(r"SPF-Check läuft: [0-3] von 3 geprüft", text) for text in seen), seen
        await expect(page.locator("[data-spf-progress]")).to_be_hidden()
        await page.get_by_role("link", name="Mail-Accounts mit SPF-Problemen anzeigen").click()
        await page.wait_for_url("**/mail-accounts?spf=problem")
        rows = page.locator("tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.filter(has_text="b@alt.example")).to_have_count(1)
        await expect(rows.filter(has_text="c@ohnemx.example")).to_have_count(1)
        await expect(page.get_by_label("SPF", exact=True)).to_have_value("problem")
