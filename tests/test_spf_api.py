"""spfCheck, spfCheckAll and MailAccount.spf over GraphQL, against a real DNS server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import MailAccount, Scope
from resolvers.tokens import create_token
from tests.support.api import Api
from tests.support.dns import LoopbackDnsServer, Zone
from tests.support.documents import CREATE
from tests.support.zones import ZONE

GERMAN = {
    "DOMAIN_UNREACHABLE": "Die Domain {d} ist nicht erreichbar.",
    "NO_MX_RECORDS": "Die Domain {d} ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt.",
    "SPF_NEEDS_UPDATE": "Für die Domain {d} ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen "
    "E-Mailversand angepasst werden muss.",
}

REPORT = """
  ok domain checkedAt record suggestedRecord lookupCount voidLookupCount mxHosts dmarcRecord
  problems { code message } findings { code severity message }
  tree { depth domain mechanism record lookups error }
"""
SPF_CHECK = f"""
mutation Check($input: SpfCheckInput!) {{
  spfCheck(input: $input) {{ report {{ {REPORT} }} account {{ id spf {{ ok }} }} userErrors {{ code field message }} }}
}}"""
ACCOUNT_SPF = f"query Spf($id: ID!) {{ account(id: $id) {{ spf {{ {REPORT} }} }} }}"
CHECK_ALL = """
mutation All($input: SpfCheckAllInput) {
  spfCheckAll(input: $input) { summary { startedAt total checked ok withProblems finished } userErrors { code } }
}"""
STATUS = "query S($t: DateTime!) { spfCheckStatus(startedAt: $t) { total checked ok withProblems finished } }"


@pytest.fixture
async def dns_server() -> AsyncIterator[LoopbackDnsServer]:
    async with LoopbackDnsServer(ZONE) as server:
        yield server


@pytest.fixture
async def spf_http(db: str, settings: Settings, dns_server: LoopbackDnsServer) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its SPF checker pointed at the loopback DNS server (DNS_TIMEOUT 1 s), its job worker running."""
    app = build_app(replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=1.0), manage_database=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield http


@pytest.fixture
async def spf_api(spf_http: httpx.AsyncClient) -> Api:
    return Api(spf_http, (await create_token("acme", Scope.WRITE)).secret)


async def check_email(api: Api, email: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api(SPF_CHECK, {"input": {"email": email}}))["spfCheck"]
    assert payload["userErrors"] == []
    report: dict[str, Any] = payload["report"]
    return report


async def test_domain_that_authorizes_the_platform_is_ok(spf_api: Api) -> None:
    """A record that includes _spf.aranes.de, with MX and DMARC: ok, no problems, no suggestion."""
    report = await check_email(spf_api, "vertrieb@gut.example")
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["domain"] == "gut.example"
    assert report["record"] == "v=spf1 mx include:_spf.aranes.de ~all"
    assert report["suggestedRecord"] is None
    assert report["mxHosts"] == ["mx.gut.example"]
    assert report["dmarcRecord"] == "v=DMARC1; p=none"
    assert report["lookupCount"] == 2
    assert [(n["depth"], n["domain"]) for n in report["tree"]] == [(0, "gut.example"), (1, "_spf.aranes.de")]


async def test_record_without_the_platform_needs_update(spf_api: Api) -> None:
    """SPF_NEEDS_UPDATE with the exact German message and a suggested record keeping every term."""
    report = await check_email(spf_api, "vertrieb@alt.example")
    assert report["ok"] is False
    assert report["problems"] == [
        {"code": "SPF_NEEDS_UPDATE", "message": GERMAN["SPF_NEEDS_UPDATE"].format(d="alt.example")}
    ]
    assert report["suggestedRecord"] == "v=spf1 mx include:_spf.anbieter.example include:_spf.aranes.de ~all"
    assert "DMARC_MISSING" in [f["code"] for f in report["findings"]]


async def test_domain_without_spf_gets_a_new_record(spf_api: Api) -> None:
    """NO_SPF_RECORD with a German message and a new record for the platform and the domain's MX."""
    report = await check_email(spf_api, "vertrieb@ohnespf.example")
    assert [p["code"] for p in report["problems"]] == ["NO_SPF_RECORD"]
    assert "ohnespf.example" in report["problems"][0]["message"]
    assert "SPF" in report["problems"][0]["message"]
    assert report["record"] is None
    assert report["suggestedRecord"] == "v=spf1 mx include:_spf.aranes.de ~all"


