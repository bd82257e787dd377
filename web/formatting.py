"""How the dashboard writes values: URL slugs of global IDs, German dates, ages and sizes (also as Jinja filters)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = [
    "LOCAL_TIME",
    "SPF_PROBLEM_LABELS",
    "format_age",
    "format_datetime",
    "format_size",
    "from_slug",
    "parse_timestamp",
    "spf_problem_label",
    "to_slug",
]

LOCAL_TIME = ZoneInfo("Europe/Berlin")
_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def to_slug(global_id: str) -> str:
    """A global ID as a URL path segment: URL-safe base64 without padding."""
    return global_id.replace("+", "-").replace("/", "_").rstrip("=")


def from_slug(slug: str) -> str | None:
    """The global ID behind a slug from `to_slug`, or None when the slug is malformed."""
    if not _SLUG.match(slug):
        return None
    text = slug.replace("-", "+").replace("_", "/")
    return text + "=" * (-len(text) % 4)


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO timestamp from the API as an aware datetime (UTC when it names no zone), or None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_datetime(value: str | None) -> str:
    """An ISO timestamp from the API as German local time, e.g. 03.02.2025, 14:05."""
    moment = parse_timestamp(value)
    return moment.astimezone(LOCAL_TIME).strftime("%d.%m.%Y, %H:%M") if moment else "\N{EN DASH}"


def format_age(value: str | None, now: float | None = None) -> str:
    """How long ago an ISO timestamp was, in German: "vor 5 Minuten"."""
    moment = parse_timestamp(value)
    if moment is None:
        return ""
    seconds = max(0, int((now if now is not None else time.time()) - moment.timestamp()))
    for size, one, many in ((86400, "Tag", "Tagen"), (3600, "Stunde", "Stunden"), (60, "Minute", "Minuten")):
        if seconds >= size:
            count = seconds // size
            return f"vor {count} {one if count == 1 else many}"
    return "gerade eben"


def format_size(value: int) -> str:
    """Bytes as B, KB or MB with a German decimal comma."""
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB".replace(".", ",")
    return f"{value / 1024 / 1024:.1f} MB".replace(".", ",")


# The list's SPF column names the problem in a few words; the account's panel has the full text and the fix.
SPF_PROBLEM_LABELS = {
    "DOMAIN_UNREACHABLE": "Domain nicht erreichbar",
    "NO_MX_RECORDS": "Keine MX-Einträge",
    "SPF_NEEDS_UPDATE": "SPF ohne Plattform",
    "NO_SPF_RECORD": "Kein SPF-Eintrag",
    "DNS_TEMPORARY_FAILURE": "DNS nicht erreichbar",
}


def spf_problem_label(code: str) -> str:
    """The short German name of an SPF problem code for the account list ("Problem" for an unknown one)."""
    return SPF_PROBLEM_LABELS.get(code, "Problem")
