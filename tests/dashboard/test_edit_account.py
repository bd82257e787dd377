"""The edit panel of the account page: new address and sender name through updateAccount, over HTTP and in Chromium."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.browser import chromium_page, needs_chromium, sign_in_page
from tests.support.dashboard import DashboardUser, account_path, csrf_from, post_form, sign_in
from tests.support.serve import app_with_dns
from tests.support.zones import ZONE


async def _account(user: DashboardUser, email: str = "vertrieb@gut.example", name: str = "Vertrieb") -> MailAccount:
    return await create_account((await ensure_tenant(user.tenant)).id, email, name)


async def _edit(http: httpx.AsyncClient, account: MailAccount, email: str, sender_name: str) -> httpx.Response:
    path = account_path(account.id)
    return await post_form(http, path, f"{path}/edit", {"email": email, "senderName": sender_name})


def _input(html: str, name: str) -> str:
    match = re.search(rf'<input id="f-{name}" name="{name}"[^>]*>', html)
    assert match, f"no input {name}"
    return match.group(0)


async def test_edit_saves_and_shows_the_new_values(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """Saving leads back to the account page with a flash and the new address and name; the mailbox stays."""
    account = await _account(user)
    response = await _edit(signed_in, account, "info@gut.example", "Innendienst")
    assert response.status_code == 303
    assert response.headers["location"] == account_path(account.id)
    page = (await signed_in.get(response.headers["location"])).text
    assert "Die Änderungen wurden gespeichert." in page
    assert "<h1>info@gut.example</h1>" in page
    assert "Innendienst ·" in page
    assert 'value="info@gut.example"' in _input(page, "email")
    assert 'value="Innendienst"' in _input(page, "senderName")
    row = await MailAccount.get(id=account.id)
    assert (row.email, row.sender_name) == ("info@gut.example", "Innendienst")
    assert row.mailbox_number == account.mailbox_number


async def test_new_address_clears_the_spf_result(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """After a check, another address voids the stored SPF result: the panel says "Noch nicht geprüft" again."""
    account = await _account(user)
    path = account_path(account.id)
    page = await spf_browser.get(path)
    await spf_browser.post(f"{path}/spf-check", data={"csrf_token": csrf_from(page.text)})
    assert "SPF in Ordnung" in (await spf_browser.get(path)).text

    renamed = await _edit(spf_browser, account, "Vertrieb@GUT.example", "Vertrieb")
    page = await spf_browser.get(renamed.headers["location"])
    assert "SPF in Ordnung" in page.text, "the same address in other case keeps its result"

    moved = await _edit(spf_browser, account, "vertrieb@alt.example", "Vertrieb")
    assert moved.status_code == 303
    page = await spf_browser.get(moved.headers["location"])
    assert "Das SPF-Ergebnis der alten Adresse gilt nicht mehr" in page.text
    assert "Noch nicht geprüft" in page.text and "SPF in Ordnung" not in page.text
    row = await MailAccount.get(id=account.id)
    assert (row.spf_report, row.spf_ok, row.spf_checked_at) == (None, None, None)


async def test_duplicate_address_is_shown_at_the_field(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """An address another account has: 422, the German message at the e-mail field, the entered values kept."""
    account = await _account(user)
    await _account(user, "info@gut.example", "Info")
    response = await _edit(signed_in, account, "INFO@gut.example", "Neuer Name")
    assert response.status_code == 422
    field = _input(response.text, "email")
    assert 'value="INFO@gut.example"' in field
    assert 'aria-invalid="true"' in field and "f-email-error" in field
    message = "Für diese E-Mail-Adresse gibt es bereits einen Mail-Account."
    assert f'<p class="field-error" id="f-email-error">{message}</p>' in response.text
    assert 'value="Neuer Name"' in _input(response.text, "senderName")
    row = await MailAccount.get(id=account.id)
    assert (row.email, row.sender_name) == ("vertrieb@gut.example", "Vertrieb")


@pytest.mark.parametrize("sender_name", ["   ", "Vertrieb\r\nBcc: alle@example.com", "x" * 201])
async def test_invalid_sender_name_is_shown_at_the_field(
    signed_in: httpx.AsyncClient, user: DashboardUser, sender_name: str
) -> None:
    """An empty, multi-line or too long sender name: 422 at its field, the entered address kept, nothing saved."""
    account = await _account(user)
    response = await _edit(signed_in, account, "info@gut.example", sender_name)
    assert response.status_code == 422
    field = _input(response.text, "senderName")
    assert 'aria-invalid="true"' in field and "f-senderName-error" in field
    assert "Der Absendername muss 1 bis 200 Zeichen lang sein" in response.text
    assert 'aria-invalid="true"' not in _input(response.text, "email")
    assert 'value="info@gut.example"' in _input(response.text, "email")
    row = await MailAccount.get(id=account.id)
    assert (row.email, row.sender_name) == ("vertrieb@gut.example", "Vertrieb")


async def test_edit_without_csrf_token_is_refused(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """A POST without the session's CSRF token changes nothing."""
    account = await _account(user)
    response = await signed_in.post(
        f"{account_path(account.id)}/edit", data={"email": "info@gut.example", "senderName": "Fremd"}
    )
    assert response.status_code == 403
    row = await MailAccount.get(id=account.id)
    assert (row.email, row.sender_name) == ("vertrieb@gut.example", "Vertrieb")


