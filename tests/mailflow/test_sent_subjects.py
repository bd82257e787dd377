"""Sent Subject and From headers read back as the text entered: no space lost where they are folded, short lines."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import parseaddr

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orm.models import MailAccount
from resolvers.accounts import SENDER_NAME_MAX
from resolvers.mail_headers import parse_header_fields
from resolvers.sending import SUBJECT_MAX, Draft, build_message
from tests.support.api import Api
from tests.support.documents import SEND
from tests.support.factories import new_account
from tests.support.smtp import Sink

SENDER = "vertrieb@firma.example"
DASH = "\u2013"  # the en dash German subjects use, a three-byte character in UTF-8
# RFC 5322 §2.1.1: a line SHOULD be at most 78 characters and MUST be at most 998.
LINE_SHOULD = 78
LINE_MUST = 998

# Text the API takes for a subject or a sender name: no control, format, separator-line or surrogate characters.
TEXT_CHARS = st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
# Arbitrary text rarely alternates ASCII and non-ASCII words the way German subjects do, which is where folding
# between two encoded words happens: build such text from words too.
WORDS = st.sampled_from(
    ["Angebot", "für", "Müller", "GmbH", DASH, "Rückfrage", "zur", "Lieferung", "ä", "🎉", "Grüße,", "(Köln)",
     "x" * 40, "=?utf-8?q?kein_Wort?=", "a_b", '"Zitat"', "\\", "\u00a0", "日本語"]
)  # fmt: skip
SPACES = st.sampled_from(["", " ", " ", "  "])


def texts(max_size: int) -> st.SearchStrategy[str]:
    worded = st.lists(st.tuples(SPACES, WORDS), max_size=80).map(lambda parts: "".join(s + w for s, w in parts))
    return st.one_of(st.text(TEXT_CHARS, max_size=max_size), worded.map(lambda text: text[:max_size]))


PROPERTY = hypothesis_settings(max_examples=400, deadline=None, database=None, derandomize=True)
LONG_SUBJECTS = [
    f"Angebot für Müller GmbH {DASH} Rückfrage zur Lieferung, " * 3 + "Ende",
    "äää ööö üüü ßßß ÄÄÄ ÖÖÖ ÜÜÜ äää ööö üüü ßßß ÄÄÄ ÖÖÖ ÜÜÜ äää ööö üüü ßßß",
    "🎉 Einladung 🎉 zur 🎉 Feier 🎉 im 🎉 Büro 🎉 am 🎉 Freitag 🎉 um 🎉 fünf 🎉 Uhr",
    f"Rückfrage  zur   Lieferung  für  Müller  GmbH  {DASH}  doppelte  Leerzeichen  überall  zwischen  Wörtern",
    "a ä " * 40 + "Schluss",
]


def built(subject: str = "Angebot", sender_name: str = "Vertrieb") -> bytes:
    """The message as sending builds it, for an account with this sender name."""
    account = MailAccount(email=SENDER, sender_name=sender_name)
    return build_message(account, Draft(to=["kunde@example.com"]), to=["kunde@example.com"], cc=[], subject=subject,
                         reply=None)  # fmt: skip


def header_lines(raw: bytes, name: str) -> list[str]:
    """The lines of the first header `name` as sent, folding kept."""
    lines = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + ":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t"):
        end += 1
    return lines[start:end]


def unfolded(raw: bytes, name: str) -> str:
    """A header value as the stdlib's compat32 parser reads it, unfolded (RFC 5322 §2.2.3: only the CRLF goes)."""
    return re.sub(r"\r\n(?=[ \t])", "", str(message_from_bytes(raw)[name]))


def stdlib_decoded(value: str) -> str:
    """RFC 2047 words decoded by the stdlib's decoder, the one most Python mail code uses."""
    return str(make_header(decode_header(value)))


def assert_short_lines(raw: bytes) -> None:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        assert len(line) <= LINE_SHOULD <= LINE_MUST, line


def test_long_subjects_keep_every_space() -> None:
    """Long subjects mixing ASCII and umlauts or emoji decode with every space, by the stdlib and by intake."""
    for subject in LONG_SUBJECTS:
        raw = built(subject)
        assert_short_lines(raw)
        assert len(header_lines(raw, "Subject")) > 1
        assert stdlib_decoded(unfolded(raw, "Subject")) == subject
        assert message_from_bytes(raw, policy=policy.default)["Subject"] == subject
        assert parse_header_fields(raw).subject == " ".join(subject.split())


@PROPERTY
@given(subject=texts(SUBJECT_MAX))
def test_any_subject_round_trips_in_short_lines(subject: str) -> None:
    """Any subject of up to 998 characters decodes to itself, each header line at most 78 characters."""
    raw = built(subject)
    assert_short_lines(raw)
    assert stdlib_decoded(unfolded(raw, "Subject")) == subject
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == subject
    assert parse_header_fields(raw).subject == " ".join(subject.split())


@PROPERTY
@given(name=texts(SENDER_NAME_MAX).map(str.strip).filter(bool))
def test_any_sender_name_round_trips_in_short_lines(name: str) -> None:
    """Any valid sender name comes back from From as entered (display name and address), in lines of 78 at most."""
    raw = built(sender_name=name)
    assert_short_lines(raw)
    display_name, address = parseaddr(unfolded(raw, "From"))
    assert (stdlib_decoded(display_name), address) == (name, SENDER)
    if not name.isascii():  # plain ASCII names stay readable: quoted where needed, as the stdlib quotes them
        assert parse_header_fields(raw).from_header == f"{' '.join(name.split())} <{SENDER}>"


async def test_relay_receives_and_stores_the_subject_with_its_spaces(api: Api, sink: Sink) -> None:
    """sendMessage over SMTP: the relay's bytes decode to the subject and sender name sent, so does the sent copy."""
    name = f"Müller, Vertrieb und Außendienst für Nordrhein-Westfalen {DASH} Rückfragen bitte an Frau Özdemir"
    account = await new_account(api, SENDER, name=name)
    for subject in LONG_SUBJECTS:
        data = await api(SEND, {"input": {"accountId": account.id, "to": ["kunde@example.com"], "subject": subject}})
        payload = data["sendMessage"]
        assert payload["userErrors"] == []
        raw = sink.received[-1].content
        assert_short_lines(raw)
        assert stdlib_decoded(unfolded(raw, "Subject")) == subject
        display_name, address = parseaddr(unfolded(raw, "From"))
        assert (stdlib_decoded(display_name), address) == (name, SENDER)
        assert payload["message"]["subject"] == " ".join(subject.split())
        assert payload["message"]["from"] == f"{name} <{SENDER}>"
        assert payload["message"]["raw"].encode() == raw
    assert len(sink.received) == len(LONG_SUBJECTS)
