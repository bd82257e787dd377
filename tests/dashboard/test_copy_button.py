"""The copy buttons in a real browser: their feedback comes from the page, in the page's language."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.browser import chromium_page, needs_chromium, sign_in_page
from tests.support.dashboard import DashboardUser
from tests.support.serve import uvicorn_on_loopback

pytestmark = needs_chromium


@pytest.fixture
async def base_url(db: str, settings: Settings) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, on this test's event loop and database."""
    async with uvicorn_on_loopback(build_app(settings, manage_database=False)) as url:
        yield url


async def test_copy_button_says_kopiert(base_url: str, user: DashboardUser) -> None:
    """A copy button puts the address on the clipboard and then reads "Kopiert", a text the page gave the script."""
    from playwright.async_api import expect

    await create_account((await ensure_tenant(user.tenant)).id, "vertrieb@firma.example", "Vertrieb")
    async with chromium_page(base_url) as page:
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        await sign_in_page(page, user.email)
        await page.get_by_role("link", name="vertrieb@firma.example", exact=True).click()
        button = page.get_by_role("button", name="Ausgangsadresse kopieren")
        await button.click()
        await expect(button).to_have_text("Kopiert")
        shown = await page.locator(".copyable", has=button).locator("code").inner_text()
        assert await page.evaluate("navigator.clipboard.readText()") == shown
        # The feedback is brief: the button reads "Kopieren" again.
        await expect(button).to_have_text("Kopieren", timeout=30_000)