async def test_other_tenants_account_is_not_found(
    browser: httpx.AsyncClient, user: DashboardUser, other_user: DashboardUser
) -> None:
    """Another tenant's account cannot be edited: 404, and it stays as it was; its own user's same form saves."""
    account = await _account(user)
    form = {"email": "x@gut.example", "senderName": "X"}
    assert (await sign_in(browser, other_user.email)).status_code == 303
    response = await post_form(browser, "/mail-accounts", f"{account_path(account.id)}/edit", form)
    assert response.status_code == 404
    row = await MailAccount.get(id=account.id)
    assert (row.email, row.sender_name) == ("vertrieb@gut.example", "Vertrieb")
    browser.cookies.clear()
    assert (await sign_in(browser, user.email)).status_code == 303
    assert (await post_form(browser, "/mail-accounts", f"{account_path(account.id)}/edit", form)).status_code == 303


@pytest.fixture
async def base_url(db: str, settings: Settings) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, its SPF checks asking the loopback DNS server."""
    async with app_with_dns(settings, ZONE) as url:
        yield url


@needs_chromium
async def test_edit_the_sender_name_in_the_browser(base_url: str, user: DashboardUser) -> None:
    """In Chromium: change the sender name in the edit panel, see the flash and the new name; an error keeps focus."""
    from playwright.async_api import expect

    account = await _account(user)
    async with chromium_page(base_url) as page:
        await sign_in_page(page, user.email)
        await page.get_by_role("link", name="vertrieb@gut.example", exact=True).click()
        panel = page.locator("#bearbeiten")
        await expect(panel.get_by_role("heading", name="Bearbeiten")).to_be_visible()
        await panel.get_by_label("Absendername").fill("")
        await panel.get_by_role("button", name="Änderungen speichern").click()
        await expect(panel.locator("#f-senderName-error")).to_contain_text("1 bis 200 Zeichen")
        await expect(panel.get_by_label("Absendername")).to_be_focused()
        await panel.get_by_label("Absendername").fill("Vertrieb Süd")
        await panel.get_by_role("button", name="Änderungen speichern").click()
        await expect(page.get_by_text("Die Änderungen wurden gespeichert.")).to_be_visible()
        await expect(page.locator(".lead")).to_contain_text("Vertrieb Süd")
        await page.get_by_role("link", name="Mail-Accounts", exact=True).click()
        await expect(page.get_by_role("cell", name="Vertrieb Süd")).to_be_visible()
    assert (await MailAccount.get(id=account.id)).sender_name == "Vertrieb Süd"
