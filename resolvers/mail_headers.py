"""Raw messages read leniently: the one header and MIME parser of intake, sending and the message view."""

from __future__ import annotations

import email.message
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser, BytesParser
from email.policy import Compat32
from email.utils import parsedate_to_datetime

__all__ = [
    "MESSAGE_ID_MAX",
    "TEXT_MAX",
    "VIEW_HEADERS",
    "HeaderFields",
    "MessageContent",
    "parse_header_fields",
    "raw_header",
    "read_message",
]

MESSAGE_ID_MAX = 998
# The message view shows at most this much text; the raw message stays available in full.
TEXT_MAX = 200_000
# The headers the message view shows, in this order, when present.
VIEW_HEADERS = ("From", "To", "Cc", "Reply-To", "Date", "Subject", "Message-ID")


class _RawHeaderPolicy(Compat32):
    """compat32, but header values stay the text as received: 8-bit bytes as surrogate escapes, for `_eight_bit`.

    compat32 itself wraps such values in an `unknown-8bit` Header, which decodes to U+FFFD.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_HEADER_PARSER = BytesHeaderParser(policy=_RawHeaderPolicy())
_MIME_PARSER = BytesParser(policy=policy.default)
_ESCAPED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class HeaderFields:
    """The header fields kept beside the raw bytes, parsed leniently: broken headers give empty values."""

    message_id: str | None
    from_header: str
    to_header: str
    subject: str
    date: datetime | None


def _clean(text: str) -> str:
    """One line of valid text: no NUL (PostgreSQL refuses it), no lone surrogates from 8-bit headers."""
    text = " ".join(text.replace("\x00", " ").split())
    return text.encode("utf-8", "replace").decode("utf-8")


def _eight_bit(value: str) -> str:
    """Raw 8-bit header text, which the ASCII parse kept as surrogate escapes: UTF-8 (RFC 6532), else Latin-1."""
    if _ESCAPED.search(value) is None:
        return value
    data = value.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _text(headers: email.message.Message, name: str) -> str:
    """A header decoded from RFC 2047 words; the cheap compat32 parse plus decode_header, not policy.default."""
    try:
        value = headers.get(name)
        if value is None:
            return ""
        value = _eight_bit(str(value))
        if "=?" not in value:
            return _clean(value)
        return _clean(str(make_header(decode_header(value))))
    except Exception:  # a malformed header must not stop the message from being stored
        try:
            return _clean(str(headers.get(name)))
        except Exception:
            return ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _header_block(raw: bytes) -> bytes:
    """The bytes up to the first empty line: the parser reads no further for headers, but would split the body."""
    end = raw.find(b"\r\n\r\n")
    # A bare-LF empty line can only come first if it lies before the CRLF one: search no further than that.
    bare = raw.find(b"\n\n", 0, end + 2 if end >= 0 else len(raw))
    if bare >= 0:
        end = bare
    return raw[: end + 2] if end >= 0 else raw


def _headers(raw: bytes) -> email.message.Message | None:
    """The parsed header block, or None when even the lenient parse fails."""
    try:
        return _HEADER_PARSER.parsebytes(_header_block(raw))
    except Exception:  # unparseable mail is still stored raw
        return None


def parse_header_fields(raw: bytes) -> HeaderFields:
    """The listed header fields of a raw message; RFC 2047 words decoded, anything broken left empty."""
    headers = _headers(raw)
    if headers is None:
        return HeaderFields(None, "", "", "", None)
    return HeaderFields(
        message_id=_text(headers, "Message-ID")[:MESSAGE_ID_MAX] or None,
        from_header=_text(headers, "From"),
        to_header=_text(headers, "To"),
        subject=_text(headers, "Subject"),
        date=_date(_text(headers, "Date")),
    )


def raw_header(raw: bytes, name: str) -> str:
    """The first `name` header of a raw message as written (folding kept, nothing decoded); "" if absent or broken."""
    headers = _headers(raw)
    if headers is None:
        return ""
    try:
        return str(headers.get(name) or "")
    except Exception:  # broken headers read as absent, as in parse_header_fields
        return ""


@dataclass(frozen=True)
class MessageContent:
    """What a reader sees of a raw message: decoded headers, one text and the attachments' names.

    `text` is the text/plain body, else the HTML source (`html_only`), never rendered; broken MIME gives the
    raw body as text rather than an error.
    """

    headers: list[tuple[str, str]]
    text: str
    html_only: bool = False
    attachments: list[str] = field(default_factory=list)
    truncated: bool = False


def _part_text(part: email.message.Message) -> str:
    """A text part decoded: transfer encoding, then its charset; undeclared or unknown ones as UTF-8, else Latin-1."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset()
    if charset and charset not in ("us-ascii", "ascii"):
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            pass
    return _eight_bit(payload.decode("ascii", "surrogateescape"))


def _body_after_headers(raw: bytes) -> str:
    """The raw body as text, for mail whose MIME structure cannot be read."""
    return _eight_bit(raw[len(_header_block(raw)) :].decode("ascii", "surrogateescape").lstrip("\r\n"))


def _mime_body(raw: bytes) -> tuple[str, bool, list[str]]:
    """The text, whether it is HTML source, and the attachment names; raises on MIME the parser cannot walk."""
    parsed = _MIME_PARSER.parsebytes(raw)
    if not isinstance(parsed, email.message.EmailMessage):  # policy.default always builds one; this tells mypy
        raise TypeError(type(parsed).__name__)
    attachments = [part.get_filename() or part.get_content_type() for part in parsed.iter_attachments()]
    body = parsed.get_body(preferencelist=("plain", "html"))
    if body is None:
        if parsed.is_multipart():
            return "", False, attachments
        if parsed.get_content_maintype() == "multipart":  # no usable boundary: the parser kept the body as one text
            raise ValueError("multipart without parts")
        # A single part that is no text (a PDF sent as the whole message) is an attachment, not text to show.
        return "", False, [parsed.get_filename() or parsed.get_content_type()]
    return _part_text(body), body.get_content_type() == "text/html", attachments


def read_message(raw: bytes, max_chars: int = TEXT_MAX) -> MessageContent:
    """The headers of VIEW_HEADERS (decoded as intake decodes them), the text and the attachments of a raw message."""
    parsed_headers = _headers(raw)
    headers = []
    if parsed_headers is not None:
        for name in VIEW_HEADERS:
            value = _text(parsed_headers, name)
            if value:
                headers.append((name, value))
    try:
        text, html_only, attachments = _mime_body(raw)
    except Exception:  # broken MIME (or a structure nested too deep) is shown as its raw body
        text, html_only, attachments = _body_after_headers(raw), False, []
    # NUL is no character a reader can see; browsers show it as U+FFFD anyway.
    text = text.replace("\x00", "\ufffd")
    return MessageContent(
        headers=headers,
        text=text[:max_chars],
        html_only=html_only,
        attachments=attachments,
        truncated=len(text) > max_chars,
    )
