"""The domain panel's advice: one piece per SPF problem the domain has, against the loopback DNS server."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from resolvers.accounts import create_account
from resolvers.tokens import ensure_tenant
from tests.support.dashboard import DashboardUser, account_path, csrf_from, sign_in
from tests.support.dns import LoopbackDnsServer
from tests.support.zones import ZONE

# A phrase only the advice for that problem contains.
ADVICE = {
    "DOMAIN_UNREACHABLE": "Domain-Registrar",
    "NO_MX_RECORDS": "MX-Einträge ein, die auf die Mailserver Ihres Mail-Anbieters zeigen",
    "SPF_NEEDS_UPDATE": "Ergänzen Sie im SPF-Eintrag Ihrer Domain <code>include:_spf.aranes.de</code>",
    "NO_SPF_RECORD": "einen SPF-Eintrag (TXT) an, der <code>include:_spf.aranes.de</code> enthält",
    "DNS_TEMPORARY_FAILURE": "Das liegt nicht an Ihrer Domain",
}
_ADVICE_ITEM = re.compile(r'<li data-advice="([A-Z_]+)">')


async def _checked_panel(http: httpx.AsyncClient, user: DashboardUser, email: str) -> str:
    """The account page of a new account after its SPF-Check."""
    account = await create_account((await ensure_tenant(user.tenant)).id, email, "Vertrieb")
    path = account_path(account.id)
    page = await http.get(path)
    checked = await http.post(f"{path}/spf-check", data={"csrf_token": csrf_from(page.text)})
    assert checked.status_code == 303
    panel = await http.get(path)
    assert "Die SPF-Prüfung ist abgeschlossen." in panel.text
    return panel.text


def _assert_only_advice(html: str, code: str) -> None:
    assert _ADVICE_ITEM.findall(html) == [code]
    assert ADVICE[code] in html
    for other, phrase in ADVICE.items():
        if other != code:
            assert phrase not in html, other


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("vertrieb@gibtsnicht.example", "DOMAIN_UNREACHABLE"),
        ("vertrieb@ohnemx.example", "NO_MX_RECORDS"),
        ("vertrieb@alt.example", "SPF_NEEDS_UPDATE"),
        ("vertrieb@ohnespf.example", "NO_SPF_RECORD"),
    ],
)
async def test_each_problem_gets_its_own_advice(
    spf_browser: httpx.AsyncClient, user: DashboardUser, email: str, code: str
) -> None:
    """The panel advises on the one problem the domain has, and shows no advice for the others."""
    html = await _checked_panel(spf_browser, user, email)
    _assert_only_advice(html, code)
    assert "So beheben Sie das Problem" in html


async def test_record_with_the_include_but_no_mx_gets_no_include_advice(
    spf_browser: httpx.AsyncClient, user: DashboardUser
) -> None:
    """A record that already has include:_spf.aranes.de but no MX: advice on MX only, nothing about the include."""
    html = await _checked_panel(spf_browser, user, "vertrieb@ohnemx.example")
    assert '<pre class="record">v=spf1 include:_spf.aranes.de -all</pre>' in html
    assert "<code>include:_spf.aranes.de</code>" not in html
    assert "eigenen SMTP-Server</a>" not in html.split('<ul class="fixes">', 1)[1].split("</ul>", 1)[0]


async def test_unreachable_domain_advice_points_to_typos_and_the_edit_form(
    spf_browser: httpx.AsyncClient, user: DashboardUser
) -> None:
    """For an unreachable domain the advice names typos, the registrar and the edit form, not the include."""
    html = await _checked_panel(spf_browser, user, "vertrieb@gibtsnicht.example")
    assert "Tippfehler" in html
    assert '<a href="#bearbeiten">Bearbeiten</a>' in html and 'id="bearbeiten"' in html
    assert "include:_spf.aranes.de" not in html


async def test_domain_without_problems_gets_no_advice(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """A passing domain: no advice block at all."""
    html = await _checked_panel(spf_browser, user, "vertrieb@gut.example")
    assert "SPF in Ordnung" in html
    assert "So beheben Sie" not in html
    assert _ADVICE_ITEM.findall(html) == []


async def test_before_the_first_check_a_neutral_hint(signed_in: httpx.AsyncClient, user: DashboardUser) -> None:
    """Before any check the panel explains the check and gives no advice."""
    account = await create_account((await ensure_tenant(user.tenant)).id, "vertrieb@alt.example", "Vertrieb")
    html = (await signed_in.get(account_path(account.id))).text
    assert "Noch nicht geprüft. Der SPF-Check fragt das DNS Ihrer Domain ab" in html
    assert "So beheben Sie" not in html and "include:" not in html


async def test_dns_down_advises_to_check_again_later(db: str, settings: Settings, user: DashboardUser) -> None:
    """Without a working DNS server the advice says it is no fault of the domain, and nothing else."""
    async with LoopbackDnsServer(ZONE) as dns_server:
        address = dns_server.address
    # The server is stopped: nothing answers at its address.
    app = build_app(replace(settings, dns_nameservers=(address,), dns_timeout=1.0), manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        assert (await sign_in(http, user.email)).status_code == 303
        html = await _checked_panel(http, user, "vertrieb@gut.example")
    _assert_only_advice(html, "DNS_TEMPORARY_FAILURE")
    assert "SPF-Check nicht möglich" in html and "SPF-Problem" not in html


async def test_screen_readers_hear_german_words_not_codes(spf_browser: httpx.AsyncClient, user: DashboardUser) -> None:
    """The hidden prefixes of problems and findings are German words, never codes such as ERROR: or NO_MX_RECORDS:."""
    html = await _checked_panel(spf_browser, user, "vertrieb@gibtsnicht.example")
    hidden = re.findall(r'<span class="visually-hidden">([^<]*)</span>', html)
    assert "Fehler: " in hidden
    assert not [text for text in hidden if re.search(r"\b[A-Z]{2,}(_[A-Z]+)*:", text)], hidden
