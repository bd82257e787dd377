"""How the dashboard writes values: URL slugs of global IDs, dates, ages and sizes per language (Jinja filters)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import babel.dates
import babel.numbers

from texts import coded, coded_text, coded_texts, translations

__all__ = [
    "LOCAL_TIME",
    "SPF_PROBLEM_LABELS",
    "format_age",
    "format_count",
    "format_datetime",
    "format_size",
    "from_slug",
    "parse_timestamp",
    "spf_problem_label",
    "to_slug",
]

LOCAL_TIME = ZoneInfo("Europe/Berlin")
MINUTE, HOUR, DAY = 60, 3600, 86400
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


def format_datetime(value: str | None, lang: str) -> str:
    """An ISO timestamp from the API in local time as `lang` writes it: "03.02.2025, 14:05" in German.

    The locale's medium date and short time, joined by its own pattern (Babel, CLDR).
    """
    moment = parse_timestamp(value)
    if moment is None:
        return "\N{EN DASH}"
    date = babel.dates.format_date(moment.astimezone(LOCAL_TIME), "medium", locale=lang)
    clock = babel.dates.format_time(moment, "short", tzinfo=LOCAL_TIME, locale=lang)
    pattern = str(babel.dates.get_datetime_format("medium", locale=lang))
    return pattern.replace("{1}", date).replace("{0}", clock)


def format_age(value: str | None, lang: str, now: float | None = None) -> str:
    """How long ago an ISO timestamp was, in whole units of the largest that fits: "vor 5 Minuten".

    Not Babel's format_timedelta: it rounds (90 minutes become "2 hours") and turns days into weeks and months.
    """
    moment = parse_timestamp(value)
    if moment is None:
        return ""
    t = translations(lang)
    seconds = max(0, int((now if now is not None else time.time()) - moment.timestamp()))
    if seconds >= DAY:
        count = seconds // DAY
        text = t.ngettext("{count} day ago", "{count} days ago", count)
    elif seconds >= HOUR:
        count = seconds // HOUR
        text = t.ngettext("{count} hour ago", "{count} hours ago", count)
    elif seconds >= MINUTE:
        count = seconds // MINUTE
        text = t.ngettext("{count} minute ago", "{count} minutes ago", count)
    else:
        return t.gettext("just now")
    return text.format(count=count)


def format_count(value: int, lang: str) -> str:
    """A count with the grouping of `lang` ("1.000.000" in German, "1,000,000" in English)."""
    return str(babel.numbers.format_decimal(value, locale=lang))


def format_size(value: int, lang: str) -> str:
    """Bytes as B, KB or MB with one decimal in the notation of `lang` ("1,5 KB" in German)."""
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{babel.numbers.format_decimal(value / 1024, '0.0', locale=lang)} KB"
    return f"{babel.numbers.format_decimal(value / 1024 / 1024, '0.0', locale=lang)} MB"


# The list's SPF column names the problem in a few words; the account's panel has the full text and the fix.
SPF_PROBLEM_LABELS = coded_texts(
    coded("DOMAIN_UNREACHABLE", "Domain unreachable"),
    coded("NO_MX_RECORDS", "No MX records"),
    coded("SPF_NEEDS_UPDATE", "SPF without platform"),
    coded("NO_SPF_RECORD", "No SPF record"),
    coded("DNS_TEMPORARY_FAILURE", "DNS unreachable"),
)


def spf_problem_label(code: str, lang: str) -> str:
    """The short name of an SPF problem code for the account list ("Problem" for an unknown one)."""
    if code in SPF_PROBLEM_LABELS:
        return coded_text(lang, code, SPF_PROBLEM_LABELS[code])
    return translations(lang).gettext("Problem")