@pytest.mark.parametrize("domain", ["ohnemx.example", "nullmx.example"])
async def test_domain_without_mx_records(spf_api: Api, domain: str) -> None:
    """No MX records, or a null MX, is NO_MX_RECORDS with the exact German message."""
    report = await check_email(spf_api, f"vertrieb@{domain}")
    assert report["problems"] == [{"code": "NO_MX_RECORDS", "message": GERMAN["NO_MX_RECORDS"].format(d=domain)}]


@pytest.mark.parametrize("domain", ["gibtsnicht.example", "zeitueberschreitung.example", "kaputt.example"])
async def test_unreachable_domain_is_the_only_problem(spf_api: Api, domain: str) -> None:
    """NXDOMAIN, a timeout or SERVFAIL give DOMAIN_UNREACHABLE alone, never "no record"."""
    async with asyncio.timeout(5):  # DNS_TIMEOUT is 1 s: a check must end on its own well before this
        report = await check_email(spf_api, f"info@{domain}")
    assert report["problems"] == [
        {"code": "DOMAIN_UNREACHABLE", "message": GERMAN["DOMAIN_UNREACHABLE"].format(d=domain)}
    ]


@pytest.mark.parametrize("domain", ["zuviel.example", "doppelt.example"])
async def test_broken_record_needs_update(spf_api: Api, domain: str) -> None:
    """A permerror (too many lookups, two records) is SPF_NEEDS_UPDATE, with the reason as a finding."""
    report = await check_email(spf_api, f"info@{domain}")
    assert [p["code"] for p in report["problems"]] == ["SPF_NEEDS_UPDATE"]
    findings = {f["code"]: f["severity"] for f in report["findings"]}
    expected = "SPF_TOO_MANY_LOOKUPS" if domain == "zuviel.example" else "SPF_MULTIPLE_RECORDS"
    assert findings[expected] == "ERROR"


async def test_messages_in_english(spf_api: Api) -> None:
    """With Accept-Language: en the problems and findings are English; codes stay the same."""
    spf_api.lang = "en"
    report = await check_email(spf_api, "vertrieb@ohnemx.example")
    assert report["problems"] == [
        {"code": "NO_MX_RECORDS", "message": "The domain ohnemx.example is misconfigured. It has no MX records."}
    ]


async def test_check_of_an_account_is_stored(spf_api: Api) -> None:
    """spfCheck with accountId stores the report; MailAccount.spf returns it, null before the first check."""
    created = await spf_api(CREATE, {"input": {"email": "vertrieb@alt.example", "senderName": "Vertrieb"}})
    account_id = created["createAccount"]["account"]["id"]
    assert (await spf_api(ACCOUNT_SPF, {"id": account_id}))["account"]["spf"] is None
    payload = (await spf_api(SPF_CHECK, {"input": {"accountId": account_id}}))["spfCheck"]
    assert payload["account"] == {"id": account_id, "spf": {"ok": False}}
    stored = (await spf_api(ACCOUNT_SPF, {"id": account_id}))["account"]["spf"]
    assert stored == payload["report"]
    spf_api.lang = "en"
    english = (await spf_api(ACCOUNT_SPF, {"id": account_id}))["account"]["spf"]
    assert english["problems"][0]["message"].startswith("The domain alt.example has an SPF record")


async def test_check_by_email_stores_nothing_and_validates(spf_api: Api) -> None:
    """spfCheck with an email stores nothing; a bad address is INVALID_EMAIL on the email field."""
    await check_email(spf_api, "vertrieb@gut.example")
    assert await MailAccount.all().count() == 0
    payload = (await spf_api(SPF_CHECK, {"input": {"email": "kein-at"}}))["spfCheck"]
    assert payload["report"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_EMAIL", ["input", "email"])]


async def test_other_tenant_and_read_token(spf_api: Api, spf_http: httpx.AsyncClient) -> None:
    """Another tenant's account is NOT_FOUND; a read token may not run spfCheck."""
    created = await spf_api(CREATE, {"input": {"email": "vertrieb@gut.example", "senderName": "Vertrieb"}})
    account_id = created["createAccount"]["account"]["id"]
    other = Api(spf_http, (await create_token("globex", Scope.WRITE)).secret)
    payload = (await other(SPF_CHECK, {"input": {"accountId": account_id}}))["spfCheck"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "accountId"])]
    reader = Api(spf_http, (await create_token("acme", Scope.READ)).secret)
    body = (await reader.post(SPF_CHECK, {"input": {"accountId": account_id}})).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await MailAccount.filter(spf_checked_at__isnull=False).count() == 0


