"""The message page's header rows: the headers the API decoded, under labels from the catalogue (no MIME parsing)."""

from __future__ import annotations

from texts import N_, translations
from web.formatting import format_datetime
from web.results import MessageDetail

__all__ = ["HEADER_LABELS", "header_rows"]

# The API's header names (MessageContent.headers) as the message page labels them.
# English source texts, translated where the page is rendered.
HEADER_LABELS = {
    "From": N_("From"),
    "To": N_("To"),
    "Cc": N_("Copy (CC)"),
    "Reply-To": N_("Reply to"),
    "Date": N_("Date"),
    "Subject": N_("Subject"),
    "Message-ID": N_("Message ID"),
}


def header_rows(message: MessageDetail, lang: str) -> list[tuple[str, str]]:
    """(label, value) per header the API returned, in `lang`; the date in local time when it could be read."""
    t = translations(lang)
    rows = []
    for header in message["content"]["headers"]:
        label = HEADER_LABELS.get(header["name"])
        if label is None:
            continue
        value = header["value"]
        if header["name"] == "Date" and message["date"]:
            value = format_datetime(message["date"], lang)
        rows.append((t.gettext(label), value))
    return rows
