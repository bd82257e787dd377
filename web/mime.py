"""A stored mail prepared for the message page: selected headers, the text and the attachment names."""

from __future__ import annotations

import email.message
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

__all__ = ["ReadableMessage", "readable_message"]


@dataclass(frozen=True)
class ReadableMessage:
    """A stored mail prepared for reading: selected headers and the text, never rendered as HTML."""

    headers: list[tuple[str, str]]
    text: str
    html_only: bool
    attachments: list[str] = field(default_factory=list)


def readable_message(raw: bytes, max_chars: int = 200_000) -> ReadableMessage:
    """Headers and plain text of a raw message; an HTML-only message shows its source as text."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    headers = []
    for name in ("From", "To", "Cc", "Reply-To", "Date", "Subject", "Message-ID"):
        try:
            value = parsed.get(name)
        except Exception:
            value = None
        if value is not None:
            headers.append((name, str(value)))
    text, html_only = "", False
    try:
        body = (
            parsed.get_body(preferencelist=("plain", "html"))
            if isinstance(parsed, email.message.EmailMessage)
            else None
        )
        if body is not None:
            text = str(body.get_content())
            html_only = body.get_content_type() == "text/html"
        elif not parsed.is_multipart():
            text = str(parsed.get_payload())
    except (LookupError, ValueError, AssertionError):
        text = raw.decode("utf-8", "replace").split("\n\n", 1)[-1]
    attachments = []
    if isinstance(parsed, email.message.EmailMessage):
        attachments = [part.get_filename() or part.get_content_type() for part in parsed.iter_attachments()]
    return ReadableMessage(headers=headers, text=text[:max_chars], html_only=html_only, attachments=attachments)
