"""Keyboard use of the account list in a real browser: a toggled switch keeps the focus, links have readable names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from resolvers.tokens import ensure_tenant
from tests.support.browser import chromium_page, needs_chromium, sign_in_page
from tests.support.dashboard import DashboardUser
from tests.support.serve import uvicorn_on_loopback

pytestmark = needs_chromium

EMAILS = [f"{name}@firma.example" for name in ("anna", "bernd", "clara", "dora", "emil")]


@pytest.fixture
async def base_url(db: str, settings: Settings) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, on this test's event loop and database."""
    async with uvicorn_on_loopback(build_app(settings, manage_database=False)) as url:
        yield url


async def _accounts(tenant: str) -> None:
    """Five accounts; clara has three messages, bernd one."""
    tenant_id = (await ensure_tenant(tenant)).id
    accounts = {email: await create_account(tenant_id, email, "Vertrieb") for email in EMAILS}
    for email, count in (("clara@firma.example", 3), ("bernd@firma.example", 1)):
        account = accounts[email]
        for i in range(count):
            raw = f"From: k@kunde.example\r\nSubject: Nr. {i}\r\nMessage-ID: <{i}@kunde.example>\r\n\r\nHallo\r\n"
            await deliver_message([Recipient(account.id, account.mailbox_number, is_bounce=False)], raw.encode())


async def _active() -> dict[str, bool]:
    return {account.email: account.active for account in await MailAccount.all()}


@pytest.mark.parametrize("script", [True, False], ids=["script", "no-script"])
async def test_toggled_switch_keeps_the_focus(base_url: str, user: DashboardUser, script: bool) -> None:
    """Enter and Space on a middle row's switch change that account and leave the focus on its switch."""
    from playwright.async_api import expect

    await _accounts(user.tenant)
    async with chromium_page(base_url, java_script_enabled=script) as page:
        await sign_in_page(page, user.email)
        await expect(page.locator("tbody tr")).to_have_count(5)
        if script:
            await page.evaluate("window.sameDocument = true")

        await page.get_by_role("switch", name="clara@firma.example deaktivieren").focus()
        await page.keyboard.press("Enter")
        switch = page.get_by_role("switch", name="clara@firma.example aktivieren")
        await expect(switch).to_have_attribute("aria-checked", "false")
        await expect(switch).to_be_focused()
        await expect(page.get_by_text("Der Mail-Account wurde deaktiviert.")).to_be_visible()
        assert await _active() == {email: email != "clara@firma.example" for email in EMAILS}

        await page.keyboard.press("Space")
        switch = page.get_by_role("switch", name="clara@firma.example deaktivieren")
        await expect(switch).to_have_attribute("aria-checked", "true")
        await expect(switch).to_be_focused()
        await expect(page.get_by_text("Der Mail-Account wurde aktiviert.")).to_be_visible()
        assert await _active() == dict.fromkeys(EMAILS, True)
        if script:  # the script updated the row in place: no page load in between
            assert await page.evaluate("window.sameDocument === true")


async def test_message_count_link_has_a_readable_name(base_url: str, user: DashboardUser) -> None:
    """The list's message-count link is named "3 Nachrichten von clara@…", not only by its number."""
    from playwright.async_api import expect

    await _accounts(user.tenant)
    async with chromium_page(base_url) as page:
        await sign_in_page(page, user.email)
        clara = page.get_by_role("link", name="3 Nachrichten von clara@firma.example", exact=True)
        await expect(clara).to_have_attribute("href", f"{await _account_path(page, 'clara')}/messages")
        await expect(clara).to_have_text("3 Nachrichten von clara@firma.example")
        for name in ("1 Nachricht von bernd@firma.example", "0 Nachrichten von anna@firma.example"):
            await expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
        await clara.click()
        await expect(page.locator("tbody tr")).to_have_count(3)


async def _account_path(page: object, name: str) -> str:
    from playwright.async_api import Page

    assert isinstance(page, Page)
    href = await page.get_by_role("link", name=f"{name}@firma.example", exact=True).get_attribute("href")
    assert href is not None
    return href
