"""sendMessage through a real aiosmtpd relay: MIME, envelope, errors, injection, own SMTP servers."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from mailaccounts.settings import Settings
from orm.models import Direction, MailAccount, Message
from resolvers.smtp_servers import decrypt_password
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.documents import ACCOUNT_SMTP, CLEAR_SMTP, MESSAGES, SEND, SET_SMTP, SET_STATUS
from tests.support.factories import mail, new_account
from tests.support.smtp import SMTP_PASSWORD, SMTP_USER, Sink, deliver


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def send(api: Api, account_id: str, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (
        await api(SEND, {"input": {"accountId": account_id, "to": ["kunde@example.com"], **fields}})
    )["sendMessage"]
    return payload


async def test_send_builds_mime_and_uses_the_platform_envelope(api: Api, sink: Sink) -> None:
    """The relay gets From with the sender name, To/Cc without Bcc, Date, Message-ID, text and html parts,
    envelope sender pN.out@ and every recipient; the message is stored OUTBOUND as sent."""
    account = await new_account(api, "vertrieb@firma.example", name="Müller, Vertrieb")
    payload = await send(
        api,
        account.id,
        to=["kunde@example.com", "Zweite@Bücher.example"],
        cc=["chef@example.com"],
        bcc=["archiv@example.com"],
        subject="Ihr Angebot für Köln",
        text="Guten Tag,\nanbei.",
        html="<p>Guten Tag,<br>anbei.</p>",
    )
    assert payload["userErrors"] == []
    [received] = sink.received
    assert received.mail_from == account.outbound
    assert received.rcpt_tos == [
        "kunde@example.com", "Zweite@xn--bcher-kva.example", "chef@example.com", "archiv@example.com"
    ]
    message = parsed(received.content)
    assert message["From"].addresses[0].display_name == "Müller, Vertrieb"
    assert message["From"].addresses[0].addr_spec == "vertrieb@firma.example"
    assert message["To"] == "kunde@example.com, Zweite@xn--bcher-kva.example"
    assert message["Cc"] == "chef@example.com"
    assert message["Bcc"] is None
    assert b"archiv@example.com" not in received.content
    assert message["Subject"] == "Ihr Angebot für Köln"
    assert message["Date"].datetime is not None
    assert message["Message-ID"].endswith("@firma.example>")
    assert message.get_body(("plain",)).get_content() == "Guten Tag,\r\nanbei.\r\n"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().startswith("<p>Guten Tag")  # type: ignore[union-attr]
    stored = payload["message"]
    assert (stored["direction"], stored["subject"], stored["messageId"]) == (
        "OUTBOUND", "Ihr Angebot für Köln", message["Message-ID"]
    )
    assert stored["raw"].encode() == received.content
    row = await Message.get(account_id=account.row_id)
    assert row.direction == Direction.OUTBOUND


async def test_reply_sets_in_reply_to_and_references(api: Api, sink: Sink, listener: int) -> None:
    """Replying to a stored message sets In-Reply-To and References (its references plus its Message-ID)."""
    account = await new_account(api, "vertrieb@firma.example")
    incoming = mail(message_id="<frage@kunde.example>").replace(
        b"MIME-Version", b"References: <erste@kunde.example>\r\nMIME-Version"
    )
    assert (await deliver(listener, [account.inbound], incoming)).code == 250
    node = (await api(MESSAGES, {"id": account.id}))["account"]["messages"]["edges"][0]["node"]
    payload = await send(api, account.id, subject="Re: Angebot", text="Danke", inReplyTo=node["id"])
    assert payload["userErrors"] == []
    message = parsed(sink.received[0].content)
    assert message["In-Reply-To"] == "<frage@kunde.example>"
    assert message["References"] == "<erste@kunde.example> <frage@kunde.example>"
    payload = await send(api, account.id, text="x", inReplyTo="<direkt@kunde.example>")
    assert parsed(sink.received[1].content)["In-Reply-To"] == "<direkt@kunde.example>"
    for bad in ["kein-msgid", "<a@b>\r\nBcc: x@example.com", base64.b64encode(b"Message:999999").decode()]:
        payload = await send(api, account.id, text="x", inReplyTo=bad)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_IN_REPLY_TO", ["input", "inReplyTo"])
        ]
    assert len(sink.received) == 2


@pytest.mark.parametrize(
    ("fields", "code", "path"),
    [
        ({"to": ["kaputt"]}, "INVALID_RECIPIENT", ["input", "to", "0"]),
        ({"to": ["ok@example.com"], "cc": ["a@example.com", "x@example.com\r\nBcc: opfer@example.com"]},
         "INVALID_RECIPIENT", ["input", "cc", "1"]),
        ({"to": ["ok@example.com"], "bcc": ["<opfer@example.com>"]}, "INVALID_RECIPIENT", ["input", "bcc", "0"]),
        ({"to": ["a@example.com, b@example.com"]}, "INVALID_RECIPIENT", ["input", "to", "0"]),
        ({"to": []}, "INVALID_RECIPIENT", ["input", "to", "0"]),
        ({"subject": "Hallo\r\nBcc: opfer@example.com"}, "INVALID_SUBJECT", ["input", "subject"]),
        ({"subject": "Hallo\nX-Evil: 1"}, "INVALID_SUBJECT", ["input", "subject"]),
        ({"subject": "x" * 999}, "INVALID_SUBJECT", ["input", "subject"]),
    ],
)
async def test_invalid_input_sends_nothing(
    api: Api, sink: Sink, fields: dict[str, Any], code: str, path: list[str]
) -> None:
    """Bad recipients and header-injecting subjects are user errors with the field path; nothing is sent."""
    account = await new_account(api, "vertrieb@firma.example")
    payload = (await api(SEND, {"input": {"accountId": account.id, "to": ["kunde@example.com"], **fields}}))[
        "sendMessage"
    ]
    assert payload["message"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, path)]
    assert sink.received == []
    assert await Message.all().count() == 0


async def test_headers_cannot_be_injected_through_body_or_long_subject(api: Api, sink: Sink) -> None:
    """Header-like text in the body stays body; a long non-ASCII subject is encoded and folded, not split."""
    account = await new_account(api, "vertrieb@firma.example")
    subject = "Ä " * 120 + "Bcc: opfer@example.com"
    payload = await send(api, account.id, subject=subject, text="\r\nBcc: opfer@example.com\r\n\r\nX")
    assert payload["userErrors"] == []
    received = sink.received[0]
    assert received.rcpt_tos == ["kunde@example.com"]
    message = parsed(received.content)
    assert message["Bcc"] is None
    assert message["Subject"] == subject.strip()
    assert all(len(line) <= 998 for line in received.content.split(b"\r\n"))


async def test_relay_refusal_is_send_failed_with_its_answer(api: Api, sink: Sink) -> None:
    """When the relay refuses, SEND_FAILED carries its answer and nothing is stored as sent."""
    account = await new_account(api, "vertrieb@firma.example")
    sink.refuse = "554 5.7.1 Policy rejection: spam score too high"
    payload = await send(api, account.id, subject="Hallo", text="x")
    assert payload["message"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "SEND_FAILED"
    assert "554" in error["message"] and "spam score too high" in error["message"]
    assert await Message.all().count() == 0


async def test_relay_timeout_is_send_failed(api: Api, silent_server: int, db: str, settings: Settings) -> None:
    """A relay that never answers gives SEND_FAILED after SMTP_RELAY_TIMEOUT; nothing is stored."""
    import httpx

    from mailaccounts.app import build_app

    relay = f"smtp://127.0.0.1:{silent_server}"
    slow = Settings(**{**settings.__dict__, "smtp_relay": relay, "smtp_relay_timeout": 1})
    transport = httpx.ASGITransport(app=build_app(slow, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        slow_api = Api(http, api.token, lang="en")
        account = await new_account(slow_api, "vertrieb@firma.example")
        payload = await send(slow_api, account.id, text="x")
    [error] = payload["userErrors"]
    assert error["code"] == "SEND_FAILED"
    assert "timeout" in error["message"]
    assert await Message.all().count() == 0


async def test_unreachable_relay_is_send_failed(api: Api, settings: Settings) -> None:
    """A relay that refuses the connection gives SEND_FAILED naming it."""
    import httpx

    from mailaccounts.app import build_app

    down = Settings(**{**settings.__dict__, "smtp_relay": "smtp://127.0.0.1:1"})
    transport = httpx.ASGITransport(app=build_app(down, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        down_api = Api(http, api.token)
        account = await new_account(down_api, "vertrieb@firma.example")
        payload = await send(down_api, account.id, text="x")
    assert payload["userErrors"][0]["code"] == "SEND_FAILED"
    assert "127.0.0.1:1" in payload["userErrors"][0]["message"]


async def test_inactive_account_sends_nothing(api: Api, sink: Sink) -> None:
    """An inactive account gets ACCOUNT_INACTIVE; the relay sees nothing."""
    account = await new_account(api, "vertrieb@firma.example")
    await api(SET_STATUS, {"input": {"accountId": account.id, "status": "INACTIVE"}})
    payload = await send(api, account.id, text="x")
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("ACCOUNT_INACTIVE", ["input", "accountId"])]
    assert sink.received == []


async def test_reader_and_other_tenant_cannot_send(api: Api, reader: Api, other: Api, sink: Sink) -> None:
    """A read token gets FORBIDDEN; another tenant's account is NOT_FOUND; nothing is sent."""
    account = await new_account(api, "vertrieb@firma.example")
    errors = await reader.errors(SEND, {"input": {"accountId": account.id, "to": ["kunde@example.com"]}})
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    payload = await send(other, account.id, text="x")
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    assert sink.received == []


