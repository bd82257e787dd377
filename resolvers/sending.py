"""Sending mail as an account: the MIME message, the envelope, the relay it goes through, the sent copy."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Protocol

from orm.models import MailAccount, Message, SmtpSecurity
from resolvers.accounts import normalize_address
from resolvers.errors import AccountError, AccountInactive, InvalidEmail, NotFound
from resolvers.intake import store_sent_message
from resolvers.mail_headers import raw_header
from resolvers.mailboxes import outbound_address
from resolvers.messages import get_message, message_raw
from resolvers.outbound import OutboundGuard
from resolvers.smtp_servers import SmtpServerUnreadable, decrypt_password, smtp_server_of

log = logging.getLogger(__name__)

__all__ = [
    "Draft",
    "EnvelopeSender",
    "InvalidInReplyTo",
    "InvalidRecipient",
    "InvalidSubject",
    "MailRelay",
    "Outbox",
    "RefusedRecipient",
    "RelayRefused",
    "RelayTarget",
    "RelayUnreachable",
    "SendFailed",
    "SentMessage",
    "SmtpPasswordUnreadable",
    "SmtpServerUnreachable",
    "build_message",
    "send_message",
]

MAX_RECIPIENTS = 100
SUBJECT_MAX = 998
_MSG_ID = re.compile(r"^<[!-;=?-~]{1,994}>$")  # printable ASCII without < > and spaces, in angle brackets


class EnvelopeSender(StrEnum):
    """Whose address is the envelope sender (MAIL FROM) of mail sent through the platform relay."""

    PLATFORM = "platform"
    ACCOUNT = "account"


class InvalidRecipient(AccountError):
    """A recipient address is malformed; `field` is to/cc/bcc, `params["index"]` its position."""

    code = "INVALID_RECIPIENT"


class InvalidSubject(AccountError):
    code = "INVALID_SUBJECT"


class InvalidInReplyTo(AccountError):
    code = "INVALID_IN_REPLY_TO"


class SendFailed(AccountError):
    """The relay refused the message or did not answer; `params["reply"]` is what it said."""

    code = "SEND_FAILED"


class SmtpPasswordUnreadable(SendFailed):
    """The own server's stored password cannot be decrypted (SECRET_KEY changed): it must be entered again."""


class SmtpServerUnreachable(SendFailed):
    """No SMTP conversation with the account's own server came about: not allowed, no address, refused,
    timed out or TLS failed. One case for the client on purpose, so sendMessage is no port scanner; the
    reason is in the log."""