async def test_check_all_accounts(spf_api: Api, dns_server: LoopbackDnsServer) -> None:
    """spfCheckAll re-checks every account of the tenant and sums up; accounts of one domain share a check."""
    emails = ["a@gut.example", "b@gut.example", "c@alt.example", "d@ohnemx.example", "e@gibtsnicht.example"]
    for email in emails:
        await spf_api(CREATE, {"input": {"email": email, "senderName": "X"}})
    summary = (await spf_api(CHECK_ALL))["spfCheckAll"]["summary"]
    assert {k: summary[k] for k in ("total", "checked", "ok", "withProblems", "finished")} == {
        "total": 5,
        "checked": 5,
        "ok": 2,
        "withProblems": 3,
        "finished": True,
    }
    status = (await spf_api(STATUS, {"t": summary["startedAt"]}))["spfCheckStatus"]
    assert status == {"total": 5, "checked": 5, "ok": 2, "withProblems": 3, "finished": True}
    assert await MailAccount.filter(spf_ok__isnull=True).count() == 0


async def test_check_all_in_the_background_reports_progress(spf_api: Api) -> None:
    """With wait: false spfCheckAll returns at once; spfCheckStatus follows it to the end."""
    for i in range(4):
        await spf_api(CREATE, {"input": {"email": f"x{i}@alt.example", "senderName": "X"}})
    started = (await spf_api(CHECK_ALL, {"input": {"wait": False}}))["spfCheckAll"]["summary"]
    assert started["total"] == 4
    assert started["finished"] is False
    async with asyncio.timeout(10):
        while not (status := (await spf_api(STATUS, {"t": started["startedAt"]}))["spfCheckStatus"])["finished"]:
            await asyncio.sleep(0.05)
    assert status == {"total": 4, "checked": 4, "ok": 0, "withProblems": 4, "finished": True}


SET_SMTP = """
mutation Set($input: SetSmtpServerInput!) { setSmtpServer(input: $input) { userErrors { code field } } }"""


async def test_account_with_own_smtp_server_needs_no_platform_include(spf_api: Api) -> None:
    """With an own SMTP server the report notes that the include is not needed and has no SPF problem."""
    created = await spf_api(CREATE, {"input": {"email": "vertrieb@alt.example", "senderName": "Vertrieb"}})
    account_id = created["createAccount"]["account"]["id"]
    server = {
        "accountId": account_id,
        "host": "smtp.alt.example",
        "port": 587,
        "security": "STARTTLS",
        "username": "vertrieb",
        "password": "geheim",
    }
    assert (await spf_api(SET_SMTP, {"input": server}))["setSmtpServer"]["userErrors"] == []
    report = (await spf_api(SPF_CHECK, {"input": {"accountId": account_id}}))["spfCheck"]["report"]
    assert report["ok"] is True
    assert "PLATFORM_INCLUDE_NOT_NEEDED" in [f["code"] for f in report["findings"]]


async def test_suggestion_over_the_lookup_limit_points_to_own_smtp_server(
    spf_api: Api, dns_server: LoopbackDnsServer
) -> None:
    """When even the suggested record needs over 10 lookups, a finding says so and names the alternative."""
    dns_server.zone.add_name(
        "voll.example",
        [
            {"MX": [10, "mx.gut.example"]},
            {"TXT": "v=spf1 " + " ".join(f"include:n{i}.example" for i in range(10)) + " ~all"},
        ],
    )
    report = await check_email(spf_api, "info@voll.example")
    assert [p["code"] for p in report["problems"]] == ["SPF_NEEDS_UPDATE"]
    finding = next(f for f in report["findings"] if f["code"] == "SUGGESTION_EXCEEDS_LOOKUP_LIMIT")
    assert "eigenen SMTP-Server" in finding["message"]


async def test_periodic_recheck_checks_stale_and_unchecked_accounts(
    db: str, settings: Settings, dns_server: LoopbackDnsServer
) -> None:
    """With SPF_RECHECK_HOURS the running service re-checks accounts never checked or checked too long ago."""
    from datetime import UTC, datetime, timedelta

    from resolvers.accounts import create_account
    from resolvers.tokens import ensure_tenant

    tenant = await ensure_tenant("acme")
    never = await create_account(tenant.id, "a@gut.example", "A")
    stale = await create_account(tenant.id, "b@alt.example", "B")
    fresh = await create_account(tenant.id, "c@ohnemx.example", "C")
    long_ago, recently = datetime.now(UTC) - timedelta(hours=30), datetime.now(UTC) - timedelta(hours=1)
    await MailAccount.filter(id=stale.id).update(spf_checked_at=long_ago)
    await MailAccount.filter(id=fresh.id).update(spf_checked_at=recently)
    app = build_app(
        replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=1.0, spf_recheck_hours=24),
        manage_database=False,
    )
    async with app.router.lifespan_context(app), asyncio.timeout(10):
        while await MailAccount.filter(spf_ok__isnull=True, id__in=[never.id, stale.id]).exists():
            await asyncio.sleep(0.05)
    rows = {row.id: row for row in await MailAccount.all()}
    assert (rows[never.id].spf_ok, rows[stale.id].spf_ok) == (True, False)
    assert rows[fresh.id].spf_checked_at == recently
    assert rows[fresh.id].spf_report is None


