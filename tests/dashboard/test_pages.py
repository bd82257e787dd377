"""Dashboard screens over HTTP: list, create with field errors, toggle, delete, merge, messages, SMTP server."""

from __future__ import annotations

import re

import httpx

from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from resolvers.tokens import ensure_tenant
from tests.support.api import MAILBOX_DOMAIN
from tests.support.dashboard import DashboardUser, csrf_from, post_form
from web.client import Operations
from web.views.accounts import PAGE_SIZE


async def _account(tenant: str, email: str, name: str = "Vertrieb") -> tuple[int, int]:
    account = await create_account((await ensure_tenant(tenant)).id, email, name)
    return account.id, account.mailbox_number


async def _deliver(account_id: int, number: int, subject: str) -> None:
    raw = f"From: Kunde <kunde@example.com>\r\nTo: x@firma.example\r\nSubject: {subject}\r\n\r\nHallo Welt\r\n"
    await deliver_message([Recipient(account_id=account_id, mailbox_number=number, is_bounce=False)], raw.encode())


def test_operations_are_valid_against_the_schema() -> None:
    """Every document in web/operations/ validates against the current schema."""
    operations = Operations.load()
    assert {"Accounts", "Account", "CreateAccount", "SetStatus", "DeleteAccount", "MergeAccounts"} <= set(
        operations.documents
    )
    assert operations.errors() == {}


async def test_empty_list_explains_the_first_steps(signed_in: httpx.AsyncClient) -> None:
    """Without accounts the list explains what to do first and offers Anlegen."""
    page = await signed_in.get("/mail-accounts")
    assert page.status_code == 200
    assert "Noch keine Mail-Accounts" in page.text and "Weiterleitung einrichten" in page.text
    assert 'href="/mail-accounts/new"' in page.text


async def test_create_shows_errors_at_the_field_and_then_the_addresses(signed_in: httpx.AsyncClient) -> None:
    """A bad address is reported at the E-Mail field; a good one leads to the p-addresses and the forwarding step."""
    bad = await post_form(
        signed_in, "/mail-accounts/new", "/mail-accounts/new", {"email": "kein-at", "senderName": "Vertrieb"}
    )
    assert bad.status_code == 422
    assert 'id="f-email-error"' in bad.text and "Bitte geben Sie eine gültige E-Mail-Adresse ein." in bad.text
    assert 'value="kein-at"' in bad.text
    good = await post_form(
        signed_in,
        "/mail-accounts/new",
        "/mail-accounts/new",
        {"email": "vertrieb@firma.example", "senderName": "Vertrieb", "active": "on"},
    )
    assert good.status_code == 303
    page = await signed_in.get(good.headers["location"])
    assert "Der Mail-Account wurde angelegt." in page.text
    assert f"@{MAILBOX_DOMAIN}" in page.text and f".out@{MAILBOX_DOMAIN}" in page.text
    assert "Weiterleitung einrichten" in page.text and "eigenen Mailserver" in page.text
    duplicate = await post_form(
        signed_in,
        "/mail-accounts/new",
        "/mail-accounts/new",
        {"email": "VERTRIEB@firma.example", "senderName": "Vertrieb"},
    )
    assert "Für diese E-Mail-Adresse gibt es bereits einen Mail-Account." in duplicate.text


