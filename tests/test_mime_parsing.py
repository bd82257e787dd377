"""The one MIME parser (resolvers/mail_headers.py) on tricky mail, with Python's email package as the reference."""

from __future__ import annotations

import ast
import base64
import itertools
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from resolvers.intake import deliver_message
from resolvers.mail_headers import MessageContent, parse_header_fields, read_message
from resolvers.mailboxes import Recipient
from tests.support.api import Api
from tests.support.factories import new_account

# Letters (with umlauts and ß), digits, punctuation, single spaces and newlines: text both charsets can carry.
WORDS = st.text(alphabet="abcXYZäöüÄÖÜß019.,:;!?-", min_size=1, max_size=12)
SUBJECTS = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)
LINES = st.lists(st.lists(WORDS, max_size=10).map(" ".join), min_size=1, max_size=6).map("\n".join)


def _reference(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _reference_text(raw: bytes) -> str:
    body = _reference(raw).get_body(preferencelist=("plain", "html"))
    assert body is not None
    return str(body.get_content())


def _encoded_words(text: str, charset: str, cuts: list[int], b_encoding: bool) -> bytes:
    """`text` as RFC 2047 words split at `cuts` and folded onto lines (built by hand: CPython's folder drops
    a space where it splits a word at white space, gh-144156, so it cannot serve as the reference)."""
    bounds = [0, *sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
    words = []
    for start, end in itertools.pairwise(bounds):
        if start == end:
            continue
        data = text[start:end].encode(charset)
        if b_encoding:
            words.append(b"=?%s?b?%s?=" % (charset.encode(), base64.b64encode(data)))
        else:
            quoted = b"".join(bytes([c]) if chr(c).isalnum() and c < 128 else b"=%02X" % c for c in data)
            words.append(b"=?%s?q?%s?=" % (charset.encode(), quoted))
    return b"\r\n ".join(words)


@given(
    subject=SUBJECTS,
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
    b_encoding=st.booleans(),
    text=LINES,
    charset=st.sampled_from(["utf-8", "iso-8859-1"]),
    cte=st.sampled_from(["quoted-printable", "base64", "8bit"]),
    html_first=st.booleans(),
)
def test_built_messages_read_as_the_email_package_reads_them(
    subject: str, cuts: list[int], b_encoding: bool, text: str, charset: str, cte: str, html_first: bool
) -> None:
    """Encoded subjects and text/plain (QP, base64, 8-bit; UTF-8, Latin-1; alternative) read as the reference does."""
    message = EmailMessage()
    message["From"] = "Jörg Müller <j@x.example>"
    if html_first:
        message.set_content("<p>nur HTML</p>", subtype="html")
        message.make_alternative()
        message.attach(_plain(text, charset, cte))
    else:
        message.set_content(text, charset=charset, cte=cte)
        message.add_alternative("<p>HTML</p>", subtype="html")
    subject_line = b"Subject: " + _encoded_words(subject, charset, cuts, b_encoding) + b"\r\n"
    raw = subject_line + message.as_bytes(policy=policy.SMTP)
    content = read_message(raw)
    assert content.text == _reference_text(raw) and not content.html_only
    headers = dict(content.headers)
    assert headers["Subject"] == str(_reference(raw)["Subject"]) == parse_header_fields(raw).subject == subject
    assert headers["From"] == "Jörg Müller <j@x.example>" == parse_header_fields(raw).from_header


def _plain(text: str, charset: str, cte: str) -> EmailMessage:
    part = EmailMessage()
    part.set_content(text, charset=charset, cte=cte)
    return part


def test_encoded_words_decode_as_intake_stores_them() -> None:
    """RFC 2047 words in two charsets, Q and B, decode in the view exactly as intake stores them."""
    raw = (
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= =?iso-8859-1?q?_aus_K=F6ln?= und mehr\r\n"
        b"From: =?utf-8?b?SsO2cmc=?= <j@x.example>\r\nCc: =?iso-8859-1?q?B=E4r?= <b@x.example>\r\n\r\nHallo\r\n"
    )
    content = read_message(raw)
    assert content.headers == [
        ("From", "Jörg <j@x.example>"),
        ("Cc", "Bär <b@x.example>"),
        ("Subject", "Grüße aus Köln und mehr"),
    ]
    assert dict(content.headers)["Subject"] == str(_reference(raw)["Subject"]) == parse_header_fields(raw).subject


def test_quoted_printable_base64_and_latin1_bodies() -> None:
    """Soft line breaks, base64 text and an 8-bit Latin-1 body decode as the reference decodes them."""
    bodies = [
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Gr=C3=BC=C3=9Fe, eine lange Zeile =\r\nohne Umbruch\r\nZeile 2\r\n",
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"R3LDvMOfZSBhdXMgS8O2bG4K\r\n",
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nK\xf6ln \xe4\r\n",
    ]
    texts = [read_message(b"Subject: x\r\nMIME-Version: 1.0\r\n" + body).text for body in bodies]
    assert texts == [_reference_text(b"Subject: x\r\nMIME-Version: 1.0\r\n" + body) for body in bodies]
    assert texts == ["Grüße, eine lange Zeile ohne Umbruch\r\nZeile 2\r\n", "Grüße aus Köln\n", "Köln ä\r\n"]


def test_alternative_shows_the_plain_part_and_lists_attachments() -> None:
    """multipart/mixed with alternative (HTML first) shows text/plain and names the attachment (RFC 2231 name)."""
    raw = (
        b'Subject: a\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
        b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML</p>\r\n"
        b"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nText\r\n--a--\r\n--m\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''Gr%C3%BC%C3%9Fe.pdf\r\n"
        b"\r\nJVBERi0=\r\n--m--\r\n"
    )
    content = read_message(raw)
    assert (content.text, content.html_only, content.attachments) == ("Text", False, ["Grüße.pdf"])
    assert content.text == _reference_text(raw)


def test_html_only_mail_is_its_source() -> None:
    """Without a text part, the text is the HTML source, marked html_only, for the view to show escaped."""
    raw = b"Subject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=x>Hallo</p>\r\n"
    assert read_message(raw) == MessageContent(
        headers=[("Subject", "h")], text="<p onclick=x>Hallo</p>\r\n", html_only=True
    )


def test_broken_mime_gives_the_raw_body_instead_of_an_error() -> None:
    """Garbage headers, a multipart without boundary, an unknown charset and bad base64 still give readable text."""
    no_boundary = (
        b"From: <<<kaputt\r\nSubject: =?bogus?x?zzz?=\r\nContent-Type: multipart/mixed; boundary=\r\n"
        b"Header ohne Doppelpunkt\r\n\r\n--nix\r\nK\xf6ln\x00\r\n"
    )
    content = read_message(no_boundary)
    assert content.text == "--nix\r\nKöln\ufffd\r\n"
    assert content.headers == [("From", "<<<kaputt"), ("Subject", "=?bogus?x?zzz?=")]
    unknown_charset = b"Content-Type: text/plain; charset=x-unbekannt\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"
    assert read_message(unknown_charset).text == "Grüße\r\n"
    bad_base64 = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!R3LDvMOfZ\r\n"
    assert read_message(bad_base64).text == _reference_text(bad_base64)
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(3000))
    assert isinstance(read_message(nested).text, str)
    assert read_message(b"").text == "" and read_message(b"nur Text\r\n").text == "nur Text\r\n"


def test_a_single_non_text_part_is_an_attachment() -> None:
    """A mail that is one PDF shows no base64 as text but names the file."""
    raw = (
        b"Subject: p\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\nJVBERi0=\r\n"
    )
    content = read_message(raw)
    assert (content.text, content.attachments) == ("", ["a.pdf"])


def test_long_text_is_cut_and_marked() -> None:
    """Text beyond max_chars is cut, and truncated says so."""
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"a" * 50
    assert (read_message(raw, max_chars=10).text, read_message(raw, max_chars=10).truncated) == ("a" * 10, True)
    assert not read_message(raw).truncated


CONTENT = """
query Content($id: ID!) {
  message(id: $id) { content { headers { name value } text htmlOnly attachments truncated } }
}"""
LATEST = "query Latest($id: ID!) { account(id: $id) { messages(first: 1) { edges { node { id } } } } }"


async def test_the_api_serves_the_parsed_content(api: Api, reader: Api) -> None:
    """Message.content gives a read token what read_message makes of the stored bytes."""
    account = await new_account(api, "vertrieb@firma.example")
    number = int(account.inbound.split("@")[0].removeprefix("p"))
    raw = b"Subject: =?utf-8?q?R=C3=BCckfrage?=\r\nContent-Type: text/html\r\n\r\n<b>Hallo</b>\r\n"
    await deliver_message([Recipient(account.row_id, number, is_bounce=False)], raw)
    [edge] = (await reader(LATEST, {"id": account.id}))["account"]["messages"]["edges"]
    content = (await reader(CONTENT, {"id": edge["node"]["id"]}))["message"]["content"]
    assert content == {
        "headers": [{"name": "Subject", "value": "Rückfrage"}],
        "text": "<b>Hallo</b>\r\n",
        "htmlOnly": True,
        "attachments": [],
        "truncated": False,
    }


def test_the_dashboard_parses_no_mime(repo_root: Path) -> None:
    """No module under web/ imports the email package's parser: the view shows what the API parsed."""
    offenders = []
    for path in (repo_root / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [f"{path.name}: {name}" for name in names if name == "email" or name.startswith("email.")]
    assert offenders == []
