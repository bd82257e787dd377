"""The dashboard in a real browser (Debian's Chromium through Playwright), with a screenshot of each screen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.dashboard import PASSWORD, DashboardUser
from tests.support.dns import LoopbackDnsServer
from tests.support.serve import uvicorn_on_loopback

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"

pytestmark = needs_chromium


ZONE: dict[str, list[Any]] = {
    "_spf.aranes.de": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
    "alt.example": [{"MX": [10, "mx.alt.example"]}, {"TXT": "v=spf1 mx include:_spf.anbieter.example ~all"}],
    "mx.alt.example": [{"A": "198.51.100.25"}],
    "_spf.anbieter.example": [{"TXT": "v=spf1 ip4:203.0.113.0/24 ~all"}],
    "gut.example": [{"MX": [10, "mx.gut.example"]}, {"TXT": "v=spf1 mx include:_spf.aranes.de ~all"}],
    "mx.gut.example": [{"A": "198.51.100.26"}],
    "_dmarc.gut.example": [{"TXT": "v=DMARC1; p=none"}],
}


@pytest.fixture
async def dns_server() -> AsyncIterator[LoopbackDnsServer]:
    """A loopback DNS server with one domain that needs an SPF update and one that is fine."""
    async with LoopbackDnsServer(ZONE) as server:
        yield server


@pytest.fixture
async def base_url(db: str, settings: Settings, dns_server: LoopbackDnsServer) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, on this test's event loop and database."""
    settings = replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=2.0)
    async with uvicorn_on_loopback(build_app(settings, manage_database=False)) as url:
        yield url


@pytest.fixture
async def page(base_url: str) -> AsyncIterator[object]:
    """A fresh browser page in German at a desktop size."""
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=base_url, locale="de-DE", viewport={"width": 1360, "height": 900})
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await browser.close()


async def _shot(page: object, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


async def test_manage_accounts_in_the_browser(page: object, user: DashboardUser) -> None:
    """Sign in, create (with a field error first), toggle, read messages, merge, delete with typed address."""
    from playwright.async_api import Page, expect

    assert isinstance(page, Page)
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    await _shot(page, "01-login")
    await page.get_by_label("E-Mail-Adresse").fill(user.email)
    await page.get_by_label("Passwort").fill(PASSWORD)
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page.get_by_role("heading", name="Noch keine Mail-Accounts")).to_be_visible()
    await _shot(page, "02-empty-list")

    await page.get_by_role("link", name="Anlegen", exact=True).click()
    await page.get_by_label("E-Mail-Adresse").fill("vertrieb@firma")
    await page.get_by_label("Absendername").fill("Vertrieb")
    await page.get_by_role("button", name="Anlegen").click()
    await expect(page.locator("#f-email-error")).to_have_text("Bitte geben Sie eine gültige E-Mail-Adresse ein.")
    await _shot(page, "03-create-field-error")
    await page.get_by_label("E-Mail-Adresse").fill("vertrieb@firma.example")
    await page.get_by_role("button", name="Anlegen").click()
    await expect(page.get_by_text("Der Mail-Account wurde angelegt.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Nächster Schritt: Weiterleitung einrichten")).to_be_visible()
    inbound = (await page.locator(".facts dd code").first.inner_text()).strip()
    assert inbound.startswith("p") and inbound.endswith("@mailbox.example.com")
    await _shot(page, "04-created-account")

    await page.goto("/mail-accounts/new")
    await page.get_by_label("E-Mail-Adresse").fill("info@firma.example")
    await page.get_by_label("Absendername").fill("<script>alert(1)</script>")
    await page.get_by_role("button", name="Anlegen").click()
    await page.get_by_role("link", name="Mail-Accounts", exact=True).click()
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.get_by_role("cell", name="<script>alert(1)</script>")).to_be_visible()
    await _shot(page, "05-list")

    toggle = page.get_by_role("switch", name="vertrieb@firma.example deaktivieren")
    await toggle.click()
    await expect(page.get_by_text("Der Mail-Account wurde deaktiviert.")).to_be_visible()
    await expect(page.get_by_role("switch", name="vertrieb@firma.example aktivieren")).to_have_attribute(
        "aria-checked", "false"
    )
    await _shot(page, "06-toggled")
    await page.get_by_label("Status").select_option("INACTIVE")
    await page.get_by_role("button", name="Filtern").click()
    await expect(rows).to_have_count(1)
    await page.get_by_role("switch", name="vertrieb@firma.example aktivieren").click()
    await expect(page.get_by_role("heading", name="Keine Mail-Accounts gefunden")).to_be_visible()
    await page.get_by_role("link", name="Zurücksetzen").click()

    number = int(inbound.split("@")[0].removeprefix("p"))
    account_id = await _account_id(number)
    for subject in ("Angebot", "=?utf-8?q?R=C3=BCckfrage?="):
        raw = f"From: Kunde <kunde@example.com>\r\nTo: vertrieb@firma.example\r\nSubject: {subject}\r\n\r\nHallo!\r\n"
        await deliver_message([Recipient(account_id, number, False)], raw.encode())
    await page.reload()
    await page.get_by_role("link", name="vertrieb@firma.example", exact=True).click()
    await page.get_by_role("link", name="Nachrichten (2)").click()
    await expect(page.locator("tbody tr")).to_have_count(2)
    await _shot(page, "07-messages")
    await page.get_by_role("link", name="Rückfrage").click()
    await expect(page.locator(".message-text")).to_have_text("Hallo!")
    await _shot(page, "08-message")

    await page.get_by_role("link", name="vertrieb@firma.example", exact=True).click()
    await page.get_by_role("link", name="Eigener SMTP-Server").click()
    await _shot(page, "09-smtp-form")
    await page.go_back()
    await _shot(page, "10-account-with-domain-panel")

    await page.get_by_role("link", name="Zusammenführen").click()
    await expect(page.get_by_text("Alle 2 Nachrichten von vertrieb@firma.example")).to_be_visible()
    await page.get_by_label("Ziel-Mail-Account").select_option(
        label="info@firma.example (<script>alert(1)</script>, 0 Nachrichten)"
    )
    await page.get_by_label("Geben Sie zur Bestätigung").fill("vertrieb@firma.example")
    await _shot(page, "11-merge")
    await page.get_by_role("button", name="Zusammenführen und vertrieb@firma.example löschen").click()
    await expect(page.get_by_text("2 Nachrichten verschoben")).to_be_visible()
    await expect(page.get_by_role("link", name="Nachrichten (2)")).to_be_visible()

    await page.get_by_role("link", name="Mail-Accounts", exact=True).click()
    await expect(rows).to_have_count(1)
    await page.get_by_role("link", name="info@firma.example löschen").click()
    await expect(page.get_by_text("nicht wiederhergestellt")).to_be_visible()
    await page.get_by_label("Geben Sie zur Bestätigung").fill("falsch@firma.example")
    await page.get_by_role("button", name="Endgültig löschen").click()
    await expect(page.locator("#f-confirm-error")).to_be_visible()
    await _shot(page, "12-delete-confirmation")
    await page.get_by_label("Geben Sie zur Bestätigung").fill("info@firma.example")
    await page.get_by_role("button", name="Endgültig löschen").click()
    await expect(page.get_by_text("Der Mail-Account wurde gelöscht, mit allen 2 Nachrichten.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Noch keine Mail-Accounts")).to_be_visible()
    await _shot(page, "13-after-delete")

    await page.get_by_role("button", name="Abmelden").click()
    await expect(page.get_by_text("Sie wurden abgemeldet.")).to_be_visible()