async def test_envelope_sender_account_uses_the_users_address(api: Api, sink: Sink, settings: Settings) -> None:
    """With ENVELOPE_SENDER=account, MAIL FROM is the user's own address."""
    import httpx

    from mailaccounts.app import build_app

    own = Settings(**{**settings.__dict__, "envelope_sender": "account"})
    transport = httpx.ASGITransport(app=build_app(own, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        own_api = Api(http, api.token)
        account = await new_account(own_api, "Vertrieb@Bücher.example")
        assert (await send(own_api, account.id, text="x"))["userErrors"] == []
    assert sink.received[0].mail_from == "Vertrieb@xn--bcher-kva.example"


async def own_server(api: Api, account_id: str, server_port: int, **fields: Any) -> dict[str, Any]:
    values = {"host": "127.0.0.1", "port": server_port, "security": "NONE"}
    values |= {"username": SMTP_USER, "password": SMTP_PASSWORD}
    payload: dict[str, Any] = (await api(SET_SMTP, {"input": {"accountId": account_id, **values, **fields}}))[
        "setSmtpServer"
    ]
    return payload


async def test_own_smtp_server_with_auth(api: Api, sink: Sink, auth_sink: Sink) -> None:
    """With an own server set, mail goes there with AUTH and the user's address as envelope sender."""
    account = await new_account(api, "vertrieb@firma.example")
    payload = await own_server(api, account.id, auth_sink.port)
    assert payload["userErrors"] == []
    assert payload["account"]["smtpServer"] == {
        "host": "127.0.0.1", "port": auth_sink.port, "security": "NONE", "username": SMTP_USER
    }
    assert (await send(api, account.id, subject="Über den eigenen Server", text="x"))["userErrors"] == []
    assert sink.received == []
    [received] = auth_sink.received
    assert auth_sink.logins == [SMTP_USER]
    assert received.mail_from == "vertrieb@firma.example"
    assert parsed(received.content)["Subject"] == "Über den eigenen Server"
    cleared = (await api(CLEAR_SMTP, {"input": {"accountId": account.id}}))["clearSmtpServer"]
    assert cleared["account"]["smtpServer"] is None
    assert (await send(api, account.id, text="x"))["userErrors"] == []
    assert [r.mail_from for r in sink.received] == [account.outbound]
    row = await MailAccount.get(id=account.row_id)
    assert (row.smtp_host, row.smtp_password_encrypted) == (None, None)


async def test_own_server_password_is_encrypted_and_never_returned(api: Api, auth_sink: Sink) -> None:
    """The password is stored Fernet-encrypted (not as plain text) and the API has no way to read it."""
    account = await new_account(api, "vertrieb@firma.example")
    await own_server(api, account.id, auth_sink.port)
    row = await MailAccount.get(id=account.row_id)
    assert row.smtp_password_encrypted is not None
    assert SMTP_PASSWORD not in row.smtp_password_encrypted
    assert decrypt_password("k" * 40, row.smtp_password_encrypted) == SMTP_PASSWORD
    data = await api(ACCOUNT_SMTP, {"id": account.id})
    assert SMTP_PASSWORD not in str(data)
    errors = await api.errors("query($id: ID!) { account(id: $id) { smtpServer { password } } }", {"id": account.id})
    assert "password" in errors[0]["message"]


async def test_own_server_keeps_password_when_omitted(api: Api, auth_sink: Sink) -> None:
    """Setting the server again without a password keeps the stored one for the same username."""
    account = await new_account(api, "vertrieb@firma.example")
    await own_server(api, account.id, auth_sink.port)
    assert (await own_server(api, account.id, auth_sink.port, password=None))["userErrors"] == []
    assert (await send(api, account.id, text="x"))["userErrors"] == []
    assert auth_sink.logins == [SMTP_USER]


async def test_own_server_wrong_password_is_send_failed(api: Api, auth_sink: Sink) -> None:
    """A refused login is SEND_FAILED with the server's answer; nothing is stored."""
    account = await new_account(api, "vertrieb@firma.example")
    await own_server(api, account.id, auth_sink.port, password="falsch")
    payload = await send(api, account.id, text="x")
    assert payload["userErrors"][0]["code"] == "SEND_FAILED"
    assert "535" in payload["userErrors"][0]["message"]
    assert auth_sink.received == []
    assert await Message.all().count() == 0


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"host": "smtp host"}, ["input", "host"]),
        ({"host": "smtp.example.com\r\nX"}, ["input", "host"]),
        ({"port": 0}, ["input", "port"]),
        ({"port": 70000}, ["input", "port"]),
        ({"username": "a\r\nb"}, ["input", "username"]),
        ({"password": None}, ["input", "password"]),
        ({"username": None, "password": "x"}, ["input", "username"]),
    ],
)
async def test_invalid_smtp_server_is_refused(api: Api, fields: dict[str, Any], path: list[str]) -> None:
    """Bad host, port, username or a missing password are INVALID_SMTP_SERVER with the field; nothing stored."""
    account = await new_account(api, "vertrieb@firma.example")
    payload = await own_server(api, account.id, 587, **fields)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_SMTP_SERVER", path)]
    assert (await MailAccount.get(id=account.row_id)).smtp_host is None


