"""Debian's Chromium for the browser tests, driven by PyPI's playwright (no browser download)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.dashboard import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium_page", "needs_chromium", "sign_in_page"]

CHROMIUM = Path("/usr/bin/chromium")
# As root, headless, and without the background connections this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Without Chromium the browser tests are skipped; in CI (CI=true) a missing browser fails them.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


@asynccontextmanager
async def chromium_page(
    base_url: str, width: int = 1360, height: int = 900, *, java_script_enabled: bool = True
) -> AsyncIterator[Page]:
    """A fresh page of a headless Chromium in German, its relative URLs under `base_url`."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            base_url=base_url,
            locale="de-DE",
            viewport={"width": width, "height": height},
            java_script_enabled=java_script_enabled,
        )
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await browser.close()


async def sign_in_page(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login form; the page then shows the account list."""
    await page.goto("/login")
    await page.get_by_label("E-Mail-Adresse").fill(email)
    await page.get_by_label("Passwort").fill(password)
    await page.get_by_role("button", name="Anmelden").click()
    await page.wait_for_url("**/mail-accounts")
