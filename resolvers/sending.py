"""Sending mail as an account: the MIME message, the envelope, the relay it goes through, the sent copy."""

from __future__ import annotations

import base64
import logging
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, SingleAddressHeader, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import Policy
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Any, Protocol

from orm.models import MailAccount, Message, SmtpSecurity
from resolvers.accounts import normalize_address
from resolvers.errors import AccountError, AccountInactive, InvalidEmail, NotFound, OperationPending
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
    if len(subject) > SUBJECT_MAX or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in subject):
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


# RFC 5322 §2.1.1: header lines of at most 78 characters; RFC 2047 §2: an encoded word of at most 75.
_LINE_MAX = 78
_WORD_MAX = 75
# Q-encoded as themselves: the characters RFC 2047 §5(3) allows even in a phrase (the From display name).
_Q_LITERAL = frozenset((string.ascii_letters + string.digits + "!*+-/").encode())
_PLAIN_TEXT = re.compile(r"[!-~]+(?: +[!-~]+)*")  # printable ASCII, no space at either end
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATOMS = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")


def _encoded_word(text: str, q: bool) -> str:
    data = text.encode()
    if q:
        return (
            "=?utf-8?q?"
            + "".join("_" if byte == 0x20 else chr(byte) if byte in _Q_LITERAL else f"={byte:02X}" for byte in data)
            + "?="
        )
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


def _encoded_words(text: str, first_room: int) -> list[str]:
    """`text` as UTF-8 encoded words of whole characters, one per line; Q or B, whichever is shorter.

    Every space of the text is inside a word: the whitespace between two encoded words is no text (RFC 2047
    §6.2). The first word takes at most `first_room` characters, the others _WORD_MAX.
    """
    q = len(_encoded_word(text, True)) <= len(_encoded_word(text, False))
    words: list[str] = []
    chunk = ""
    room = min(first_room, _WORD_MAX)
    for char in text:
        if chunk and len(_encoded_word(chunk + char, q)) > room:
            words.append(_encoded_word(chunk, q))
            chunk, room = "", _WORD_MAX  # on a continuation line of its own: " " and the word, 76 of 78
        chunk += char
    words.append(_encoded_word(chunk, q))
    return words


def _folded_text(text: str, used: int, linesep: str) -> str:
    """An unstructured value (Subject) after `used` characters of its line: plain ASCII folded before a space
    where it allows, else encoded words; a space is never lost and no line is longer than _LINE_MAX."""
    if _PLAIN_TEXT.fullmatch(text) and "=?" not in text:
        lines = [""]
        for token in re.findall(r" *[^ ]+", text):  # a fold goes before a token's spaces, which stay on its line
            if lines[-1] and len(lines[-1]) + len(token) > _LINE_MAX - (used if len(lines) == 1 else 0):
                lines.append("")
            lines[-1] += token
        if len(lines[0]) + used <= _LINE_MAX and all(len(line) <= _LINE_MAX for line in lines):
            return linesep.join(lines)
    return (linesep + " ").join(_encoded_words(text, _LINE_MAX - used))


def _folded_mailbox(display_name: str, addr_spec: str, used: int, linesep: str) -> str:
    """`name <address>` after `used` characters of its line: an ASCII name as atoms or a quoted string when it
    fits the line, else encoded words, with the address after the last one or on its own line."""
    if not display_name:
        return addr_spec
    if _PLAIN_TEXT.fullmatch(display_name) and "=?" not in display_name:
        quoted = re.sub(r'(["\\])', r"\\\1", display_name)
        phrase = display_name if _ATOMS.fullmatch(display_name) else f'"{quoted}"'
        if used + len(phrase) + len(addr_spec) + 3 <= _LINE_MAX:
            return f"{phrase} <{addr_spec}>"
    words = _encoded_words(display_name, _LINE_MAX - used)
    last = f"{words[-1]} <{addr_spec}>"
    if len(last) <= _LINE_MAX - (used if len(words) == 1 else 1):
        words[-1] = last
    else:
        words.append(f"<{addr_spec}>")
    return (linesep + " ").join(words)


# CPython's folder can leave the space between two words it encodes outside the encoded words, where RFC 2047
# §6.2 makes readers drop it ("ÖÖÖ ÜÜÜ" arrives as "ÖÖÖÜÜÜ"): gh-92081 on 3.11, and gh-144156 in its fix
# (3.12.5, 3.13, 3.14 until 2026). It also folds a From into lines over 78 characters. So Subject and From
# are encoded and folded here; the stdlib's header classes still parse the values and refuse line breaks.
class _SentSubject(UnstructuredHeader, BaseHeader):
    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value  # the text as entered, even where it looks like an encoded word

    def fold(self, *, policy: Policy) -> str:
        if not str(self):
            return f"{self.name}:{policy.linesep}"
        return f"{self.name}: {_folded_text(str(self), len(self.name) + 2, policy.linesep)}{policy.linesep}"


# typeshed declares AddressHeader.init as (*args, **kw); at run time these are the bases the registry joins anyway.
class _SentFrom(SingleAddressHeader, BaseHeader):  # type: ignore[misc]
    def fold(self, *, policy: Policy) -> str:
        mailbox = self.address
        folded = _folded_mailbox(mailbox.display_name, mailbox.addr_spec, len(self.name) + 2, policy.linesep)
        return f"{self.name}: {folded}{policy.linesep}"


_SENT_HEADERS = HeaderRegistry()
_SENT_HEADERS.map_to_type("subject", _SentSubject)
_SENT_HEADERS.map_to_type("from", _SentFrom)
_SENT_POLICY = SMTP_POLICY.clone(header_factory=_SENT_HEADERS)


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

    Header values go through `email`'s header registry, which refuses line breaks, so no input can add
    a header; Subject and From are encoded and folded by _SENT_POLICY. Bcc recipients are not in the headers.
    """
    sender = _account_address(account)
    local, _, domain = sender.rpartition("@")
    message = EmailMessage(policy=_SENT_POLICY)
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
    if account.pending_operation is not None:
        raise OperationPending("accountId")
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