async def test_smtp_server_of_other_tenant_is_not_found(api: Api, other: Api, reader: Api) -> None:
    """Another tenant cannot set or clear the server (NOT_FOUND); a reader gets FORBIDDEN."""
    account = await new_account(api, "vertrieb@firma.example")
    assert [e["code"] for e in (await own_server(other, account.id, 587))["userErrors"]] == ["NOT_FOUND"]
    cleared = (await other(CLEAR_SMTP, {"input": {"accountId": account.id}}))["clearSmtpServer"]
    assert [e["code"] for e in cleared["userErrors"]] == ["NOT_FOUND"]
    errors = await reader.errors(CLEAR_SMTP, {"input": {"accountId": account.id}})
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_sent_mail_to_own_platform_address_arrives(api: Api, sink: Sink, listener: int) -> None:
    """A message the relay got for pN@ can be handed to the listener and is stored INBOUND there."""
    account = await new_account(api, "vertrieb@firma.example")
    assert (await send(api, account.id, to=[account.inbound], text="x"))["userErrors"] == []
    received = sink.received[0]
    assert (await deliver(listener, received.rcpt_tos, received.content, mail_from=received.mail_from)).code == 250
    directions = sorted(m.direction for m in await Message.filter(account_id=account.row_id))
    assert directions == [Direction.INBOUND, Direction.OUTBOUND]
    assert MAILBOX_DOMAIN in account.inbound


