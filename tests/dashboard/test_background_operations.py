"""The dashboard during a merge or delete that runs in the background: progress on the account's page, no
actions that would be refused, a badge in the list, and the page that follows the account to its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.account_jobs import finish_operation, run_batch
from resolvers.accounts import create_account
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from resolvers.tokens import ensure_tenant
from tests.support.dashboard import DashboardUser, csrf_from, sign_in

# Above this many messages a merge or delete runs in the background here.
ABOVE = 2


@pytest.fixture
async def dashboard(db: str, settings: Settings, user: DashboardUser) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in dashboard whose large operations are enqueued (no worker: the test runs the batches)."""
    app = build_app(
        replace(settings, background_operation_messages=ABOVE, jobs_in_process=False), manage_database=False
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        assert (await sign_in(http, user.email)).status_code == 303
        yield http


async def _account_with_messages(tenant: str, email: str, count: int) -> int:
    account = await create_account((await ensure_tenant(tenant)).id, email, "Vertrieb")
    for i in range(count):
        raw = f"From: kunde@example.com\r\nSubject: Nr. {i}\r\n\r\nHallo\r\n".encode()
        await deliver_message([Recipient(account.id, account.mailbox_number, is_bounce=False)], raw)
    return account.id


async def _slug_of(http: httpx.AsyncClient, email: str) -> str:
    page = (await http.get("/mail-accounts", params={"q": email})).text
    return page.split('<a href="/mail-accounts/', 1)[1].split('"')[0]


async def test_a_large_merge_shows_its_progress_and_leads_to_the_target(
    dashboard: httpx.AsyncClient, user: DashboardUser
) -> None:
    """Merging an account above the setting lands on its page with the progress and no merge/delete buttons;
    the list shows "Wird zusammengeführt"; when it is done, the page's reload leads to the target."""
    source_id = await _account_with_messages(user.tenant, "alt@firma.example", 5)
    await _account_with_messages(user.tenant, "neu@firma.example", 0)
    slug = await _slug_of(dashboard, "alt@firma.example")
    target_slug = await _slug_of(dashboard, "neu@firma.example")
    page = await dashboard.get(f"/mail-accounts/{slug}/merge")
    target_id = page.text.split('<option value="', 2)[2].split('"')[0]
    started = await dashboard.post(
        f"/mail-accounts/{slug}/merge",
        data={"csrf_token": csrf_from(page.text), "targetId": target_id, "confirm": "alt@firma.example"},
    )
    assert started.status_code == 303
    assert started.headers["location"] == f"/mail-accounts/{slug}"

    assert await run_batch(source_id, 2)
    detail = (await dashboard.get(started.headers["location"])).text
    assert "Die Zusammenführung hat begonnen: 5 Nachrichten werden im Hintergrund verschoben." in detail
    assert "Zusammenführung läuft" in detail
    assert '<progress max="5" value="2"' in detail
    assert "2 von 5 Nachrichten verschoben." in detail
    assert f'href="/mail-accounts/{target_slug}">Ziel-Account</a>' in detail
    assert f'href="/mail-accounts/{slug}/merge"' not in detail and f'href="/mail-accounts/{slug}/delete"' not in detail
    refresh = detail.split('http-equiv="refresh" content="5; url=', 1)[1].split('"')[0].replace("&amp;", "&")
    assert refresh == f"/mail-accounts/{slug}?finished=MERGE&then=/mail-accounts/{target_slug}"

    listing = (await dashboard.get("/mail-accounts")).text
    assert "Wird zusammengeführt" in listing
    assert f'action="/mail-accounts/{slug}/status"' not in listing

    await finish_operation(source_id)
    finished = await dashboard.get(refresh)
    assert finished.status_code == 303 and finished.headers["location"] == f"/mail-accounts/{target_slug}"
    target_page = (await dashboard.get(finished.headers["location"])).text
    assert "Die Zusammenführung ist abgeschlossen" in target_page
    assert "Nachrichten (5)" in target_page


async def test_a_large_delete_shows_its_progress_and_ends_on_the_list(
    dashboard: httpx.AsyncClient, user: DashboardUser
) -> None:
    """Deleting above the setting shows "Löschung läuft" on the account's page; its status cannot be toggled
    meanwhile (a clear notice, not "not found"); the last reload ends on the list."""
    account_id = await _account_with_messages(user.tenant, "weg@firma.example", 3)
    slug = await _slug_of(dashboard, "weg@firma.example")
    page = await dashboard.get(f"/mail-accounts/{slug}/delete")
    started = await dashboard.post(
        f"/mail-accounts/{slug}/delete", data={"csrf_token": csrf_from(page.text), "confirm": "weg@firma.example"}
    )
    assert started.status_code == 303 and started.headers["location"] == f"/mail-accounts/{slug}"
    detail = (await dashboard.get(started.headers["location"])).text
    assert "Die Löschung hat begonnen: 3 Nachrichten werden im Hintergrund gelöscht." in detail
    assert "Löschung läuft" in detail and "0 von 3 Nachrichten gelöscht." in detail
    await MailAccount.filter(id=account_id).update(operation_total=1_250_000, operation_done=12_000)
    big = (await dashboard.get(started.headers["location"])).text
    assert "12.000 von 1.250.000 Nachrichten gelöscht." in big

    toggled = await dashboard.post(
        f"/mail-accounts/{slug}/status",
        data={"csrf_token": csrf_from(detail), "status": "INACTIVE", "next": "/mail-accounts"},
    )
    assert toggled.status_code == 303
    listing = (await dashboard.get(toggled.headers["location"].split("#")[0])).text
    assert "Für diesen Mail-Account läuft noch eine Zusammenführung oder Löschung." in listing
    assert "Wird gelöscht" in listing

    await finish_operation(account_id)
    finished = await dashboard.get(f"/mail-accounts/{slug}", params={"finished": "DELETE", "then": "/mail-accounts"})
    assert finished.status_code == 303 and finished.headers["location"] == "/mail-accounts"
    assert "Die Löschung ist abgeschlossen" in (await dashboard.get("/mail-accounts")).text
    # Without the marker a vanished account is just not found; a foreign `then` is never followed.
    assert (await dashboard.get(f"/mail-accounts/{slug}")).status_code == 404
    away = await dashboard.get(f"/mail-accounts/{slug}", params={"finished": "DELETE", "then": "//evil.example/"})
    assert away.headers["location"] == "/mail-accounts"
