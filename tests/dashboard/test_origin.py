"""Cross-site requests are refused by their Origin and Sec-Fetch-Site headers, even with a valid CSRF token."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.dashboard import PASSWORD, DashboardUser, csrf_from
from web.formatting import to_slug

FOREIGN = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://testserver:8080"},
    {"Origin": "https://testserver"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
]
REFUSED_TEXT = "Die Anfrage wurde abgelehnt"


def _slug(account_id: int) -> str:
    from strawberry.relay import GlobalID

    return to_slug(str(GlobalID("MailAccount", str(account_id))))


@pytest.mark.parametrize("headers", FOREIGN)
async def test_cross_site_actions_are_refused_with_a_valid_token(
    signed_in: httpx.AsyncClient, user: DashboardUser, headers: dict[str, str]
) -> None:
    """Every dashboard POST from another site (or a sibling subdomain) is 403 with a German page and changes nothing."""
    tenant = await ensure_tenant(user.tenant)
    account = await create_account(tenant.id, "vertrieb@firma.example", "Vertrieb")
    slug = _slug(account.id)
    token = csrf_from((await signed_in.get("/mail-accounts")).text)
    actions = {
        "/mail-accounts/new": {"email": "neu@firma.example", "senderName": "Neu", "active": "on"},
        f"/mail-accounts/{slug}/status": {"status": "INACTIVE"},
        f"/mail-accounts/{slug}/delete": {"confirm": "vertrieb@firma.example"},
        f"/mail-accounts/{slug}/smtp/clear": {},
        "/mail-accounts/spf-check": {},
        "/unlock": {"token": "x"},
        "/logout": {},
    }
    for path, data in actions.items():
        response = await signed_in.post(path, data={**data, "csrf_token": token}, headers=headers)
        assert response.status_code == 403, path
        assert REFUSED_TEXT in response.text, path
    await account.refresh_from_db()
    assert account.active
    listing = await signed_in.get("/mail-accounts")
    assert listing.status_code == 200 and "neu@firma.example" not in listing.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://testserver:80"},
        {"Sec-Fetch-Site": "same-origin"},
        {},
    ],
)
async def test_same_origin_and_headerless_actions_pass(
    signed_in: httpx.AsyncClient, user: DashboardUser, headers: dict[str, str]
) -> None:
    """A POST from the dashboard itself passes; without either header the CSRF token alone decides (OWASP)."""
    tenant = await ensure_tenant(user.tenant)
    account = await create_account(tenant.id, "vertrieb@firma.example", "Vertrieb")
    token = csrf_from((await signed_in.get("/mail-accounts")).text)
    response = await signed_in.post(
        f"/mail-accounts/{_slug(account.id)}/status", data={"csrf_token": token, "status": "INACTIVE"}, headers=headers
    )
    assert response.status_code == 303
    await account.refresh_from_db()
    assert not account.active


async def test_login_from_another_site_is_refused(browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """A login post with the page's CSRF token but from another site is 403 and signs nobody in (no login CSRF)."""
    token = csrf_from((await browser.get("/login")).text)
    form = {"csrf_token": token, "email": user.email, "password": PASSWORD}
    refused = await browser.post("/login", data=form, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and REFUSED_TEXT in refused.text
    assert (await browser.get("/mail-accounts")).status_code == 303
    accepted = await browser.post("/login", data=form, headers={"Origin": "http://testserver"})
    assert accepted.status_code == 303


async def _sign_in_behind_proxy(settings: Settings, user: DashboardUser) -> httpx.Response:
    """A browser on https behind a TLS proxy at 127.0.0.1: Origin https://…, the proxy forwards the scheme."""
    app = build_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
        token = csrf_from((await http.get("/login", headers=headers)).text)
        return await http.post(
            "/login",
            data={"csrf_token": token, "email": user.email, "password": PASSWORD},
            headers={**headers, "Origin": "https://testserver"},
        )


async def test_forwarded_scheme_counts_only_from_a_trusted_proxy(
    db: str, settings: Settings, user: DashboardUser
) -> None:
    """Behind a proxy in FORWARDED_ALLOW_IPS the origin is https; from any other peer X-Forwarded-Proto is ignored."""
    trusted = replace(settings, forwarded_allow_ips=(ip_network("127.0.0.0/8"),))
    assert (await _sign_in_behind_proxy(trusted, user)).status_code == 303
    untrusted = await _sign_in_behind_proxy(settings, user)
    assert untrusted.status_code == 403 and REFUSED_TEXT in untrusted.text


async def test_public_url_is_an_own_origin_behind_a_host_rewriting_proxy(
    db: str, settings: Settings, user: DashboardUser
) -> None:
    """Behind a proxy that rewrites Host, a browser's Origin is PUBLIC_URL's: with that setting it passes, without
    it (and for any other origin) the POST is refused."""
    for public_url, origin, status in [
        ("https://crm.example.com/mail", "https://crm.example.com", 303),
        (None, "https://crm.example.com", 403),
        ("https://crm.example.com/mail", "https://evil.example", 403),
    ]:
        app = build_app(replace(settings, public_url=public_url), manage_database=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            token = csrf_from((await http.get("/login")).text)
            form = {"csrf_token": token, "email": user.email, "password": PASSWORD}
            response = await http.post("/login", data=form, headers={"Origin": origin})
            assert response.status_code == status, (public_url, origin)
