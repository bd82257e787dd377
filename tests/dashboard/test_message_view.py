"""The message page: German labels, the text the API parsed, and broken mail shown rather than failing."""

from __future__ import annotations

import re

import httpx

from resolvers.accounts import create_account
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from resolvers.tokens import ensure_tenant
from tests.support.dashboard import DashboardUser

LABELS = re.compile(r"<dt>([^<]*)</dt>")


async def _view(http: httpx.AsyncClient, tenant: str, raw: bytes) -> httpx.Response:
    """Deliver `raw` to a new account and open its message page the way a user clicks there."""
    account = await create_account((await ensure_tenant(tenant)).id, "post@firma.example", "Post")
    await deliver_message([Recipient(account.id, account.mailbox_number, is_bounce=False)], raw)
    slug = (await http.get("/mail-accounts")).text.split('<a href="/mail-accounts/', 1)[1].split('"')[0]
    listing = (await http.get(f"/mail-accounts/{slug}/messages")).text
    message = listing.split(f'href="/mail-accounts/{slug}/messages/', 1)[1].split('"')[0]
    return await http.get(f"/mail-accounts/{slug}/messages/{message}")


async def test_headers_have_german_labels_and_the_plain_text_is_shown(
    signed_in: httpx.AsyncClient, user: DashboardUser
) -> None:
    """Von, An, Kopie, Antwort an, Datum (local time), Betreff, Nachrichten-ID label the decoded headers; no English."""
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg?= <joerg@kunde.example>\r\nTo: post@firma.example\r\nCc: b@kunde.example\r\n"
        b"Reply-To: antwort@kunde.example\r\nDate: Mon, 03 Feb 2025 14:05:00 +0000\r\n"
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\nMessage-ID: <m1@kunde.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Nur im HTML</p>\r\n"
        b"--a\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nHallo aus K=F6ln\r\n--a--\r\n"
    )
    view = await _view(signed_in, user.tenant, raw)
    assert view.status_code == 200
    labels = LABELS.findall(view.text)
    assert labels == ["Von", "An", "Kopie (CC)", "Antwort an", "Datum", "Betreff", "Nachrichten-ID", "Gespeichert"]
    assert "<dd>Jörg &lt;joerg@kunde.example&gt;</dd>" in view.text
    assert "<dd>03.02.2025, 15:05</dd>" in view.text and "<dd>Grüße</dd>" in view.text
    assert '<pre class="message-text">Hallo aus Köln' in view.text and "Nur im HTML" not in view.text
    assert not {"From", "To", "Cc", "Reply-To", "Date", "Subject", "Message-ID"} & set(labels)


async def test_broken_mime_shows_the_raw_body(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """A multipart without boundary and with a bogus encoded word still opens, with its body as text."""
    raw = (
        b"From: <<<kaputt\r\nSubject: =?bogus?x?zzz?=\r\nContent-Type: multipart/mixed; boundary=\r\n"
        b"Header ohne Doppelpunkt\r\n\r\n--nix\r\nK\xf6ln\r\n"
    )
    view = await _view(signed_in, user.tenant, raw)
    assert view.status_code == 200
    assert '<pre class="message-text">--nix\r\nKöln' in view.text
    assert LABELS.findall(view.text) == ["Von", "Betreff", "Gespeichert"]
