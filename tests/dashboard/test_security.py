"""Dashboard protections over HTTP: CSRF, escaping, headers, session expiry, tenant isolation, logout.

The sign-in limits are in test_sign_in.py, the origin check in test_origin.py.
"""

from __future__ import annotations

import httpx
import pytest

from mailaccounts.database import ping_database
from mailaccounts.settings import Settings
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.api import MAILBOX_DOMAIN
from tests.support.dashboard import PASSWORD, DashboardUser, csrf_from, post_form, sign_in
from web.app import WebConfig, create_app
from web.dashboard import DashboardConfig
from web.formatting import to_slug
from web.security import CONTENT_SECURITY_POLICY

ACCOUNT_GID_PREFIX = "MailAccount:"


def _slug(account_id: int) -> str:
    from strawberry.relay import GlobalID

    return to_slug(str(GlobalID("MailAccount", str(account_id))))


async def test_every_post_without_the_session_token_is_refused(
    signed_in: httpx.AsyncClient, user: DashboardUser
) -> None:
    """Each dashboard POST without the CSRF token, or with another one, is 403 and changes nothing."""
    tenant = await ensure_tenant(user.tenant)
    account = await create_account(tenant.id, "vertrieb@firma.example", "Vertrieb")
    slug = _slug(account.id)
    actions = {
        "/logout": {},
        "/mail-accounts/new": {"email": "neu@firma.example", "senderName": "Neu", "active": "on"},
        f"/mail-accounts/{slug}/status": {"status": "INACTIVE"},
        f"/mail-accounts/{slug}/delete": {"confirm": "vertrieb@firma.example"},
        f"/mail-accounts/{slug}/merge": {"targetId": "x", "confirm": "vertrieb@firma.example"},
        f"/mail-accounts/{slug}/smtp": {"host": "smtp.firma.example", "port": "587", "security": "STARTTLS"},
        f"/mail-accounts/{slug}/smtp/clear": {},
    }
    for path, data in actions.items():
        for token in (None, "falsch" * 8):
            form = data if token is None else {**data, "csrf_token": token}
            response = await signed_in.post(path, data=form)
            assert response.status_code == 403, path
            assert "Das Formular ist abgelaufen" in response.text
    await account.refresh_from_db()
    assert account.active and account.smtp_host is None
    listing = await signed_in.get("/mail-accounts")
    assert listing.status_code == 200 and "neu@firma.example" not in listing.text


