"""The sign-in limits in the database: per client address, per account with a lockout, the unlock link, proxies."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from ipaddress import ip_network

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailaccounts.app import build_app, build_dashboard_config, build_outbox
from mailaccounts.database import ping_database
from mailaccounts.settings import Settings
from orm.models import DashboardUser as UserRow
from resolvers.users import create_user
from tests.support.api import MAILBOX_DOMAIN
from tests.support.dashboard import PASSWORD, DashboardUser, csrf_from, sign_in
from web.app import WebConfig, create_app

WRONG = "falsches-passwort"
FAILED_TEXT = (
    "E-Mail-Adresse oder Passwort ist falsch. Nach wiederholten Fehlversuchen wird der Zugang gesperrt; "
    "den Link zum Entsperren senden wir dann an die E-Mail-Adresse des Zugangs."
)
THROTTLED_TEXT = "Zu viele fehlgeschlagene Anmeldeversuche"
_LINK = re.compile(r"(http://testserver/unlock\?token=[A-Za-z0-9_.\-]+)")


@dataclass
class MailSink:
    """A real aiosmtpd server on loopback standing in for SMTP_RELAY; keeps the messages it accepts."""

    port: int = 0
    messages: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content or b"")))
        return "250 2.0.0 queued"

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` messages arrived; the mail is sent in the background after the answer."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.02)


@pytest.fixture
async def relay() -> AsyncIterator[MailSink]:
    """The platform relay the unlock mails go through."""
    sink = MailSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="relay.example"), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


@pytest.fixture
def limited(database_url: str, relay: MailSink) -> Settings:
    """Small limits so a test reaches them quickly: 4 failures per address, 3 per account, relay = the sink."""
    return Settings(
        database_url=database_url,
        mailbox_domain=MAILBOX_DOMAIN,
        secret_key="k" * 40,
        smtp_relay=f"smtp://127.0.0.1:{relay.port}",
        smtp_relay_timeout=5,
        login_max_failures_per_address=4,
        login_max_failures_per_user=3,
        login_window=900,
    )


def client_at(settings: Settings, host: str) -> httpx.AsyncClient:
    """A browser connecting from `host`, on its own instance of the app (its own process, as far as state goes)."""
    transport = httpx.ASGITransport(app=build_app(settings, manage_database=False), client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def unlock_link(relay: MailSink, index: int = 0) -> str:
    """The unlock link in the `index`-th mail the relay received."""
    await relay.wait_for(index + 1)
    body = relay.messages[index][1].get_payload(decode=True)
    assert isinstance(body, bytes)
    found = _LINK.search(body.decode())
    assert found, body
    return found.group(1)


async def attempt(http: httpx.AsyncClient, email: str, password: str) -> tuple[int, str]:
    """One sign-in; the status and the error shown (or the redirect target)."""
    response = await sign_in(http, email, password)
    if response.status_code == 303:
        return 303, response.headers["location"]
    found = re.search(r'<p class="form-error" role="alert">([^<]*)</p>', response.text)
    return response.status_code, found.group(1) if found else ""


async def test_failures_from_one_address_over_many_emails_are_throttled(
    db: str, limited: Settings, user: DashboardUser
) -> None:
    """Password spraying: after 4 failures on 4 addresses, this client waits (429, minutes, Retry-After); others not."""
    async with client_at(limited, "192.0.2.10") as sprayer, client_at(limited, "192.0.2.20") as other:
        for index in range(4):
            assert (await attempt(sprayer, f"person{index}@acme.example", WRONG)) == (401, FAILED_TEXT)
        throttled = await sign_in(sprayer, user.email, PASSWORD)
        assert throttled.status_code == 429
        assert THROTTLED_TEXT in throttled.text and "Bitte versuchen Sie es in" in throttled.text
        assert 0 < int(throttled.headers["retry-after"]) <= 900
        assert (await attempt(other, user.email, PASSWORD)) == (303, "/mail-accounts")


async def test_two_instances_share_the_counts(db: str, limited: Settings, user: DashboardUser) -> None:
    """Failures counted by one instance count on another on the same database: 2 + 2 reach the limit of 4."""
    async with client_at(limited, "192.0.2.30") as first, client_at(limited, "192.0.2.30") as second:
        for http in (first, second, first, second):
            assert (await attempt(http, "niemand@acme.example", WRONG))[0] == 401
        assert (await sign_in(second, user.email, PASSWORD)).status_code == 429
        assert (await sign_in(first, user.email, PASSWORD)).status_code == 429


async def test_account_locks_across_addresses_and_the_mailed_link_lifts_it(
    db: str, limited: Settings, user: DashboardUser, relay: MailSink
) -> None:
    """3 failures from 3 addresses lock the user; the right password is refused with a German notice, the mailed
    link lifts the lock once, and then the user signs in."""
    for index in range(3):
        async with client_at(limited, f"198.51.100.{index + 1}") as http:
            assert (await attempt(http, user.email, WRONG)) == (401, FAILED_TEXT)
    row = await UserRow.get(email_normalized=user.email)
    assert row.locked_at is not None
    async with client_at(limited, "203.0.113.9") as http:
        # No oracle: while locked, the right password is answered exactly like a wrong one.
        assert (await attempt(http, user.email, PASSWORD)) == (401, FAILED_TEXT)
        assert (await attempt(http, user.email, WRONG)) == (401, FAILED_TEXT)
        assert (await http.get("/mail-accounts")).status_code == 303
        await relay.wait_for(1)
        recipients, mail = relay.messages[0]
        assert recipients == [user.email]
        assert mail["From"] == f"Mail-Accounts <noreply@{MAILBOX_DOMAIN}>"
        body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
        link = _LINK.search(body)
        assert link, body
        page = await http.get(link.group(1))
        assert page.status_code == 200 and "Sperre aufheben" in page.text
        assert (await UserRow.get(id=row.id)).locked_at is not None, "the GET alone must not unlock"
        token = link.group(1).split("token=", 1)[1]
        unlocked = await http.post("/unlock", data={"csrf_token": csrf_from(page.text), "token": token})
        assert unlocked.status_code == 303 and unlocked.headers["location"] == "/login"
        assert "Die Sperre Ihres Zugangs ist aufgehoben" in (await http.get("/login")).text
        assert (await attempt(http, user.email, PASSWORD)) == (303, "/mail-accounts")
        again = await http.get(link.group(1))
        assert again.status_code == 400 and "ungültig, abgelaufen oder wurde schon verwendet" in again.text
        signed_in_page = await http.get("/mail-accounts")
        replay = await http.post("/unlock", data={"csrf_token": csrf_from(signed_in_page.text), "token": token})
        assert replay.status_code == 400


async def test_an_old_link_does_not_lift_a_new_lock(
    db: str, limited: Settings, user: DashboardUser, relay: MailSink
) -> None:
    """The link is bound to the lock it was mailed for: after unlocking and locking again, the first link is dead."""
    async with client_at(limited, "198.51.100.50") as http:
        for _ in range(3):
            await attempt(http, user.email, WRONG)
        first = await unlock_link(relay)
        token = first.split("token=", 1)[1]
        page = await http.get(first)
        form = {"csrf_token": csrf_from(page.text), "token": token}
        assert (await http.post("/unlock", data=form)).status_code == 303
    async with client_at(limited, "198.51.100.51") as http:
        for _ in range(3):
            await attempt(http, user.email, WRONG)
        assert (await UserRow.get(email_normalized=user.email)).locked_at is not None
        assert (await http.get(first)).status_code == 400
        form = {"csrf_token": csrf_from((await http.get("/login")).text), "token": token}
        assert (await http.post("/unlock", data=form)).status_code == 400
        assert (await UserRow.get(email_normalized=user.email)).locked_at is not None


async def test_an_expired_or_forged_link_is_refused(
    db: str, limited: Settings, user: DashboardUser, relay: MailSink
) -> None:
    """A link older than a day, or a token with a changed signature, lifts nothing."""
    now = [time.time()]
    config = build_dashboard_config(limited, build_outbox(limited))
    assert config is not None and config.unlock_mailer is not None
    mailer = replace(config.unlock_mailer, clock=lambda: now[0])
    config = replace(config, clock=lambda: now[0], unlock_mailer=mailer)
    app = create_app(WebConfig(mailbox_domain=MAILBOX_DOMAIN, database_ping=ping_database, dashboard=config))
    transport = httpx.ASGITransport(app=app, client=("198.51.100.60", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for _ in range(3):
            await attempt(http, user.email, WRONG)
        link = await unlock_link(relay)
        forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert (await http.get(forged)).status_code == 400
        page = await http.get(link)
        assert page.status_code == 200
        now[0] += 24 * 3600 + 60
        assert (await http.get(link)).status_code == 400
        form = {"csrf_token": csrf_from(page.text), "token": link.split("token=", 1)[1]}
        assert (await http.post("/unlock", data=form)).status_code == 400
        assert (await UserRow.get(email_normalized=user.email)).locked_at is not None


async def test_unknown_addresses_answer_like_known_ones(
    db: str, limited: Settings, user: DashboardUser, relay: MailSink
) -> None:
    """Wrong passwords for a known and an unknown address get the same answers, before, at and after the lock."""
    async with client_at(limited, "198.51.100.70") as known, client_at(limited, "198.51.100.71") as unknown:
        known_answers = [await attempt(known, user.email, WRONG) for _ in range(4)]
        unknown_answers = [await attempt(unknown, "niemand@acme.example", WRONG) for _ in range(4)]
    assert known_answers == unknown_answers == [(401, FAILED_TEXT)] * 4
    await relay.wait_for(1)
    await asyncio.sleep(0.2)
    assert [recipients for recipients, _ in relay.messages] == [[user.email]]


async def test_a_successful_sign_in_clears_the_accounts_failures(
    db: str, limited: Settings, user: DashboardUser
) -> None:
    """2 failures, a sign-in, 2 failures: the account is not locked (the password's holder starts over)."""
    async with client_at(limited, "198.51.100.80") as http:
        for password in (WRONG, WRONG, PASSWORD):
            await attempt(http, user.email, password)
    async with client_at(limited, "198.51.100.81") as http:
        for _ in range(2):
            assert (await attempt(http, user.email, WRONG))[0] == 401
        assert (await attempt(http, user.email, PASSWORD)) == (303, "/mail-accounts")
    assert (await UserRow.get(email_normalized=user.email)).locked_at is None


async def test_forwarded_for_counts_only_from_a_trusted_proxy(db: str, limited: Settings, user: DashboardUser) -> None:
    """X-Forwarded-For from an untrusted peer is ignored (one address is counted); from a trusted proxy it names
    the client, so clients behind the proxy are counted apart."""
    async with client_at(limited, "192.0.2.40") as direct:
        for index in range(4):
            headers = {"X-Forwarded-For": f"203.0.113.{index}"}
            page = await direct.get("/login")
            response = await direct.post(
                "/login",
                data={"csrf_token": csrf_from(page.text), "email": "niemand@acme.example", "password": WRONG},
                headers=headers,
            )
            assert response.status_code == 401
        assert (await sign_in(direct, user.email, PASSWORD)).status_code == 429
    behind_proxy = replace(limited, forwarded_allow_ips=(ip_network("10.0.0.0/8"),))
    async with client_at(behind_proxy, "10.1.2.3") as proxy:
        for index in range(6):
            page = await proxy.get("/login")
            response = await proxy.post(
                "/login",
                data={"csrf_token": csrf_from(page.text), "email": "niemand@acme.example", "password": WRONG},
                headers={"X-Forwarded-For": f"1.2.3.4, 198.18.0.{index}"},
            )
            assert response.status_code == 401, index
        for _ in range(4):
            page = await proxy.get("/login")
            response = await proxy.post(
                "/login",
                data={"csrf_token": csrf_from(page.text), "email": "niemand@acme.example", "password": WRONG},
                headers={"X-Forwarded-For": "198.18.1.1"},
            )
        assert response.status_code == 401
        page = await proxy.get("/login")
        last = await proxy.post(
            "/login",
            data={"csrf_token": csrf_from(page.text), "email": user.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.18.1.1"},
        )
        assert last.status_code == 429


async def test_a_second_user_is_not_affected_by_a_lock(
    db: str, limited: Settings, user: DashboardUser, relay: MailSink
) -> None:
    """Locking one user leaves the others of the tenant signing in."""
    await create_user("acme", "zweite@acme.example", PASSWORD)
    async with client_at(limited, "198.51.100.90") as http:
        for _ in range(3):
            await attempt(http, user.email, WRONG)
    assert (await UserRow.get(email_normalized=user.email)).locked_at is not None
    async with client_at(limited, "198.51.100.91") as http:
        assert (await attempt(http, "zweite@acme.example", PASSWORD)) == (303, "/mail-accounts")
    await relay.wait_for(1)


async def test_successful_sign_ins_do_not_use_up_the_address_limit(
    db: str, limited: Settings, user: DashboardUser
) -> None:
    """The address limit counts failures only: behind one office address, successful sign-ins use none of it."""
    async with client_at(limited, "192.0.2.50") as office:
        for _ in range(3):
            assert (await attempt(office, "niemand@acme.example", WRONG))[0] == 401
        for _ in range(3):
            assert (await attempt(office, user.email, PASSWORD)) == (303, "/mail-accounts")
            page = await office.get("/mail-accounts")
            await office.post("/logout", data={"csrf_token": csrf_from(page.text)})
        # The fourth failure is still allowed; only then does the address wait.
        assert (await attempt(office, "niemand@acme.example", WRONG))[0] == 401
        assert (await attempt(office, user.email, PASSWORD))[0] == 429


@pytest.mark.parametrize("public_url", [None, "https://crm.example.com/mail"])
async def test_unlock_links_point_at_public_url_whatever_host_the_client_sent(
    db: str, limited: Settings, user: DashboardUser, relay: MailSink, public_url: str | None
) -> None:
    """With PUBLIC_URL the mailed link points there even when the locking client sent `Host: evil.example`;
    without it the link follows the request's Host (the documented development default)."""
    configured = replace(limited, public_url=public_url)
    async with client_at(configured, "198.51.100.70") as http:
        http.headers["Host"] = "evil.example"
        for _ in range(3):
            await attempt(http, user.email, WRONG)
        await attempt(http, user.email, PASSWORD)
        await relay.wait_for(1)
    body = relay.messages[0][1].get_payload(decode=True)
    assert isinstance(body, bytes)
    links = re.findall(r"https?://\S+/unlock\?token=\S+", body.decode())
    expected = public_url or "http://evil.example"
    assert len(links) == 1 and links[0].startswith(f"{expected}/unlock?token="), links
