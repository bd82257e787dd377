"""Messages of an account: storing a raw mail with its parsed header fields."""

from __future__ import annotations

from email import policy
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from datetime import datetime

from tortoise.transactions import in_transaction

from orm.models import Direction, MailAccount, Message, MessageBody

__all__ = ["HeaderFields", "parse_header_fields", "store_message"]


class HeaderFields:
    """The header fields kept beside the raw bytes, parsed leniently: broken headers give empty values."""

    def __init__(self, raw: bytes) -> None:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        self.message_id = _text(headers, "Message-ID")[:998] or None
        self.from_header = _text(headers, "From")
        self.to_header = _text(headers, "To")
        self.subject = _text(headers, "Subject")
        self.date = _date(_text(headers, "Date"))


def _text(headers: object, name: str) -> str:
    try:
        value = headers.get(name)  # type: ignore[attr-defined]
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:  # noqa: BLE001 - a malformed header must not stop the message from being stored
        return ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_header_fields(raw: bytes) -> HeaderFields:
    """Parse the stored header fields of a raw message."""
    return HeaderFields(raw)


async def store_message(
    account: MailAccount, direction: Direction, raw: bytes, *, is_bounce: bool = False
) -> Message:
    """Store a raw message unchanged in the account, with its parsed header fields."""
    fields = parse_header_fields(raw)
    async with in_transaction() as conn:
        message = await Message.create(
            account_id=account.id,
            direction=direction,
            message_id_header=fields.message_id,
            from_header=fields.from_header,
            to_header=fields.to_header,
            subject=fields.subject,
            date=fields.date,
            size=len(raw),
            is_bounce=is_bounce,
            using_db=conn,
        )
        await MessageBody.create(message=message, content=raw, using_db=conn)
    return message