class RelayRefused(Exception):
    """Raised by a MailRelay when the server refused the message, failed or timed out."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class RelayUnreachable(RelayRefused):
    """Raised by a MailRelay when a user-supplied server was not talked to at all (refused by the outbound
    rule, no address, connection refused or timed out, TLS failed). `reply` is empty: what went wrong
    is in `detail`, for the log only."""

    def __init__(self, detail: str) -> None:
        super().__init__("")
        self.detail = detail


@dataclass(frozen=True)
class RelayTarget:
    """An SMTP server to send through instead of the platform relay (an account's own server)."""

    host: str
    port: int
    security: SmtpSecurity
    username: str | None = None
    password: str | None = field(default=None, repr=False)


class MailRelay(Protocol):
    """Hands a finished message to an SMTP server; implemented with aiosmtplib in mailflow/."""

    async def send(
        self, raw: bytes, *, sender: str, recipients: Sequence[str], target: RelayTarget | None = None
    ) -> Mapping[str, str]:
        """Send `raw` with this envelope through `target`, or the platform relay when None.

        Returns the recipients the server refused while it accepted others (address -> its reply).
        Raises RelayRefused with the server's answer when the message was not accepted at all, and
        RelayUnreachable when `target` was not allowed or not reached (the platform relay is configured
        by the operator and is never checked against the outbound rule).
        """
        ...


@dataclass(frozen=True)
class RefusedRecipient:
    """A recipient the server refused although it took the message for the others."""

    field: str  # to, cc or bcc
    index: int
    address: str
    reply: str


@dataclass(frozen=True)
class SentMessage:
    """A message the server accepted, as stored (OUTBOUND), and the recipients it refused."""

    message: Message
    refused: list[RefusedRecipient]


@dataclass(frozen=True)
class Outbox:
    """What sending needs from the wiring: the relay, the outbound rule for own servers and the settings
    that shape the envelope."""

    relay: MailRelay
    mailbox_domain: str
    outbound: OutboundGuard
    envelope_sender: EnvelopeSender = EnvelopeSender.PLATFORM
    secret_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Draft:
    """A message to send, as the API takes it. `in_reply_to` is a Message-ID `<…>` or a stored message."""

    to: Sequence[str]
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    in_reply_to: str | None = None
    in_reply_to_message_id: int | None = None


def _addresses(values: Sequence[str], field_name: str) -> list[str]:
    addresses = []
    for index, value in enumerate(values):
        try:
            address = normalize_address(value, field=field_name)
        except InvalidEmail:
            raise InvalidRecipient(field_name, index=index) from None
        # The local part as entered (it may be case-sensitive), the domain in its ASCII form.
        addresses.append(f"{address.entered.rpartition('@')[0]}@{address.domain}")
    return addresses


def _account_address(account: MailAccount) -> str:
    address = normalize_address(account.email)
    return f"{address.entered.rpartition('@')[0]}@{address.domain}"


def _validate_subject(subject: str) -> str:
    if len(subject) > SUBJECT_MAX or any(
        unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in subject
    ):
        raise InvalidSubject("subject")
    return subject.strip()


async def _reply_headers(tenant_id: int, draft: Draft) -> tuple[str, str] | None:
    """In-Reply-To and References for a reply, from a stored message or a given Message-ID."""
    if draft.in_reply_to_message_id is not None:
        original = await get_message(tenant_id, draft.in_reply_to_message_id)
        if original is None:
            raise InvalidInReplyTo("inReplyTo")
        if not original.message_id_header or not _MSG_ID.match(original.message_id_header):
            return None
        references = _references_of(await message_raw(original.id))
        return original.message_id_header, " ".join([*references, original.message_id_header])
    if draft.in_reply_to is not None:
        value = draft.in_reply_to.strip()
        if not _MSG_ID.match(value):
            raise InvalidInReplyTo("inReplyTo")
        return value, value
    return None


def _references_of(raw: bytes) -> list[str]:
    """The stored message's last 20 well-formed References; broken headers just mean no thread to continue."""
    return [ref for ref in raw_header(raw, "References").split() if _MSG_ID.match(ref)][-20:]


def build_message(
    account: MailAccount,
    draft: Draft,
    *,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    reply: tuple[str, str] | None,
    now: datetime | None = None,
) -> bytes:
    """The MIME message as sent: From with the sender name, Date, Message-ID, threading, text and html.

    Header values go through `email`'s header registry, which encodes and folds them and refuses
    line breaks, so no input can add a header. Bcc recipients are not in the headers.
    """
    sender = _account_address(account)
    local, _, domain = sender.rpartition("@")
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = Address(display_name=account.sender_name, username=local, domain=domain)
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    if reply is not None:
        message["In-Reply-To"] = reply[0]
        message["References"] = reply[1]
    message["MIME-Version"] = "1.0"
    if draft.html is not None:
        message.set_content(draft.text or "", subtype="plain", cte="quoted-printable")
        message.add_alternative(draft.html, subtype="html", cte="quoted-printable")
    else:
        message.set_content(draft.text or "", subtype="plain", cte="quoted-printable")
    return message.as_bytes()


async def send_message(outbox: Outbox, tenant_id: int, account_id: int, draft: Draft) -> SentMessage:
    """Send a message as the account and store it as OUTBOUND once the server accepted it.

    It goes through the account's own SMTP server if one is set (envelope sender: the account's
    address), otherwise through the platform relay with the envelope sender chosen by ENVELOPE_SENDER.
    Nothing is stored when the server refuses the message or every recipient (SendFailed with its
    answer). If it refuses only some recipients the message went out to the others: it is stored and
    the refused ones are returned with the server's reply, so the user can tell who did not get it.
    An own server that is not allowed or not reached is SmtpServerUnreachable, with no detail for the
    client (the log has it); an own server that answered with an SMTP reply is SendFailed with that reply.
    """
    account = await MailAccount.get_or_none(tenant_id=tenant_id, id=account_id)
    if account is None:
        raise NotFound("accountId")
    if not account.active:
        raise AccountInactive("accountId")
    to, cc, bcc = _addresses(draft.to, "to"), _addresses(draft.cc, "cc"), _addresses(draft.bcc, "bcc")
    recipients = list(dict.fromkeys([*to, *cc, *bcc]))
    if not recipients:
        raise InvalidRecipient("to", index=0)
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidRecipient("to", index=MAX_RECIPIENTS)
    subject = _validate_subject(draft.subject)
    reply = await _reply_headers(tenant_id, draft)
    raw = build_message(account, draft, to=to, cc=cc, subject=subject, reply=reply)

    own = smtp_server_of(account)
    target: RelayTarget | None = None
    if own is not None:
        password = None
        if account.smtp_password_encrypted:
            if outbox.secret_key is None:
                raise SendFailed("accountId", reply="SECRET_KEY is not configured")
            try:
                password = decrypt_password(outbox.secret_key, account.smtp_password_encrypted)
            except SmtpServerUnreadable:
                raise SmtpPasswordUnreadable(None) from None
        target = RelayTarget(own.host, own.port, own.security, own.username, password)
        sender = _account_address(account)
    elif outbox.envelope_sender is EnvelopeSender.ACCOUNT:
        sender = _account_address(account)
    else:
        sender = outbound_address(account.mailbox_number, outbox.mailbox_domain)
    try:
        refused = await outbox.relay.send(raw, sender=sender, recipients=recipients, target=target)
    except RelayUnreachable as exc:
        # The log record carries the request id (RequestIdLogFilter), so support can find the reason.
        log.warning("send of account %s: own SMTP server not reached: %s", account.id, exc.detail)
        raise SmtpServerUnreachable(None) from None
    except RelayRefused as exc:
        raise SendFailed(None, reply=exc.reply) from None
    message = await store_sent_message(account.id, raw)
    return SentMessage(message, _refused_entries(refused, to=to, cc=cc, bcc=bcc))


def _refused_entries(
    refused: Mapping[str, str], *, to: Sequence[str], cc: Sequence[str], bcc: Sequence[str]
) -> list[RefusedRecipient]:
    """The refused addresses at their first place in the input (to before cc before bcc, as sent)."""
    entries: list[RefusedRecipient] = []
    seen: set[str] = set()
    for field_name, addresses in (("to", to), ("cc", cc), ("bcc", bcc)):
        for index, address in enumerate(addresses):
            if address in refused and address not in seen:
                seen.add(address)
                entries.append(RefusedRecipient(field_name, index, address, refused[address]))
    return entries