async def test_login_form_needs_the_token_too(browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """A login post without the CSRF token of the login page is refused (no login CSRF)."""
    response = await browser.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert (await browser.get("/mail-accounts")).status_code == 303


async def test_sender_name_and_address_are_shown_as_text(signed_in: httpx.AsyncClient) -> None:
    """A sender name `<script>` is escaped on the list and the account page, never markup."""
    created = await post_form(
        signed_in,
        "/mail-accounts/new",
        "/mail-accounts/new",
        {"email": "xss@firma.example", "senderName": '<script>alert("x")</script>', "active": "on"},
    )
    assert created.status_code == 303
    for path in ("/mail-accounts", created.headers["location"]):
        page = await signed_in.get(path)
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        assert '<script>alert("x")' not in page.text


async def test_pages_send_security_headers_and_cookie_flags(browser: httpx.AsyncClient) -> None:
    """Pages carry a CSP without inline script, X-Frame-Options DENY; the cookie is HttpOnly and SameSite=Lax."""
    response = await browser.get("/login")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "<script>" not in response.text.replace('<script src="/static/dashboard.js" defer></script>', "")


async def test_secure_cookie_when_configured(db: str, settings: Settings) -> None:
    """With SESSION_COOKIE_SECURE the session cookie gets the Secure flag."""
    config = DashboardConfig(
        secret_key="s" * 40, mailbox_domain=MAILBOX_DOMAIN, spf_include="_spf.aranes.de", cookie_secure=True
    )
    app = create_app(WebConfig(mailbox_domain=MAILBOX_DOMAIN, database_ping=ping_database, dashboard=config))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        response = await http.get("/login")
    assert "secure" in response.headers["set-cookie"].lower()


async def test_session_expires_after_max_age(db: str, user: DashboardUser) -> None:
    """A sign-in older than SESSION_MAX_AGE leads back to the login with a German notice."""
    now = [1_000_000.0]
    config = DashboardConfig(
        secret_key="s" * 40,
        mailbox_domain=MAILBOX_DOMAIN,
        spf_include="_spf.aranes.de",
        session_max_age=600,
        clock=lambda: now[0],
    )
    app = create_app(WebConfig(mailbox_domain=MAILBOX_DOMAIN, database_ping=ping_database, dashboard=config))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        assert (await sign_in(http, user.email)).status_code == 303
        now[0] += 599
        assert (await http.get("/mail-accounts")).status_code == 200
        now[0] += 2
        expired = await http.get("/mail-accounts")
        assert expired.status_code == 303 and expired.headers["location"].startswith("/login")
        login = await http.get(expired.headers["location"])
        assert "Ihre Sitzung ist abgelaufen" in login.text


async def test_other_tenants_accounts_are_invisible_and_untouchable(
    signed_in: httpx.AsyncClient, other_user: DashboardUser
) -> None:
    """A user of globex neither sees nor changes acme's account, even with its URL."""
    tenant = await ensure_tenant("acme")
    account = await create_account(tenant.id, "geheim@acme.example", "Acme intern")
    slug = _slug(account.id)
    await signed_in.post("/logout", data={"csrf_token": csrf_from((await signed_in.get("/mail-accounts")).text)})
    assert (await sign_in(signed_in, other_user.email)).status_code == 303
    listing = await signed_in.get("/mail-accounts")
    assert "geheim@acme.example" not in listing.text and "Noch keine Mail-Accounts" in listing.text
    for path in (f"/mail-accounts/{slug}", f"/mail-accounts/{slug}/delete", f"/mail-accounts/{slug}/merge"):
        assert (await signed_in.get(path)).status_code == 404, path
    token = csrf_from(listing.text)
    deleted = await signed_in.post(
        f"/mail-accounts/{slug}/delete", data={"csrf_token": token, "confirm": "geheim@acme.example"}
    )
    assert deleted.status_code == 404
    await signed_in.post(f"/mail-accounts/{slug}/status", data={"csrf_token": token, "status": "INACTIVE"})
    await account.refresh_from_db()
    assert account.active


async def test_wrong_password_and_unknown_address_look_the_same(
    browser: httpx.AsyncClient, user: DashboardUser
) -> None:
    """An unknown address and a wrong password get the same answer, so addresses cannot be probed."""
    unknown = await sign_in(browser, "niemand@acme.example")
    wrong = await sign_in(browser, user.email, "falsches-passwort")
    assert unknown.status_code == wrong.status_code == 401
    assert "E-Mail-Adresse oder Passwort ist falsch." in unknown.text


async def test_logout_ends_the_session_even_for_a_copied_cookie(
    signed_in: httpx.AsyncClient, settings: Settings
) -> None:
    """After Abmelden the pages need a new sign-in, also with a copy of the old session cookie."""
    copied = dict(signed_in.cookies)
    page = await signed_in.get("/mail-accounts")
    response = await signed_in.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "Sie wurden abgemeldet." in (await signed_in.get("/login")).text
    assert (await signed_in.get("/mail-accounts")).status_code == 303
    signed_in.cookies.clear()
    signed_in.cookies.update(copied)
    replay = await signed_in.get("/mail-accounts")
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
async def test_login_redirect_stays_on_the_dashboard(
    browser: httpx.AsyncClient, user: DashboardUser, target: str
) -> None:
    """The `next` of the login form never leads to another host."""
    page = await browser.get("/login", params={"next": target})
    response = await browser.post(
        "/login",
        data={"csrf_token": csrf_from(page.text), "email": user.email, "password": PASSWORD, "next": target},
    )
    assert response.status_code == 303 and response.headers["location"] == "/mail-accounts"
