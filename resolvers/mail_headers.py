"""Header fields of a raw message, read leniently: the one header parser of intake and of sending."""

from __future__ import annotations

import email.message
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import Compat32
from email.utils import parsedate_to_datetime

__all__ = [
    "MESSAGE_ID_MAX",
    "HeaderFields",
    "parse_header_fields",
    "raw_header",
]

MESSAGE_ID_MAX = 998


class _RawHeaderPolicy(Compat32):
    """compat32, but header values stay the text as received: 8-bit bytes as surrogate escapes, for `_eight_bit`.

    compat32 itself wraps such values in an `unknown-8bit` Header, which decodes to U+FFFD.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_HEADER_PARSER = BytesHeaderParser(policy=_RawHeaderPolicy())
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
