"""The one header parser of intake and sending (resolvers/mail_headers.py)."""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser

from hypothesis import given
from hypothesis import strategies as st

from resolvers.mail_headers import HeaderFields, parse_header_fields, raw_header

HEADER_NAMES = st.sampled_from(["References", "Subject", "X-Other", "references"])
TOKENS = st.sampled_from([b"<a@x.example>", b"<b@y>", b"\xe4", b"<c\xff@x>", b"=?utf-8?q?x?=", b"\x85", b"\x00"])
SPACES = st.sampled_from([b" ", b"\t", b"\r\n ", b"\n\t", b"  "])
HEADER_VALUES = st.lists(st.tuples(TOKENS, SPACES), max_size=6).map(lambda parts: b"".join(t + s for t, s in parts))
SEPARATORS = st.sampled_from([b"\r\n", b"\n"])
MESSAGE_ID = re.compile(r"^<[!-;=?-~]{1,994}>$")


@given(
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=5),
    separator=SEPARATORS,
    body=st.binary(max_size=40),
)
def test_raw_header_gives_the_references_the_stdlib_parser_gives(
    headers: list[tuple[str, bytes]], separator: bytes, body: bytes
) -> None:
    """The Message-IDs sending reads from raw_header's References equal those of compat32's whole-message parse."""
    raw = b"".join(name.encode() + b": " + value.strip() + separator for name, value in headers) + separator + body
    expected = str(BytesHeaderParser().parsebytes(raw).get("References") or "")
    assert [ref for ref in raw_header(raw, "References").split() if MESSAGE_ID.match(ref)] == [
        ref for ref in expected.split() if MESSAGE_ID.match(ref)
    ]


def test_raw_header_keeps_folding_and_leaves_words_encoded() -> None:
    """raw_header returns the first header as written: folded lines kept, RFC 2047 words not decoded."""
    raw = (
        b"References: <a@x.example>\r\n <b@x.example>\r\nReferences: <c@x.example>\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nReferences: <body@x.example>\r\n"
    )
    assert raw_header(raw, "References").split() == ["<a@x.example>", "<b@x.example>"]
    assert raw_header(raw, "Subject") == "=?utf-8?q?Gr=C3=BC=C3=9Fe?="
    assert raw_header(raw, "In-Reply-To") == ""


def test_listed_fields_are_decoded_and_broken_ones_left_empty() -> None:
    """parse_header_fields decodes RFC 2047 and raw 8-bit text, and leaves an unparseable Date empty."""
    raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: M\xc3\xbcller <m@x.example>\r\nTo: J\xf6rg\r\nDate: x\r\n\r\n"
    assert parse_header_fields(raw) == HeaderFields(
        message_id=None, from_header="Müller <m@x.example>", to_header="Jörg", subject="Grüße", date=None
    )
