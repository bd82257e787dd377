"""Every dashboard page fits 360 to 1440 px in Chromium: no horizontal scrolling, nothing cut off or hidden."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from strawberry.relay import GlobalID

from mailaccounts.app import build_app, build_spf_checker
from mailaccounts.settings import Settings
from orm.models import MailAccount, Message, SmtpSecurity
from resolvers.accounts import create_account
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from resolvers.spf import check_accounts
from resolvers.tokens import ensure_tenant
from tests.support.browser import chromium_page, needs_chromium, sign_in_page
from tests.support.dashboard import DashboardUser, account_path
from tests.support.dns import LoopbackDnsServer
from tests.support.serve import uvicorn_on_loopback
from tests.support.zones import ZONE, mail_domain
from web.formatting import to_slug

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = needs_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard" / "layout"
# The widths the issue names, and the tablet and small-laptop widths between (1200: the table's tightest).
WIDTHS = (360, 390, 768, 1024, 1200, 1280, 1440)
SCREENSHOT_WIDTHS = (390, 1280)
HEIGHT = 800

# Long names, as real companies have them, on domains the loopback DNS server answers for.
LONG = "kundenservice-und-vertrieb-sueddeutschland.example"
BARE = "ohne-spf-und-ohne-mx-eintraege.example"
LAYOUT_ZONE: dict[str, list[Any]] = {
    **ZONE,
    **mail_domain(LONG, "v=spf1 mx include:_spf.anbieter.example include:_spf.grosshaendler-logistik.example ~all"),
    "_spf.grosshaendler-logistik.example": [{"TXT": "v=spf1 ip4:198.51.100.0/24 ~all"}],
    BARE: [{"A": "198.51.100.1"}],
}
MAIN_EMAIL = f"vertriebsinnendienst.nord@{LONG}"
LONG_SENDER = "Vertriebsinnendienst Norddeutschland der Kundenservice und Vertrieb GmbH & Co. KG"
LONG_FROM = (
    "Dr. Maximiliane Musterfrau-Schnabelhuber <maximiliane.musterfrau-schnabelhuber@grosskunde-international.example>"
)
LONG_SUBJECT = (
    "Rückfrage zu Ihrem Angebot Nr. 2025-0815-ABCD vom 3. Juni über die Lieferung von 250 Einheiten "
    "Hochleistungsdichtungsringe einschließlich Montage"
)

# Inside the page, the elements a user must be able to see and click: (selector, at least this many).
REQUIRED = {
    "accounts": [
        ("tbody tr .actions a", 7),
        ("tbody tr td[data-label='Nachrichten'] a", 7),
        ("tbody tr [role=switch]", 7),
        ("tbody tr .badge-problem", 6),
    ],
    "messages": [("tbody tr td[data-label='Betreff'] a", 3)],
}


@dataclass
class Seeded:
    """The paths of the seeded pages and the signed-in user."""

    user: DashboardUser
    account: str
    unchecked: str
    smtp_account: str
    message: str


async def _seed(user: DashboardUser, settings: Settings) -> Seeded:
    """Accounts with long addresses and names, one of each SPF problem, messages with long headers."""
    tenant = await ensure_tenant(user.tenant)
    main = await create_account(tenant.id, MAIN_EMAIL, LONG_SENDER)
    await create_account(tenant.id, f"buchhaltung.und.rechnungswesen@{BARE}", "Buchhaltung und Rechnungswesen")
    await create_account(tenant.id, "info@gibtsnicht-mehr-seit-langem-abgelaufen.example", "Info")
    await create_account(tenant.id, "post@kaputt.example", "Poststelle der Niederlassung Süd")
    await create_account(tenant.id, "ausland@zuviel.example", "Auslandsvertrieb")
    smtp_account = await create_account(tenant.id, "service@gut.example", "Service")
    await create_account(tenant.id, "alt@ohnespf.example", "Alter Vertrieb (stillgelegt)", active=False)
    await check_accounts(tenant.id, build_spf_checker(settings))
    unchecked = await create_account(tenant.id, f"neu.im.team.seit.gestern@{LONG}", "Neu im Team")
    await MailAccount.filter(id=smtp_account.id).update(
        smtp_host="smtp-relay.rechenzentrum-frankfurt.kundenservice-und-vertrieb.example",
        smtp_port=587,
        smtp_security=SmtpSecurity.STARTTLS,
        smtp_username="vertriebsinnendienst.nord@kundenservice-und-vertrieb-sueddeutschland.example",
    )
    recipient = Recipient(main.id, main.mailbox_number, is_bounce=False)
    for number, subject in enumerate((LONG_SUBJECT, "Angebot", "Termin")):
        raw = (
            f"From: {LONG_FROM}\r\nTo: {MAIN_EMAIL}\r\nCc: einkauf.zentrale@grosskunde-international.example\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{number}.20250603101500.abcdef0123456789@mx.grosskunde.example>\r\n"
            "Date: Tue, 03 Jun 2025 10:15:00 +0200\r\n\r\n"
            "Guten Tag,\r\nbitte sehen Sie sich das an: https://portal.grosskunde-international.example/"
            + "angebote/2025/0815/" * 8
            + "\r\n"
        )
        await deliver_message([recipient], raw.encode())
    message = await Message.filter(account_id=main.id, subject=LONG_SUBJECT).first()
    assert message is not None
    return Seeded(
        user=user,
        account=account_path(main.id),
        unchecked=account_path(unchecked.id),
        smtp_account=account_path(smtp_account.id),
        message=f"{account_path(main.id)}/messages/{to_slug(str(GlobalID('Message', str(message.id))))}",
    )


async def _check_all(page: Page) -> None:
    await page.get_by_role("button", name="SPF-Check für alle").click()
    await page.locator("[data-spf-summary]").wait_for()


async def _submit_bad_address(page: Page) -> None:
    await page.get_by_label("E-Mail-Adresse").fill("vertriebsinnendienst.nord@kundenservice-und-vertrieb")
    await page.get_by_role("button", name="Anlegen").click()
    await page.locator("#f-email-error").wait_for()


async def _confirm_wrong_address(page: Page) -> None:
    await page.get_by_label("Geben Sie zur Bestätigung").fill("falsch@firma.example")
    await page.get_by_role("button", name="Endgültig löschen").click()
    await page.locator("#f-confirm-error").wait_for()


@dataclass(frozen=True)
class Visit:
    """How a user reaches a page: its path, signed in or not, and what they do there first."""

    path: Callable[[Seeded], str]
    signed_in: bool = True
    then: Callable[[Page], Awaitable[None]] | None = None


# Each page of the dashboard. GraphiQL is a developer tool, not a dashboard page.
PAGES = {
    "login": Visit(lambda seeded: "/login", signed_in=False),
    "unlock-invalid": Visit(lambda seeded: "/unlock?token=abgelaufen", signed_in=False),
    "accounts": Visit(lambda seeded: "/mail-accounts"),
    "accounts-spf-summary": Visit(lambda seeded: "/mail-accounts", then=_check_all),
    "accounts-no-match": Visit(lambda seeded: "/mail-accounts?q=gibt-es-nicht"),
    "account-new": Visit(lambda seeded: "/mail-accounts/new"),
    "account-new-errors": Visit(lambda seeded: "/mail-accounts/new", then=_submit_bad_address),
    "account-spf-problem": Visit(lambda seeded: seeded.account),
    "account-unchecked": Visit(lambda seeded: seeded.unchecked),
    "smtp": Visit(lambda seeded: f"{seeded.smtp_account}/smtp"),
    "merge": Visit(lambda seeded: f"{seeded.account}/merge"),
    "delete": Visit(lambda seeded: f"{seeded.account}/delete", then=_confirm_wrong_address),
    "messages": Visit(lambda seeded: f"{seeded.account}/messages"),
    "message": Visit(lambda seeded: seeded.message),
    "not-found": Visit(lambda seeded: "/mail-accounts/gibt-es-nicht"),
}

# What does not fit, as sentences: the page scrolls sideways, an element or text ends outside the
# viewport, a box scrolls or clips its content sideways (only <pre> may scroll; a text field scrolls
# its own value), or a control is
# covered or partly outside. Elements hidden on purpose (visually-hidden, the skip link) are left out.
_MEASURE = """
() => {
  const doc = document.documentElement;
  const width = doc.clientWidth;
  const problems = [];
  const name = (el) => {
    const text = (el.innerText || el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    const cls = classes.map((c) => "." + c).join("");
    return `<${el.tagName.toLowerCase()}${cls}> "${text}"`;
  };
  const skipped = (el) => el.closest(".visually-hidden, .skip-link, [hidden]") !== null
    || el.getClientRects().length === 0 || getComputedStyle(el).visibility !== "visible";
  const scrollsInside = (node) => {
    for (let up = node.parentElement; up; up = up.parentElement) {
      if (up.tagName === "PRE" && ["auto", "scroll"].includes(getComputedStyle(up).overflowX)) return true;
    }
    return false;
  };
  // Only the outermost element that does not fit is named, not each of its descendants.
  const reported = new Set();
  const insideReported = (node) => {
    for (let up = node.parentElement; up; up = up.parentElement) if (reported.has(up)) return true;
    return false;
  };
  const outside = (rect) => rect.width > 0 && (rect.left < -0.5 || rect.right > width + 0.5);
  if (doc.scrollWidth > width) problems.push(`page scrolls sideways: scrollWidth ${doc.scrollWidth} > ${width}`);
  const elements = [...document.body.querySelectorAll("*")].filter((el) => !skipped(el));
  for (const el of elements) {
    if (scrollsInside(el) || insideReported(el)) continue;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (outside(rect)) {
      problems.push(`${name(el)} spans ${Math.round(rect.left)}..${Math.round(rect.right)}`);
      reported.add(el);
    } else if (!el.matches("pre, input, select, textarea") && style.overflowX !== "visible"
               && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`${name(el)} hides ${el.scrollWidth - el.clientWidth}px sideways (overflow-x: ${style.overflowX})`);
      reported.add(el);
    }
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!node.textContent.trim() || !parent || skipped(parent) || scrollsInside(node)) continue;
    if (reported.has(parent) || insideReported(parent)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    if ([...range.getClientRects()].some(outside)) {
      problems.push(`text "${node.textContent.trim().slice(0, 40)}" in ${name(parent)} ends outside 0..${width}`);
    }
  }
  const controls = elements.filter((el) => el.matches("a[href], button, input:not([type=hidden]), select, textarea"));
  for (const el of controls) {
    if (reported.has(el) || insideReported(el)) continue;
    window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - window.innerHeight / 2);
    const box = el.getClientRects()[0];
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    if (!hit || !(el === hit || el.contains(hit))) {
      problems.push(`${name(el)} is covered by ${hit ? name(hit) : "nothing"}`);
    }
  }
  window.scrollTo(0, 0);
  return problems;
}
"""


@pytest.fixture
async def served(db: str, settings: Settings, user: DashboardUser) -> AsyncIterator[tuple[str, Seeded]]:
    """The app with seeded data on a loopback port; SPF checks ask the loopback DNS server."""
    async with LoopbackDnsServer(LAYOUT_ZONE) as dns_server:
        settings = replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=2.0)
        seeded = await _seed(user, settings)
        async with uvicorn_on_loopback(build_app(settings, manage_database=False)) as url:
            yield url, seeded


@pytest.mark.parametrize("name", list(PAGES))
async def test_page_fits_every_width(served: tuple[str, Seeded], name: str) -> None:
    """At 360, 390, 1280 and 1440 px the page does not scroll sideways and shows every value and control whole."""
    base_url, seeded = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    async with chromium_page(base_url, width=WIDTHS[0], height=HEIGHT) as page:
        visit = PAGES[name]
        if visit.signed_in:
            await sign_in_page(page, seeded.user.email)
        await page.goto(visit.path(seeded))
        if visit.then is not None:
            await visit.then(page)
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": HEIGHT})
            problems: list[str] = await page.evaluate(_MEASURE)
            failures += [f"{name} at {width}px: {problem}" for problem in problems]
            for selector, at_least in REQUIRED.get(name, []):
                count = await page.locator(selector).filter(visible=True).count()
                if count < at_least:
                    failures.append(f"{name} at {width}px: {count} of {at_least} {selector}")
            if width in SCREENSHOT_WIDTHS:
                await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
                # What the first screen shows (README and docs/DASHBOARD.md use these).
                await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}-screen.png"))
    assert not failures, "\n".join(failures)