DNS_DOWN_DE = "Der DNS-Server war nicht erreichbar; bitte später erneut prüfen."


async def test_check_without_dns_keeps_the_last_verdict(db: str, settings: Settings) -> None:
    """With no DNS server listening spfCheck answers DNS_TEMPORARY_FAILURE; the stored verdict stays as it was."""
    # TTL 0: nothing is cached, so every check after the server stops really asks the network.
    async with LoopbackDnsServer(Zone(ZONE, ttl=0), negative_ttl=0) as server:
        app = build_app(replace(settings, dns_nameservers=(server.address,), dns_timeout=1.0), manage_database=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            api = Api(http, (await create_token("acme", Scope.WRITE)).secret)
            created = await api(CREATE, {"input": {"email": "vertrieb@gut.example", "senderName": "Vertrieb"}})
            account_id = created["createAccount"]["account"]["id"]
            good = (await api(SPF_CHECK, {"input": {"accountId": account_id}}))["spfCheck"]["report"]
            assert good["ok"] is True
            unchecked = await api(CREATE, {"input": {"email": "info@alt.example", "senderName": "Info"}})
            await server.stop()

            async with asyncio.timeout(10):  # DNS_TIMEOUT is 1 s; this only bounds a broken run
                payload = (await api(SPF_CHECK, {"input": {"accountId": account_id}}))["spfCheck"]
            assert payload["report"]["problems"] == [{"code": "DNS_TEMPORARY_FAILURE", "message": DNS_DOWN_DE}]
            assert payload["account"]["spf"] == {"ok": True}
            assert (await api(ACCOUNT_SPF, {"id": account_id}))["account"]["spf"] == good
            row = await MailAccount.get(email_normalized="vertrieb@gut.example")
            assert (row.spf_ok, row.spf_checked_at > datetime.fromisoformat(good["checkedAt"])) == (True, True)

            summary = (await api(CHECK_ALL))["spfCheckAll"]["summary"]
            assert (summary["total"], summary["checked"], summary["finished"]) == (2, 2, True)
            assert (await api(ACCOUNT_SPF, {"id": account_id}))["account"]["spf"] == good
            never_id = unchecked["createAccount"]["account"]["id"]
            api.lang = "en"
            stored = (await api(ACCOUNT_SPF, {"id": never_id}))["account"]["spf"]
            assert [p["code"] for p in stored["problems"]] == ["DNS_TEMPORARY_FAILURE"]
            assert stored["problems"][0]["message"] == "The DNS server could not be reached; please check again later."
            assert (await MailAccount.get(email_normalized="info@alt.example")).spf_ok is None


SPF_LIST = "query L($spf: SpfFilter) { accounts(spf: $spf) { totalCount edges { node { email } } } }"


async def test_accounts_filter_by_spf_state(spf_api: Api, spf_http: httpx.AsyncClient) -> None:
    """accounts(spf:) lists passing, problem or unchecked accounts; PROBLEM is what spfCheckAll counts as such."""
    for email in ["a@gut.example", "b@alt.example", "c@ohnemx.example", "d@gut.example"]:
        await spf_api(CREATE, {"input": {"email": email, "senderName": "X"}})
    other = Api(spf_http, (await create_token("globex", Scope.WRITE)).secret)
    await other(CREATE, {"input": {"email": "fremd@alt.example", "senderName": "X"}})
    await other(CHECK_ALL)
    summary = (await spf_api(CHECK_ALL))["spfCheckAll"]["summary"]
    # A check that could not run (DNS down) leaves a never-checked account checked, without a verdict.
    await MailAccount.filter(email="d@gut.example").update(spf_ok=None)
    await spf_api(CREATE, {"input": {"email": "e@gut.example", "senderName": "X"}})

    async def emails(spf: str | None) -> list[str]:
        connection = (await spf_api(SPF_LIST, {"spf": spf}))["accounts"]
        assert connection["totalCount"] == len(connection["edges"])
        return [edge["node"]["email"] for edge in connection["edges"]]

    assert await emails("PROBLEM") == ["b@alt.example", "c@ohnemx.example", "d@gut.example"]
    assert await emails("OK") == ["a@gut.example"]
    assert await emails("UNCHECKED") == ["e@gut.example"]
    assert len(await emails(None)) == 5
    status = (await spf_api(STATUS, {"t": summary["startedAt"]}))["spfCheckStatus"]
    assert status["withProblems"] == 3