async def test_narrow_screen_layout(page: object, user: DashboardUser) -> None:
    """On a phone-sized screen the list stacks its cells and stays usable (screenshot only)."""
    from playwright.async_api import Page, expect

    from resolvers.accounts import create_account
    from resolvers.tokens import ensure_tenant

    assert isinstance(page, Page)
    tenant = await ensure_tenant(user.tenant)
    await create_account(tenant.id, "vertrieb@firma.example", "Vertrieb")
    await page.set_viewport_size({"width": 390, "height": 800})
    await page.goto("/login")
    await page.get_by_label("E-Mail-Adresse").fill(user.email)
    await page.get_by_label("Passwort").fill(PASSWORD)
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page.get_by_role("switch", name="vertrieb@firma.example deaktivieren")).to_be_visible()
    await _shot(page, "14-list-narrow")


async def test_spf_check_and_domain_panel(page: object, user: DashboardUser) -> None:
    """SPF-Check shows the German problem, current and suggested record and the fix; "für alle" shows progress."""
    from playwright.async_api import Page, expect

    from resolvers.accounts import create_account
    from resolvers.tokens import ensure_tenant

    assert isinstance(page, Page)
    tenant = await ensure_tenant(user.tenant)
    await create_account(tenant.id, "vertrieb@alt.example", "Vertrieb")
    await create_account(tenant.id, "info@gut.example", "Info")
    await page.goto("/login")
    await page.get_by_label("E-Mail-Adresse").fill(user.email)
    await page.get_by_label("Passwort").fill(PASSWORD)
    await page.get_by_role("button", name="Anmelden").click()
    await page.get_by_role("link", name="vertrieb@alt.example", exact=True).click()
    await page.get_by_role("button", name="SPF-Check").click()
    panel = page.locator("#domainkonfiguration")
    await expect(panel.get_by_text("SPF-Problem", exact=True)).to_be_visible()
    await expect(panel.get_by_text("angepasst werden muss")).to_be_visible()
    await expect(panel.locator("#suggested-record")).to_have_text(
        "v=spf1 mx include:_spf.anbieter.example include:_spf.aranes.de ~all"
    )
    await expect(panel.get_by_role("button", name="Eintrag kopieren")).to_be_visible()
    await expect(panel.get_by_text("include:_spf.aranes.de", exact=True)).to_be_visible()
    await _shot(page, "15-spf-panel")
    await page.get_by_role("link", name="Mail-Accounts", exact=True).click()
    await page.get_by_role("button", name="SPF-Check für alle").click()
    await expect(page.locator("tbody tr").nth(1).get_by_text("OK")).to_be_visible()
    await expect(page.locator("tbody tr").first.locator(".badge-problem")).to_be_visible()
    await _shot(page, "16-list-after-spf-check-all")


async def _account_id(number: int) -> int:
    from orm.models import MailAccount

    return (await MailAccount.get(mailbox_number=number)).id