async def test_toggle_search_filter_and_pages(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """The toggle deactivates a row; search, status filter and pages narrow the list."""
    for index in range(PAGE_SIZE + 2):
        await _account(user.tenant, f"konto{index:02d}@firma.example")
    page = await signed_in.get("/mail-accounts")
    assert f"{PAGE_SIZE + 2} Mail-Accounts · Seite 1 von 2" in page.text
    assert "konto00@" in page.text and f"konto{PAGE_SIZE + 1:02d}@" not in page.text
    next_href = page.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = await signed_in.get(next_href)
    assert f"konto{PAGE_SIZE + 1:02d}@" in second.text and "Seite 2 von 2" in second.text
    assert 'rel="prev"' in second.text
    match = re.search(r'action="(/mail-accounts/[^"]+/status)"', page.text)
    assert match
    row_action = match.group(1)
    toggled = await signed_in.post(
        row_action,
        data={"csrf_token": csrf_from(page.text), "status": "INACTIVE", "next": "/mail-accounts?status=INACTIVE"},
    )
    # The fragment names the row's switch, which the browser then focuses (tests/dashboard/test_focus.py).
    row_switch = "status-" + row_action.split("/")[2]
    assert toggled.status_code == 303 and toggled.headers["location"] == f"/mail-accounts?status=INACTIVE#{row_switch}"
    inactive = await signed_in.get(toggled.headers["location"])
    assert "Der Mail-Account wurde deaktiviert." in inactive.text
    assert "1 Mail-Account · Seite 1 von 1" in inactive.text and "konto00@" in inactive.text
    found = await signed_in.get("/mail-accounts", params={"q": "konto07"})
    assert "konto07@" in found.text and "konto08@" not in found.text
    none = await signed_in.get("/mail-accounts", params={"q": "gibtsnicht"})
    assert "Keine Mail-Accounts gefunden" in none.text


async def test_delete_needs_the_typed_address(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """The confirmation page states the loss and the message count; only the typed address deletes."""
    account_id, number = await _account(user.tenant, "alt@firma.example")
    await _deliver(account_id, number, "Eins")
    await _deliver(account_id, number, "Zwei")
    listing = await signed_in.get("/mail-accounts")
    delete_path = listing.text.split('aria-label="alt@firma.example löschen"')[0].rsplit('href="', 1)[1].split('"')[0]
    page = await signed_in.get(delete_path)
    assert "allen 2 Nachrichten" in page.text and "nicht wiederhergestellt" in page.text
    wrong = await signed_in.post(delete_path, data={"csrf_token": csrf_from(page.text), "confirm": "alt@firma"})
    assert wrong.status_code == 422 and "genau eingeben" in wrong.text
    done = await signed_in.post(delete_path, data={"csrf_token": csrf_from(page.text), "confirm": "alt@firma.example"})
    assert done.status_code == 303
    after = await signed_in.get("/mail-accounts")
    assert "Der Mail-Account wurde gelöscht, mit allen 2 Nachrichten." in after.text
    assert "alt@firma.example" not in after.text


async def test_merge_moves_messages_and_deletes_the_source(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """Zusammenführen names the moving messages, needs the typed source address and lands on the target."""
    source_id, number = await _account(user.tenant, "alt@firma.example")
    await _account(user.tenant, "neu@firma.example", "Neu")
    await _deliver(source_id, number, "Eins")
    detail = (await signed_in.get("/mail-accounts")).text.split('<a href="/mail-accounts/', 1)[1].split('"')[0]
    merge_path = f"/mail-accounts/{detail}/merge"
    page = await signed_in.get(merge_path)
    assert "Die <strong>einzige Nachricht</strong>" in page.text and "gelöscht" in page.text
    target_id = page.text.split('<option value="', 2)[2].split('"')[0]
    token = csrf_from(page.text)
    missing = await signed_in.post(merge_path, data={"csrf_token": token, "targetId": "", "confirm": ""})
    assert missing.status_code == 422 and 'id="f-targetId-error"' in missing.text
    wrong = await signed_in.post(
        merge_path, data={"csrf_token": token, "targetId": target_id, "confirm": "neu@firma.example"}
    )
    assert wrong.status_code == 422 and 'id="f-confirm-error"' in wrong.text
    done = await signed_in.post(
        merge_path, data={"csrf_token": token, "targetId": target_id, "confirm": "alt@firma.example"}
    )
    assert done.status_code == 303
    target = await signed_in.get(done.headers["location"])
    assert "1 Nachricht verschoben" in target.text and "neu@firma.example" in target.text
    assert "Nachrichten (1)" in target.text
    assert "alt@firma.example" not in (await signed_in.get("/mail-accounts")).text


async def test_merge_page_says_that_inactive_accounts_are_no_targets(
    signed_in: httpx.AsyncClient, user: DashboardUser
) -> None:
    """An inactive account is not offered as merge target, and the page says why instead of hiding it silently."""
    await _account(user.tenant, "alt@firma.example")
    inactive_id, _ = await _account(user.tenant, "ruhend@firma.example", "Ruhend")
    await MailAccount.filter(id=inactive_id).update(active=False)
    listing = (await signed_in.get("/mail-accounts")).text
    source = listing.split('<a href="/mail-accounts/', 1)[1].split('"')[0]
    page = (await signed_in.get(f"/mail-accounts/{source}/merge")).text
    assert "ruhend@firma.example" not in page
    assert "Deaktivierte Mail-Accounts kommen als Ziel nicht in Frage" in page
    await _account(user.tenant, "neu@firma.example", "Neu")
    page = (await signed_in.get(f"/mail-accounts/{source}/merge")).text
    assert "neu@firma.example" in page and "ruhend@firma.example" not in page
    assert "Zur Wahl stehen nur aktive Mail-Accounts" in page


async def test_messages_list_and_view_show_text_safely(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """The message list links each mail; the view shows headers and text, HTML only as escaped source."""
    account_id, number = await _account(user.tenant, "post@firma.example")
    html = (
        "From: <b>Kunde</b> <kunde@example.com>\r\nSubject: <img src=x onerror=alert(1)>\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n<p onclick=alert(1)>Hallo</p><script>alert(2)</script>\r\n"
    )
    await deliver_message([Recipient(account_id=account_id, mailbox_number=number, is_bounce=False)], html.encode())
    detail = (await signed_in.get("/mail-accounts")).text.split('<a href="/mail-accounts/', 1)[1].split('"')[0]
    listing = await signed_in.get(f"/mail-accounts/{detail}/messages")
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing.text
    message_path = listing.text.split(f'href="/mail-accounts/{detail}/messages/', 1)[1].split('"')[0]
    view = await signed_in.get(f"/mail-accounts/{detail}/messages/{message_path}")
    assert view.status_code == 200
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in view.text and "<script>alert" not in view.text
    assert "nur HTML" in view.text


async def test_smtp_server_form_saves_and_clears(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """The own SMTP server is saved (password never shown back) and removed again."""
    await _account(user.tenant, "smtp@firma.example")
    detail = (await signed_in.get("/mail-accounts")).text.split('<a href="/mail-accounts/', 1)[1].split('"')[0]
    path = f"/mail-accounts/{detail}/smtp"
    bad_port = await post_form(signed_in, path, path, {"host": "smtp.firma.example", "port": "0", "security": "TLS"})
    assert bad_port.status_code == 422 and 'id="f-port-error"' in bad_port.text
    data = {"host": "smtp.firma.example", "port": "465", "security": "TLS", "username": "u", "password": "geheim-123"}
    saved = await post_form(signed_in, path, path, data)
    assert saved.status_code == 303
    account_page = await signed_in.get(saved.headers["location"])
    assert "Der eigene SMTP-Server wurde gespeichert." in account_page.text
    assert "smtp.firma.example:465" in account_page.text
    form = await signed_in.get(path)
    assert "geheim-123" not in form.text
    cleared = await signed_in.post(f"{path}/clear", data={"csrf_token": csrf_from(form.text)})
    assert "Der eigene SMTP-Server wurde entfernt" in (await signed_in.get(cleared.headers["location"])).text