async def test_changed_secret_key_is_send_failed_asking_for_the_password(
    api: Api, auth_sink: Sink, settings: Settings
) -> None:
    """After SECRET_KEY changed, sending through the own server is SEND_FAILED saying the password must be
    entered again; nothing is sent or stored, and setting the password again makes sending work."""
    import httpx

    from mailaccounts.app import build_app

    account = await new_account(api, "vertrieb@firma.example")
    assert (await own_server(api, account.id, auth_sink.port))["userErrors"] == []
    rotated = Settings(**{**settings.__dict__, "secret_key": "n" * 40})
    transport = httpx.ASGITransport(app=build_app(rotated, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for lang, words in (("en", "enter the SMTP server password again"), ("de", "Passwort des SMTP-Servers erneut")):
            rotated_api = Api(http, api.token, lang=lang)
            payload = await send(rotated_api, account.id, text="x")
            assert payload["message"] is None
            [error] = payload["userErrors"]
            assert (error["code"], error["field"]) == ("SEND_FAILED", None)
            assert words in error["message"]
        assert auth_sink.received == [] and auth_sink.logins == []
        assert await Message.all().count() == 0
        rotated_api = Api(http, api.token)
        assert (await own_server(rotated_api, account.id, auth_sink.port))["userErrors"] == []
        assert (await send(rotated_api, account.id, text="x"))["userErrors"] == []
    assert auth_sink.logins == [SMTP_USER]
    assert len(auth_sink.received) == 1


async def test_partly_refused_recipients_are_reported_and_the_message_is_stored(api: Api, sink: Sink) -> None:
    """If the relay refuses some recipients and takes the others, the message is stored as sent and each
    refused recipient is a RECIPIENT_REFUSED userError at its input entry with the relay's answer."""
    account = await new_account(api, "vertrieb@firma.example")
    sink.refuse_rcpt = {"weg@example.com", "alt@example.com"}
    payload = await send(
        Api(api.http, api.token, lang="en"),
        account.id,
        to=["kunde@example.com", "weg@example.com"],
        cc=["chef@example.com"],
        bcc=["alt@example.com"],
        text="x",
    )
    assert payload["message"]["direction"] == "OUTBOUND"
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("RECIPIENT_REFUSED", ["input", "to", "1"]),
        ("RECIPIENT_REFUSED", ["input", "bcc", "0"]),
    ]
    assert all("refused this recipient" in e["message"] and "550 5.1.1" in e["message"] for e in payload["userErrors"])
    assert "weg@example.com" in payload["userErrors"][0]["message"]
    [received] = sink.received
    assert received.rcpt_tos == ["kunde@example.com", "chef@example.com"]
    assert await Message.filter(account_id=account.row_id).count() == 1


async def test_all_recipients_refused_is_send_failed(api: Api, sink: Sink) -> None:
    """If the relay refuses every recipient, sendMessage is SEND_FAILED naming them; nothing is stored."""
    account = await new_account(api, "vertrieb@firma.example")
    sink.refuse_rcpt = {"kunde@example.com", "chef@example.com"}
    payload = await send(api, account.id, cc=["chef@example.com"], text="x")
    assert payload["message"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("SEND_FAILED", None)
    assert "kunde@example.com: 550 5.1.1" in error["message"] and "chef@example.com: 550 5.1.1" in error["message"]
    assert sink.received == []
    assert await Message.all().count() == 0
